################################################################################
# Identity
################################################################################

variable "name" {
  description = "Name of the Auto Scaling Group; also the stem of every other resource name (role, hooks, capacity provider, log group)."
  type        = string

  validation {
    # The role name adds "-instance" (IAM allows 64 characters) and the name goes into ARNs and tags.
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,47}$", var.name))
    error_message = "name must start with a letter, hold only letters, digits and hyphens, and be at most 48 characters."
  }
}

variable "tags" {
  description = "Tags for every resource the module creates. They also propagate to the instances, so keys must be valid in instance metadata (no space, no '/')."
  type        = map(string)
  default     = {}

  validation {
    # With instance_metadata_tags = "enabled", a key with a space or '/' makes every launch fail.
    condition = alltrue([
      for k in keys(var.tags) :
      can(regex("^[A-Za-z0-9+=._:@,-]{1,128}$", k)) && !contains([".", "..", "_index"], k) && !startswith(k, "aws:")
    ])
    error_message = "Tag keys may use only letters, digits and + - = . , _ : @ (no space, no '/'), must not be '.', '..' or '_index', and must not start with 'aws:'."
  }
}

################################################################################
# Cluster
################################################################################

variable "create_cluster" {
  description = "Create the ECS cluster (through modules/cluster) for this group alone. Set false for several groups in one cluster: create it with modules/cluster, pass its name as cluster_name and this group's capacity_provider_name to its capacity_providers."
  type        = bool
  default     = true
}

variable "cluster_name" {
  description = "ECS cluster name. Defaults to name. Required when create_cluster is false."
  type        = string
  default     = null

  validation {
    condition     = var.cluster_name == null || can(regex("^[A-Za-z0-9_-]{1,255}$", var.cluster_name))
    error_message = "cluster_name may hold only letters, digits, hyphens and underscores (1-255 characters)."
  }
}

variable "container_insights" {
  description = "Container Insights for a created cluster: \"enabled\", \"enhanced\" or \"disabled\"."
  type        = string
  default     = "enabled"

  validation {
    condition     = contains(["enabled", "enhanced", "disabled"], var.container_insights)
    error_message = "container_insights must be \"enabled\", \"enhanced\" or \"disabled\"."
  }
}

variable "extra_capacity_providers" {
  description = "With create_cluster: further capacity providers (made elsewhere) to associate with the cluster besides this group's."
  type        = list(string)
  default     = []
}

variable "fargate" {
  description = "With create_cluster: also associate FARGATE with the cluster."
  type        = bool
  default     = false
}

variable "fargate_spot" {
  description = "With create_cluster: also associate FARGATE_SPOT with the cluster."
  type        = bool
  default     = false
}

################################################################################
# Launch template
################################################################################

variable "ami_id" {
  description = "AMI id of the ecs-boot image. null (default) reads it from the SSM parameter (ami_ssm_parameter)."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must look like ami-0123456789abcdef0."
  }
}
variable "ami_ssm_parameter" {
  description = "SSM parameter holding the Packer-built AMI id. null (default) means /ecs-boot/ami/<architecture>, the name the Packer build publishes. Read at plan time; a new value rolls the group through instance refresh."
  type        = string
  default     = null

  validation {
    condition     = var.ami_ssm_parameter == null || can(regex("^/?[A-Za-z0-9_.\\-/]+$", var.ami_ssm_parameter))
    error_message = "ami_ssm_parameter must be an SSM parameter name such as /ecs-boot/ami/x86_64."
  }
}

variable "architecture" {
  description = "CPU architecture of the AMI and instance types: x86_64 or arm64. Picks the default AMI parameter /ecs-boot/ami/<architecture>."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}
variable "instance_type" {
  description = "EC2 instance type."
  type        = string
  default     = "t3.medium"
}

variable "key_name" {
  description = "EC2 key pair for SSH. None by default: use SSM Session Manager (the role has AmazonSSMManagedInstanceCore)."
  type        = string
  default     = null
}

