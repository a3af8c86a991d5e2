# The template's inputs. Cross-variable rules (sharing needs a customer managed key, ...) live in
# ecs-boot.pkr.hcl's `checks` local: a Packer variable's validation may only look at itself.

# --- What is built ---------------------------------------------------------------------------

variable "architecture" {
  type        = string
  description = "CPU architecture of the AMI: x86_64, or arm64 for Graviton. It picks the base AMI parameter, the builder instance type and the RPM (x86_64 or aarch64); build the RPM on a host of the same architecture (see README)."
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "The architecture must be x86_64 or arm64."
  }
}

variable "base_os" {
  type        = string
  description = "Base image: al2023 (the ECS-optimized Amazon Linux 2023 AMI) or al2 (the ECS-optimized Amazon Linux 2 AMI). Names the AMI, picks the base AMI parameter and the default SSM handoff parameter (see README for the differences)."
  default     = "al2023"

  validation {
    condition     = contains(["al2023", "al2"], var.base_os)
    error_message = "The base_os must be al2023 or al2."
  }
}

variable "source_ami" {
  type        = string
  description = "Pin the base AMI id; empty takes the latest ECS-optimized AMI of base_os and architecture from its public SSM parameter."
  default     = ""

  validation {
    condition     = var.source_ami == "" || can(regex("^ami-[0-9a-f]{8,17}$", var.source_ami))
    error_message = "The source_ami must be empty or an AMI id such as ami-0123456789abcdef0."
  }
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

variable "cloudwatch_agent_rpm" {
  type        = string
  description = "The CloudWatch agent RPM to bake in (a path on the builder, or an https:// or s3:// URL it can fetch); empty installs amazon-cloudwatch-agent from the Amazon Linux repositories. It must be 1.300070.0 or newer (the first that reads journald); instances never download it."
  default     = ""

  validation {
    condition     = var.cloudwatch_agent_rpm == "" || can(regex("^(/|https://|s3://)[^\\s'\"]+\\.rpm$", var.cloudwatch_agent_rpm))
    error_message = "The cloudwatch_agent_rpm must be empty, an absolute path, or an https:// or s3:// URL ending in .rpm."
  }
}

variable "config_file" {
  type        = string
  description = "The config.toml baked into /etc/ecs-boot/config.toml; empty keeps the RPM's commented default."
  default     = ""
}

variable "ami_name_prefix" {
  type        = string
  description = "AMI names are PREFIX-VERSION-ARCH-TIMESTAMP; empty means ecs-boot-<base_os>."
  default     = ""

  validation {
    condition     = var.ami_name_prefix == "" || can(regex("^[a-zA-Z0-9()./_-]{3,80}$", var.ami_name_prefix))
    error_message = "The AMI name prefix may hold only letters, digits and ( ) . / _ - (3 to 80 characters)."
  }
}

variable "root_volume_size" {
  type        = number
  description = "Root volume size in GiB (the ECS-optimized AMIs need at least 30)."
  default     = 30

  validation {
    condition     = var.root_volume_size >= 30
    error_message = "The root_volume_size must be at least 30 GiB, the size of the ECS-optimized AMIs' root volume."
  }
}

variable "extra_tags" {
  type        = map(string)
  description = "Tags added to the AMI, its snapshots and the builder instance."
  default     = {}
}

# --- The builder -----------------------------------------------------------------------------

variable "region" {
  type        = string
  description = "AWS region the builder instance runs in and the AMI is registered in."
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "The region must be an AWS region name such as eu-west-1."
  }
}

variable "instance_type" {
  type        = string
  description = "Builder instance type; empty picks a small one of the right architecture (t3.small or t4g.small)."
  default     = ""
}

variable "subnet_id" {
  type        = string
  description = "Subnet for the builder instance; empty lets Packer use the default VPC. It needs egress to the EC2, SSM and ssmmessages endpoints (public IP, NAT or VPC endpoints)."
  default     = ""
}

variable "associate_public_ip_address" {
  type        = bool
  description = "Give the builder instance a public IP: its way out to the SSM endpoints in a subnet without NAT or VPC endpoints. With session_manager access its security group still admits nothing."
  default     = true
}

variable "builder_access" {
  type        = string
  description = "How Packer reaches the builder: session_manager (default: SSH tunnelled through SSM Session Manager, a security group with no inbound rule) or ssh (a temporary security group admitting port 22 from ssh_source_cidrs only, by default this host's public address)."
  default     = "session_manager"

  validation {
    condition     = contains(["session_manager", "ssh"], var.builder_access)
    error_message = "The builder_access must be session_manager or ssh."
  }
}

variable "iam_instance_profile" {
  type        = string
  description = "Instance profile for the builder (session_manager needs one with AmazonSSMManagedInstanceCore's agent permissions); empty lets Packer create a temporary one with only the Session Manager actions."
  default     = ""
}

