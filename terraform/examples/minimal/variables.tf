variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "vpc_id" {
  description = "Existing VPC."
  type        = string
}

variable "subnet_ids" {
  description = "Existing private subnets (with a route to the AWS APIs) in at least two AZs."
  type        = list(string)
}

variable "name" {
  description = "Name of the group and its cluster."
  type        = string
  default     = "minimal"
}

variable "ami_id" {
  description = "The ecs-boot AMI built by Packer; null reads /ecs-boot/ami/x86_64."
  type        = string
  default     = null
}