variable "imds_hop_limit" {
  description = "IMDSv2 PUT response hop limit. 1 keeps bridge-mode task containers away from the instance role; ecs-boot and the ECS agent use host networking and need only 1."
  type        = number
  default     = 1

  validation {
    condition     = var.imds_hop_limit >= 1 && var.imds_hop_limit <= 64 && floor(var.imds_hop_limit) == var.imds_hop_limit
    error_message = "imds_hop_limit must be an integer from 1 to 64."
  }
}

variable "root_volume" {
  description = "Root EBS volume. Always encrypted; kms_key_id null uses the account's default EBS key."
  type = object({
    device_name = optional(string, "/dev/xvda")
    size_gb     = optional(number, 30)
    type        = optional(string, "gp3")
    kms_key_id  = optional(string)
  })
  default = {}

  validation {
    condition     = var.root_volume.size_gb >= 8 && var.root_volume.size_gb <= 16384
    error_message = "root_volume.size_gb must be between 8 and 16384."
  }
}

variable "user_data" {
  description = "Optional extra user data (a shell script or #cloud-config), added as a second part next to the module's cloud-config that writes ecs-boot's trusted config (/etc/ecs-boot/config.d/50-terraform.toml)."
  type        = string
  default     = null
}

variable "detailed_monitoring" {
  description = "Enable EC2 detailed (1-minute) monitoring."
  type        = bool
  default     = true
}

################################################################################
# Auto Scaling Group
################################################################################

variable "subnet_ids" {
  description = "Subnets (preferably private, across at least two AZs) the group launches into."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "subnet_ids must list at least one subnet."
  }
}

variable "min_size" {
  description = "Minimum number of instances. 0 by default: the group is created empty and managed scaling launches instances once the lifecycle hooks exist (instances launched at creation miss them)."
  type        = number
  default     = 0
}
variable "max_size" {
  description = "Maximum number of instances."
  type        = number
  default     = 4
}

variable "desired_capacity" {
  description = "Desired capacity at creation. Managed scaling owns it afterwards (changes are ignored). null starts at min_size."
  type        = number
  default     = null
}

variable "health_check_grace_period" {
  description = "Seconds before the group health-checks a new instance. The launch hook already holds instances in Pending:Wait until ecs-boot reports them ready."
  type        = number
  default     = 60
}

variable "wait_for_capacity_timeout" {
  description = "How long terraform apply waits for min_size instances to pass the launch hook. \"0\" disables waiting."
  type        = string
  default     = "15m"
}

variable "force_delete" {
  description = "Delete the group without waiting for its instances. false (default): ForceDelete discards outstanding lifecycle actions, so nothing would drain; deleting scales the group to zero and waits (delete timeout = drain_deadline + 15 min). true also turns drain_on_destroy off."
  type        = bool
  default     = false
}

variable "drain_on_destroy" {
  description = "terraform destroy first scales the group to zero and waits until every instance has drained through the terminate hook, before the hooks, the instance permissions, the capacity provider and the cluster are deleted. Runs scripts/drain-group.sh on the machine running Terraform: it needs /bin/sh and the AWS CLI with credentials for this account in its environment (see README \"terraform destroy\"). false, or force_delete = true: instances terminate undrained on destroy."
  type        = bool
  default     = true
}

variable "drain_on_destroy_environment" {
  description = "Extra environment for the destroy-time drain's AWS CLI, e.g. { AWS_PROFILE = \"prod-admin\" } when the provider assumes a role the CLI would not. Stored in the state: never credentials."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for k in keys(var.drain_on_destroy_environment) :
      can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k)) && !contains(["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"], upper(k))
    ])
    error_message = "drain_on_destroy_environment takes variable names only, and no credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN): it is stored in the state. Name a profile instead."
  }
}

