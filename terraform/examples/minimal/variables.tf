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

variable "ami_id" {
  description = "The ecs-boot AMI built by Packer."
  type        = string
}
