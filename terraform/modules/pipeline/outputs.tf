output "pipeline_name" {
  description = "Name of the CodePipeline."
  value       = aws_codepipeline.this.name
}

output "pipeline_arn" {
  description = "ARN of the CodePipeline."
  value       = aws_codepipeline.this.arn
}

output "stage_names" {
  description = "Stages in order: Source, Release, then one per environment."
  value       = concat(["Source", "Release"], [for e in var.environments : e.name])
}

output "pipeline_role_arn" {
  description = "ARN of the pipeline's role: the environment roles of an ECS deploy must trust it (sts:AssumeRole)."
  value       = aws_iam_role.pipeline.arn
}

output "rollout_build_role_arn" {
  description = "ARN of the rollout build's role: the environment roles of an AMI pipeline must trust it. null for an image pipeline."
  value       = try(aws_iam_role.builds["deploy"].arn, null)
}

output "artifact_bucket" {
  description = "Name of the artifact bucket (environment roles read their stage's artifacts from it)."
  value       = aws_s3_bucket.artifacts.id
}

output "artifact_kms_key_arn" {
  description = "ARN of the KMS key of the artifacts, the build logs and the image repository."
  value       = aws_kms_key.artifacts.arn
}

output "source_object" {
  description = "s3://bucket/key whose new versions start the pipeline."
  value       = "s3://${local.source_bucket}/${local.source_key}"
}

output "ecr_repository_url" {
  description = "URL of the release image repository (push <url>:<release_tag_prefix>...); null for an AMI pipeline."
  value       = try(aws_ecr_repository.release[0].repository_url, null)
}

output "ecr_repository_arn" {
  description = "ARN of the release image repository (the service module's ecr_repository_arns); null for an AMI pipeline."
  value       = try(aws_ecr_repository.release[0].arn, null)
}

output "build_project_names" {
  description = "CodeBuild projects by role: release, deploy (rollout), record (image push), packer (AMI update)."
  value       = { for k, p in aws_codebuild_project.this : k => p.name }
}