variable "drain_deadline" {
  description = "Seconds ecs-boot drains an instance before completing its terminate hook anyway. Drives the terminate hook's heartbeat timeout (drain_deadline + 120 s, at most 7200), ecs-boot's [drain] deadline (user data) and the group's delete timeout. A spot interruption still leaves 2 minutes, whatever this says."
  type        = number
  default     = 900

  validation {
    condition     = var.drain_deadline >= 30 && var.drain_deadline <= 7080 && floor(var.drain_deadline) == var.drain_deadline
    error_message = "drain_deadline must be whole seconds from 30 to 7080 (the terminate hook's heartbeat timeout, at most 7200, must exceed it)."
  }
}

variable "mixed_instances" {
  description = "A mixed instances policy (several instance types, spot): instance_types replaces instance_type. on_demand_percentage_above_base_capacity = 0 runs spot above the base."
  type = object({
    instance_types                           = list(string)
    on_demand_base_capacity                  = optional(number, 0)
    on_demand_percentage_above_base_capacity = optional(number, 100)
    spot_allocation_strategy                 = optional(string, "price-capacity-optimized")
  })
  default = null

  validation {
    condition     = var.mixed_instances == null || length(try(var.mixed_instances.instance_types, [])) >= 1
    error_message = "mixed_instances.instance_types must list at least one instance type."
  }
}

variable "warm_pool" {
  description = "A warm pool of pre-initialised instances. Not with mixed_instances (AWS refuses warm pools on groups with a mixed instances policy or spot); instances are never reused on scale-in (ECS capacity providers do not support ReuseOnScaleIn)."
  type = object({
    pool_state                  = optional(string, "Stopped")
    min_size                    = optional(number, 0)
    max_group_prepared_capacity = optional(number)
    reuse_on_scale_in           = optional(bool, false)
  })
  default = null

  validation {
    condition     = var.warm_pool == null || !try(var.warm_pool.reuse_on_scale_in, false)
    error_message = "warm_pool.reuse_on_scale_in must be false: ECS capacity providers do not support ReuseOnScaleIn."
  }

  validation {
    condition     = var.warm_pool == null || contains(["Stopped", "Running", "Hibernated"], try(var.warm_pool.pool_state, "Stopped"))
    error_message = "warm_pool.pool_state must be Stopped, Running or Hibernated."
  }
}
variable "instance_refresh" {
  description = "Instance refresh used to roll out new AMIs (launch template changes). min 100 / max 200 launches replacements before terminating old instances."
  type = object({
    min_healthy_percentage = optional(number, 100)
    max_healthy_percentage = optional(number, 200)
    instance_warmup        = optional(number, 120)
    skip_matching          = optional(bool, true)
    auto_rollback          = optional(bool, true)
  })
  default = {}

  validation {
    condition = (
      var.instance_refresh.min_healthy_percentage >= 0 && var.instance_refresh.min_healthy_percentage <= 100 &&
      var.instance_refresh.max_healthy_percentage >= 100 && var.instance_refresh.max_healthy_percentage <= 200 &&
      var.instance_refresh.max_healthy_percentage - var.instance_refresh.min_healthy_percentage <= 100
    )
    error_message = "instance_refresh needs 0 <= min_healthy_percentage <= 100 <= max_healthy_percentage <= 200, at most 100 apart."
  }
}

################################################################################
# What ecs-boot reads from the instance tags
################################################################################

variable "registry_auth" {
  description = "Where ecs-boot finds registry credentials: s3://bucket/key or ssm:/parameter/name, written to [ecs] registry_auth in user data. The role may read exactly this object or parameter."
  type        = string
  default     = null

  validation {
    condition     = var.registry_auth == null || can(regex("^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\\s]+|ssm:/?[A-Za-z0-9_.\\-/]+)$", var.registry_auth))
    error_message = "registry_auth must be s3://bucket/key or ssm:/parameter/name."
  }

  validation {
    condition     = var.registry_auth == null || length(var.registry_auth == null ? "" : var.registry_auth) <= 256
    error_message = "registry_auth may be at most 256 characters."
  }
}