variable "ssh_source_cidrs" {
  type        = list(string)
  description = "builder_access = ssh only: the CIDRs the temporary security group admits on port 22; empty means this host's public IPv4 address (as https://checkip.amazonaws.com sees it), as a /32."
  default     = []

  validation {
    condition = alltrue([
      for cidr in var.ssh_source_cidrs : can(regex("^[0-9.]+/[0-9]+$", cidr)) && can(cidrnetmask(cidr)) && contains(["0.0.0.0/0", "::/0"], cidr) == false
    ])
    error_message = "The ssh_source_cidrs must be IPv4 CIDRs, and never 0.0.0.0/0: the builder must not be reachable from everywhere."
  }
}

# --- Sharing and lifecycle -------------------------------------------------------------------

variable "ami_users" {
  type        = list(string)
  description = "AWS account ids allowed to launch the AMI. Sharing an encrypted AMI needs kms_key_id (a customer managed key whose policy lets those accounts use it)."
  default     = []

  validation {
    condition     = alltrue([for account in var.ami_users : can(regex("^[0-9]{12}$", account))])
    error_message = "The ami_users must be 12-digit AWS account ids."
  }
}

variable "ami_org_arns" {
  type        = list(string)
  description = "AWS Organizations ARNs (arn:aws:organizations::MANAGEMENT_ACCOUNT:organization/o-...) whose accounts may launch the AMI. Needs kms_key_id, like ami_users."
  default     = []

  validation {
    condition = alltrue([
      for arn in var.ami_org_arns : can(regex("^arn:aws[a-z-]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$", arn))
    ])
    error_message = "The ami_org_arns must be organization ARNs such as arn:aws:organizations::123456789012:organization/o-abcdefghij."
  }
}

variable "ami_regions" {
  type        = list(string)
  description = "Regions the finished AMI is copied to (besides region); each copy is shared and published like the original. An encrypted copy uses region_kms_key_ids[REGION], else kms_key_id, which must then name a key that exists there (a multi-Region key or an alias)."
  default     = []

  validation {
    condition     = alltrue([for r in var.ami_regions : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r))])
    error_message = "The ami_regions must be AWS region names such as eu-west-1."
  }
}

variable "kms_key_id" {
  type        = string
  description = "Customer managed KMS key (id, ARN or alias) for the builder's root volume and the AMI's snapshot; empty uses the account's default EBS key (aws/ebs), which no other account can use, so the AMI cannot be shared. Instances launched by Auto Scaling from an AMI encrypted with a customer managed key need a grant for the Auto Scaling service-linked role: give the Terraform module the key as ami_kms_key_arn."
  default     = ""
}

variable "region_kms_key_ids" {
  type        = map(string)
  description = "Per copy region (keys of ami_regions): the KMS key for that region's copy. KMS keys are regional: without an entry, a copy uses kms_key_id."
  default     = {}
}

variable "deprecate_at" {
  type        = string
  description = "When the AMI (and its copies) is marked deprecated, RFC 3339 UTC such as 2027-06-30T00:00:00Z; empty never deprecates. Deprecated AMIs still launch by id but drop out of DescribeImages listings."
  default     = ""

  validation {
    condition     = var.deprecate_at == "" || can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$", var.deprecate_at))
    error_message = "The deprecate_at must be empty or an RFC 3339 UTC time such as 2027-06-30T00:00:00Z."
  }
}

# --- Handoff to Terraform and the AMI pipeline -----------------------------------------------

variable "publish" {
  type        = bool
  description = "After the build, publish the AMI id to the SSM parameter ami_ssm_parameter (in region and every ami_regions region) and upload the manifest to manifest_s3_uri (publish-ami.py)."
  default     = true
}

variable "ami_ssm_parameter" {
  type        = string
  description = "SSM parameter that receives the new AMI id (the Terraform module's ami_ssm_parameter); empty means /ecs-boot/ami/<architecture> for al2023 and /ecs-boot/ami/al2/<architecture> for al2."
  default     = ""

  validation {
    condition     = var.ami_ssm_parameter == "" || can(regex("^(/[A-Za-z0-9_.-]+){1,15}$", var.ami_ssm_parameter))
    error_message = "The ami_ssm_parameter must be empty or an absolute SSM parameter path such as /ecs-boot/ami/x86_64."
  }
}

variable "manifest_s3_uri" {
  type        = string
  description = "s3://BUCKET/KEY the build's manifest (this run's builds of manifest.json) is written to, where the AMI pipeline's source reads it; empty skips the upload."
  default     = ""

  validation {
    condition     = var.manifest_s3_uri == "" || can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^ ]+[^/ ]$", var.manifest_s3_uri))
    error_message = "The manifest_s3_uri must be empty or s3://BUCKET/KEY such as s3://my-artifacts/ecs-boot/x86_64/manifest.json."
  }
}
