variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Name of the cluster, VPC and stem of everything else."
  type        = string
  default     = "platform"
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.50.0.0/16"
}

variable "availability_zones" {
  description = "Availability Zones (one public and one private subnet each; 2-6, validated by modules/network). null picks <region>a and <region>b."
  type        = list(string)
  default     = null
}

variable "ami_ssm_parameter" {
  description = "SSM parameter holding the ecs-boot AMI id (null: the module's default, /ecs-boot/ami/x86_64)."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "ACM certificate of the load balancer's HTTPS listener (in this region)."
  type        = string
}

variable "initial_image" {
  description = "The service's first image, until the pipeline deploys the first release (public, so the first apply needs nothing pushed yet)."
  type        = string
  default     = "public.ecr.aws/nginx/nginx:stable"
}

variable "prod" {
  description = "Optional production environment in another account: the role the pipeline acts as there (trusting this pipeline's role) and its service. Without it the pipeline deploys to this account only."
  type = object({
    role_arn     = string
    cluster_name = string
    service_name = string
  })
  default = null
}

variable "deletion_protection" {
  description = "Deletion protection of the load balancer (turn off before terraform destroy)."
  type        = bool
  default     = true
}