variable "config_location" {
  description = "Optional TOML fragment (placement and tuning keys only) merged over the trusted config: s3://bucket/key or ssm:/parameter/name, named by the tag ecs-boot:config. It must lie under one of fragment_locations, which ecs-boot checks. The role may read exactly this object or parameter."
  type        = string
  default     = null

  validation {
    condition     = var.config_location == null || can(regex("^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\\s]+|ssm:/?[A-Za-z0-9_.\\-/]+)$", var.config_location))
    error_message = "config_location must be s3://bucket/key or ssm:/parameter/name."
  }

  validation {
    condition     = var.config_location == null || length(var.config_location == null ? "" : var.config_location) <= 256
    error_message = "config_location is a tag value and may be at most 256 characters."
  }
}

variable "fragment_locations" {
  description = "Where an ecs-boot:config tag may point ([trust] fragment_prefixes in user data): s3://bucket/prefix/ or ssm:/prefix/, each ending in '/'. Empty: fragment tags are refused. The role may read under these prefixes."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.fragment_locations : can(regex("^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([^\\s\"\\\\]*/)?|ssm:/([A-Za-z0-9_.\\-/]*/)?)$", p))])
    error_message = "fragment_locations entries must be s3://bucket/prefix/ or ssm:/prefix/ and end in '/'."
  }
}

variable "recorder_location" {
  description = "Where ecs-boot's flight recorder uploads a failed boot's evidence (state, journal, ECS agent log tail, masked ecs.config, system container logs): s3://bucket/prefix/, ending in '/'. Written to user data as [recorder] location; the role may s3:PutObject under this prefix only. Null: no recording."
  type        = string
  default     = null

  validation {
    condition     = var.recorder_location == null || can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([^\\s\"\\\\]*/)?$", var.recorder_location))
    error_message = "recorder_location must be s3://bucket/prefix/ and end in '/'."
  }
}

variable "registry_auth_locations" {
  description = "Where an ecs-boot:registry-auth tag may point ([trust] registry_auth_prefixes in user data): s3://bucket/prefix/ or ssm:/prefix/, each ending in '/'. Empty: only registry_auth (user data) names credentials. The role may read under these prefixes."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.registry_auth_locations : can(regex("^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([^\\s\"\\\\]*/)?|ssm:/([A-Za-z0-9_.\\-/]*/)?)$", p))])
    error_message = "registry_auth_locations entries must be s3://bucket/prefix/ or ssm:/prefix/ and end in '/'."
  }
}

variable "kms_key_arns" {
  description = "Customer managed KMS keys that encrypt the registry credentials or config (SSE-KMS object, SecureString). Empty allows any key of this account, but only through S3 or SSM in this region (kms:ViaService)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", arn))])
    error_message = "kms_key_arns must be KMS key ARNs (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "instance_attributes" {
  description = "ECS container instance attributes (tags ecs-boot:attribute:NAME, the only ecs-boot tags the module sets), usable in placement constraints."
  type        = map(string)
  default     = {}

  validation {
    # The intersection of ECS attribute-name characters and instance-metadata tag-key characters;
    # 109 = 128 (tag key limit) - length("ecs-boot:attribute:").
    condition     = alltrue([for k in keys(var.instance_attributes) : can(regex("^[A-Za-z0-9._-]{1,109}$", k))])
    error_message = "instance_attributes names may use only letters, digits, '.', '_' and '-' (at most 109 characters)."
  }

  validation {
    condition     = alltrue([for v in values(var.instance_attributes) : length(v) >= 1 && length(v) <= 128 && !can(regex("[\\r\\n]", v))])
    error_message = "instance_attributes values must be 1-128 characters on one line."
  }
}

