terraform {
  # 1.9: variable validations refer to other variables (deploy kind against source, environments).
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.60: aws_codepipeline pipeline_type V2 with execution_mode, aws_pipes_pipe.
      version = ">= 5.60, < 7.0"
      # AWS publishes new ECS-optimized AMIs on an SNS topic in us-east-1 only; the subscription is
      # made there. Pass the default provider when the pipeline itself lives in us-east-1.
      configuration_aliases = [aws.notifications]
    }
  }
}
