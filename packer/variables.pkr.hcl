variable "region" {
  type        = string
  description = "AWS region the builder instance runs in and the AMI is registered in."
  default     = "us-east-1"
}

variable "architecture" {
  type        = string
  description = "CPU architecture of the AMI: x86_64, or arm64 for Graviton. The RPM must be built for the same one (see README)."
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "The architecture must be x86_64 or arm64."
  }
}

variable "instance_type" {
  type        = string
  description = "Builder instance type; empty picks a small one of the right architecture (t3.small or t4g.small)."
  default     = ""
}

variable "subnet_id" {
  type        = string
  description = "Subnet for the builder instance; empty lets Packer use the default VPC. It needs a route to the SSM/EC2 endpoints and to Packer's SSH connection."
  default     = ""
}

variable "associate_public_ip_address" {
  type        = bool
  description = "Give the builder instance a public IP (needed for SSH from outside the VPC when the subnet does not assign one)."
  default     = true
}

variable "ami_name_prefix" {
  type        = string
  description = "AMI names are PREFIX-VERSION-ARCH-TIMESTAMP."
  default     = "ecs-boot-al2023"

  validation {
    condition     = can(regex("^[a-zA-Z0-9()./_-]{3,80}$", var.ami_name_prefix))
    error_message = "The AMI name prefix may hold only letters, digits and ( ) . / _ - (3 to 80 characters)."
  }
}

variable "source_ami" {
  type        = string
  description = "Pin the base AMI id; empty takes the latest ECS-optimized AL2023 AMI from its public SSM parameter."
  default     = ""
}

variable "ecs_boot_version" {
  type        = string
  description = "The ecs-boot version in the RPM (Cargo.toml package.version); tags the AMI and names the RPM file. build-ami.sh fills it in."

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+([-+.][0-9A-Za-z.-]+)?$", var.ecs_boot_version))
    error_message = "The ecs_boot_version must be a semantic version such as 0.1.0."
  }
}

variable "git_commit" {
  type        = string
  description = "The git commit the RPM was built from (git rev-parse HEAD); tags the AMI. build-ami.sh fills it in."

  validation {
    condition     = can(regex("^[0-9a-f]{7,40}(-dirty)?$", var.git_commit))
    error_message = "The git_commit must be a hex commit id, optionally suffixed -dirty."
  }
}

variable "rpm_file" {
  type        = string
  description = "The ecs-boot RPM to install; empty takes the one packer/build-rpm.sh wrote under target/ for this version and architecture."
  default     = ""
}

variable "config_file" {
  type        = string
  description = "The config.toml baked into /etc/ecs-boot/config.toml; empty keeps the RPM's commented default."
  default     = ""
}

variable "root_volume_size" {
  type        = number
  description = "Root volume size in GiB (the ECS-optimized AL2023 AMI needs at least 30)."
  default     = 30
}

variable "kms_key_id" {
  type        = string
  description = "KMS key for the encrypted root volume and AMI snapshot; empty uses the account's default EBS key (aws/ebs), which cannot be shared with other accounts: set a customer managed key to share the AMI."
  default     = ""
}

variable "extra_tags" {
  type        = map(string)
  description = "Tags added to the AMI, its snapshots and the builder instance."
  default     = {}
}