variable "agent_settings" {
  description = "ECS agent placement/tuning variables ([ecs.settings] in user data), e.g. { ECS_IMAGE_PULL_BEHAVIOR = \"prefer-cached\" }. Security-relevant variables are refused here; bake those into the AMI config."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.agent_settings) : can(regex("^ECS_[A-Z0-9_]{1,100}$", k))])
    error_message = "agent_settings keys must be ECS agent variable names (ECS_ followed by capitals, digits and '_')."
  }

  validation {
    # The placement/tuning variables ecs-boot accepts from tags (Trust::Tag in src/ecs_config/vars.rs;
    # tests/test_terraform.py keeps the two lists equal). Credentials, IAM/IMDS isolation,
    # privilege and path variables are refused from tags: bake them into the AMI config.
    condition = alltrue([
      for k in keys(var.agent_settings) : contains([
        "ECS_CONTAINER_STOP_TIMEOUT",
        "ECS_CONTAINER_START_TIMEOUT",
        "ECS_CONTAINER_CREATE_TIMEOUT",
        "ECS_IMAGE_PULL_BEHAVIOR",
        "ECS_IMAGE_PULL_TIMEOUT",
        "ECS_IMAGE_PULL_INACTIVITY_TIMEOUT",
        "ECS_IMAGE_CLEANUP_INTERVAL",
        "ECS_IMAGE_MINIMUM_CLEANUP_AGE",
        "ECS_NUM_IMAGES_DELETE_PER_CYCLE",
        "ECS_DISABLE_IMAGE_CLEANUP",
        "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION",
        "ECS_RESERVED_MEMORY",
        "ECS_LOGLEVEL",
        "ECS_LOGLEVEL_ON_INSTANCE",
        "ECS_LOG_ROLLOVER_TYPE",
        "ECS_LOG_MAX_FILE_SIZE_MB",
        "ECS_LOG_MAX_ROLL_COUNT",
        "ECS_ENABLE_SPOT_INSTANCE_DRAINING",
        "ECS_CONTAINER_INSTANCE_TAGS",
        "ECS_CONTAINER_INSTANCE_PROPAGATE_TAGS_FROM",
        "ECS_ENABLE_CONTAINER_METADATA",
        "ECS_POLL_METRICS",
        "ECS_POLLING_METRICS_WAIT_DURATION",
        "ECS_TASK_METADATA_RPS_LIMIT",
        "ECS_ENABLE_HIGH_DENSITY_ENI",
        "ECS_CGROUP_CPU_PERIOD",
      ], k)
    ])
    error_message = "agent_settings may only hold the placement/tuning variables ecs-boot accepts from tags (see README). ECS_ENGINE_AUTH_*, ECS_ENABLE_TASK_IAM_ROLE*, ECS_DISABLE_PRIVILEGED, ECS_AWSVPC_BLOCK_IMDS, ECS_DATADIR, ECS_LOGFILE and other security-relevant variables belong in the baked config."
  }

  validation {
    # ecs.config takes each value verbatim up to the end of the line.
    condition     = alltrue([for v in values(var.agent_settings) : length(v) <= 256 && !can(regex("[\\r\\n]", v))])
    error_message = "agent_settings values must be single-line and at most 256 characters."
  }
}

################################################################################
# Lifecycle hooks and draining
################################################################################

variable "launch_hook" {
  description = "Launch lifecycle hook: ecs-boot completes it with CONTINUE once the agent has registered. name defaults to \"<name>-launch\"."
  type = object({
    name              = optional(string)
    heartbeat_timeout = optional(number, 600)
    default_result    = optional(string, "ABANDON")
  })
  default = {}

  validation {
    condition     = var.launch_hook.heartbeat_timeout >= 30 && var.launch_hook.heartbeat_timeout <= 7200
    error_message = "launch_hook.heartbeat_timeout must be 30-7200 seconds."
  }

  validation {
    condition     = contains(["CONTINUE", "ABANDON"], var.launch_hook.default_result)
    error_message = "launch_hook.default_result must be CONTINUE or ABANDON."
  }

  validation {
    condition     = var.launch_hook.name == null || can(regex("^[A-Za-z0-9_.-]{1,255}$", coalesce(var.launch_hook.name, "x")))
    error_message = "launch_hook.name may hold only letters, digits, '.', '_' and '-'."
  }
}

