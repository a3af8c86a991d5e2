variable "name" {
  description = "Name of the VPC: its Name tag, the stem of every other Name tag, the flow-log group (/vpc/<name>/flow-logs) and the flow-log role's name prefix."
  type        = string

  validation {
    # 27: "<name>-flow-logs-" must fit IAM's 38-character role name prefix.
    condition     = can(regex("^[A-Za-z0-9._-]{1,27}$", var.name))
    error_message = "name must be 1-27 letters, digits, '.', '_' and '-' (it starts the flow-log role's name prefix, which IAM caps at 38 characters)."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC, /16 to /24. It is cut into 16 equal blocks: private subnets take the first ones, public subnets those from the ninth on."
  type        = string

  validation {
    condition = (
      can(cidrhost(var.vpc_cidr, 0)) &&
      try(cidrhost(var.vpc_cidr, 0) == split("/", var.vpc_cidr)[0], false) &&
      try(tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 24, false)
    )
    error_message = "vpc_cidr must be an IPv4 network address with a /16 to /24 prefix (e.g. 10.40.0.0/16): every subnet is a sixteenth of it, and AWS's smallest subnet is a /28."
  }
}

variable "availability_zones" {
  description = "Availability Zones, by name: one public and one private subnet in each. null picks <region>a and <region>b. Named, never discovered: a new zone in the region must not silently reshape the network."
  type        = list(string)
  default     = null

  validation {
    condition = var.availability_zones == null || (
      length(coalesce(var.availability_zones, [])) >= 2 &&
      length(coalesce(var.availability_zones, [])) <= 6 &&
      length(distinct(coalesce(var.availability_zones, []))) == length(coalesce(var.availability_zones, []))
    )
    error_message = "availability_zones must list 2-6 different zones: the instance groups must survive the loss of one AZ."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway, in the first zone, for every private subnet (cheaper) instead of one per zone (the private subnets of the other zones then lose their way to the AWS APIs when that zone fails)."
  type        = bool
  default     = false
}

variable "flow_logs" {
  description = "VPC flow logs (all traffic) to a KMS-encrypted CloudWatch log group: the group's name (null: /vpc/<name>/flow-logs), its retention in days, and the delivery role's name (null: a unique name starting <name>-flow-logs-; set it only to keep a role already created under that name, as IAM names are global)."
  type = object({
    log_group_name    = optional(string)
    retention_in_days = optional(number, 365)
    iam_role_name     = optional(string)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.flow_logs.log_group_name == null || can(regex("^[A-Za-z0-9._/#-]{1,512}$", coalesce(var.flow_logs.log_group_name, "-")))
    error_message = "flow_logs.log_group_name must be 1-512 letters, digits, '.', '_', '/', '#' and '-' (CloudWatch Logs' rule)."
  }

  validation {
    condition     = var.flow_logs.iam_role_name == null || can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", coalesce(var.flow_logs.iam_role_name, "-")))
    error_message = "flow_logs.iam_role_name must be 1-64 letters, digits and '+=,.@_-' (IAM's rule)."
  }

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_logs.retention_in_days)
    error_message = "flow_logs.retention_in_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ... 365, ... 3653)."
  }
}

variable "tags" {
  description = "Tags for every resource of the module (Name tags are set by the module)."
  type        = map(string)
  default     = {}
  nullable    = false
}
