variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Name of the ASG, cluster and VPC."
  type        = string
  default     = "ecs-boot-complete"
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Availability Zones to use (one public and one private subnet each; 2-6, validated by modules/network). null picks <region>a and <region>b."
  type        = list(string)
  default     = null
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheaper) instead of one per AZ (survives an AZ outage)."
  type        = bool
  default     = false
}

variable "ami_ssm_parameter" {
  description = "SSM parameter the Packer build writes the ecs-boot AMI id to (null: the module's default, /ecs-boot/ami/x86_64)."
  type        = string
  default     = null
}

variable "registry_auth" {
  description = "Registry credentials location for ecs-boot (s3://bucket/key or ssm:/name), or null."
  type        = string
  default     = null
}

variable "alarm_emails" {
  description = "E-mail addresses told about failed tasks."
  type        = list(string)
  default     = []
}