variable "terminate_hook" {
  description = "Terminate lifecycle hook, created only when drainer is \"ecs-boot\": ecs-boot drains the instance, sending heartbeats, then completes it. CONTINUE by default so other termination hooks still run. name defaults to \"<name>-terminate\"; heartbeat_timeout defaults to drain_deadline + 120 (at most 7200) and may not be shorter than drain_deadline."
  type = object({
    name              = optional(string)
    heartbeat_timeout = optional(number)
    default_result    = optional(string, "CONTINUE")
  })
  default = {}

  validation {
    condition     = var.terminate_hook.heartbeat_timeout == null || (coalesce(var.terminate_hook.heartbeat_timeout, 30) >= 30 && coalesce(var.terminate_hook.heartbeat_timeout, 30) <= 7200)
    error_message = "terminate_hook.heartbeat_timeout must be 30-7200 seconds."
  }

  validation {
    condition     = contains(["CONTINUE", "ABANDON"], var.terminate_hook.default_result)
    error_message = "terminate_hook.default_result must be CONTINUE or ABANDON."
  }

  validation {
    condition = var.terminate_hook.name == null || (
      can(regex("^[A-Za-z0-9_.-]{1,255}$", coalesce(var.terminate_hook.name, "x"))) &&
      var.terminate_hook.name != "ecs-managed-draining-termination-hook"
    )
    error_message = "terminate_hook.name may hold only letters, digits, '.', '_' and '-', and must not be ECS's own ecs-managed-draining-termination-hook."
  }
}
variable "drainer" {
  description = "Who drains an instance before it terminates: \"ecs-boot\" (its own terminate hook; ECS managed draining off) or \"ecs-managed\" (ECS managed draining; no ecs-boot terminate hook, and [drain] enabled = false in user data). Never both."
  type        = string
  default     = "ecs-boot"

  validation {
    condition     = contains(["ecs-boot", "ecs-managed"], var.drainer)
    error_message = "drainer must be \"ecs-boot\" or \"ecs-managed\"."
  }
}

################################################################################
# Capacity provider
################################################################################

variable "managed_termination_protection" {
  description = "Capacity provider managed termination protection: instances start protected from scale-in and ECS removes protection once they run no tasks. Instance refresh then replaces protected instances (scale_in_protected_instances = \"Refresh\")."
  type        = bool
  default     = true
}

variable "managed_scaling" {
  description = "Capacity provider managed scaling."
  type = object({
    target_capacity           = optional(number, 100)
    minimum_scaling_step_size = optional(number, 1)
    maximum_scaling_step_size = optional(number, 10)
    instance_warmup_period    = optional(number, 300)
  })
  default = {}

  validation {
    condition     = var.managed_scaling.target_capacity >= 1 && var.managed_scaling.target_capacity <= 100
    error_message = "managed_scaling.target_capacity must be 1-100."
  }
}

variable "default_capacity_provider_strategy" {
  description = "With create_cluster: make this group's capacity provider the cluster's default strategy."
  type        = bool
  default     = true
}

variable "capacity_provider_name" {
  description = "Capacity provider name. Defaults to name, prefixed with \"cp-\" when name starts with aws, ecs or fargate (names AWS refuses)."
  type        = string
  default     = null

  validation {
    condition     = var.capacity_provider_name == null || (can(regex("^[A-Za-z0-9_-]{1,255}$", coalesce(var.capacity_provider_name, "x"))) && !can(regex("^(?i)(aws|ecs|fargate)", coalesce(var.capacity_provider_name, "x"))))
    error_message = "capacity_provider_name may hold letters, digits, '-' and '_' and must not start with aws, ecs or fargate (AWS refuses those)."
  }
}

variable "awsvpc_block_imds" {
  description = "Set ECS_AWSVPC_BLOCK_IMDS=true through user data, so awsvpc tasks cannot reach IMDS and borrow the instance role."
  type        = bool
  default     = true
}
################################################################################
# Network, logs and alerts
################################################################################

variable "vpc_id" {
  description = "VPC of the subnets; the security group is created in it."
  type        = string
}

variable "ingress_rules" {
  description = "Ingress rules for the instance security group. None by default (use SSM Session Manager; add load balancer rules as needed). Set exactly one of cidr_ipv4 and referenced_security_group_id."
  type = map(object({
    description                  = string
    ip_protocol                  = optional(string, "tcp")
    from_port                    = number
    to_port                      = number
    cidr_ipv4                    = optional(string)
    referenced_security_group_id = optional(string)
  }))
  default = {}
}

variable "egress_rules" {
  description = "Egress rules for the instance security group. Default: HTTPS anywhere (AWS APIs, registries). Add the ports your tasks need."
  type = map(object({
    description                  = string
    ip_protocol                  = optional(string, "tcp")
    from_port                    = number
    to_port                      = number
    cidr_ipv4                    = optional(string)
    referenced_security_group_id = optional(string)
  }))
  default = {
    https = {
      description = "HTTPS to AWS APIs and container registries"
      from_port   = 443
      to_port     = 443
      cidr_ipv4   = "0.0.0.0/0"
    }
  }
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ... 365, ... 3653)."
  }
}

variable "kms_key_arn" {
  description = "KMS key for the log group and the SNS topic. null creates a key (with rotation) for this module."
  type        = string
  default     = null
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alert topic (each must confirm)."
  type        = list(string)
  default     = []
}

variable "task_failure_alerts" {
  description = "Alert on the cluster's failed tasks (stopCode EssentialContainerExited or TaskFailedToStart). With several groups in one cluster, enable it on one group only."
  type        = bool
  default     = true
}

variable "host_logs" {
  description = "Ship the instances' logs (ecs-boot's, the ECS agent's and ecs-init's, Docker's, the kernel's and the system journal's warnings) to the module's log group with the CloudWatch agent baked into the AMI, one stream per instance and source. Never essential: a logging failure does not fail a boot. Written to user data as [logs]."
  type        = bool
  default     = true
}

variable "metrics" {
  description = "ecs-boot's own metrics (boot phases, outcome, launch hook latency, drains; PutMetricData) and the host's disk and memory (CloudWatch agent), into `namespace`, which is also the only namespace the instance role may write. `alarms` adds the module's alarms (README: Alarms) with these thresholds: `boot_duration_budget` seconds for the p90 boot, `disk_used_percent` for the root and Docker volumes, `memory_available_percent` as the floor. Written to user data as [metrics]."
  type = object({
    enabled                  = optional(bool, true)
    namespace                = optional(string, "ECSBoot")
    alarms                   = optional(bool, true)
    boot_duration_budget     = optional(number, 600)
    disk_used_percent        = optional(number, 85)
    memory_available_percent = optional(number, 10)
  })
  default = {}

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metrics.namespace)) && !startswith(var.metrics.namespace, "AWS/")
    error_message = "metrics.namespace must be 1-255 letters, digits and . _ / # : - and may not start with \"AWS/\"."
  }

  validation {
    condition     = var.metrics.boot_duration_budget > 0 && var.metrics.disk_used_percent > 0 && var.metrics.disk_used_percent < 100 && var.metrics.memory_available_percent > 0 && var.metrics.memory_available_percent < 100
    error_message = "metrics.boot_duration_budget must be positive; disk_used_percent and memory_available_percent between 0 and 100."
  }

  validation {
    condition     = var.metrics.enabled || !var.metrics.alarms
    error_message = "metrics.alarms needs metrics.enabled: an alarm on metrics nobody sends never fires."
  }
}
