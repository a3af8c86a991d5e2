variable "name" {
  description = "Name of the service; also the task definition family and the stem of the roles, log group and target group."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$", var.name))
    error_message = "name must be 1-32 letters, digits, '-' or '_' (it also names a target group, whose limit is 32)."
  }
}

variable "tags" {
  description = "Tags for every resource the module creates."
  type        = map(string)
  default     = {}
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster (the ecs-boot cluster module's cluster_arn output)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/[A-Za-z0-9_-]+$", var.cluster_arn))
    error_message = "cluster_arn must be an ECS cluster ARN (arn:aws:ecs:REGION:ACCOUNT:cluster/NAME)."
  }
}

variable "capacity_provider_strategy" {
  description = "Capacity providers the service places its tasks through (the instance groups' capacity_provider_name outputs). Never a launch type: the capacity provider is what scales the ecs-boot group for the tasks."
  type = list(object({
    capacity_provider = string
    weight            = optional(number, 1)
    base              = optional(number, 0)
  }))

  validation {
    condition     = length(var.capacity_provider_strategy) >= 1 && length(var.capacity_provider_strategy) <= 20
    error_message = "capacity_provider_strategy needs 1 to 20 capacity providers."
  }

  validation {
    condition     = alltrue([for s in var.capacity_provider_strategy : s.weight >= 0 && s.weight <= 1000 && s.base >= 0 && s.base <= 100000])
    error_message = "capacity_provider_strategy: weight must be 0-1000 and base 0-100000."
  }

  validation {
    condition     = length([for s in var.capacity_provider_strategy : s if s.base > 0]) <= 1
    error_message = "capacity_provider_strategy: only one capacity provider may have a base (ECS refuses more)."
  }

  validation {
    condition     = anytrue([for s in var.capacity_provider_strategy : s.weight > 0])
    error_message = "capacity_provider_strategy: at least one capacity provider needs a weight above 0, or no task is ever placed."
  }
}

variable "container" {
  description = "The service's one container. image is the first deployment's image; the pipeline deploys every later one (by digest), and Terraform ignores the task definition afterwards."
  type = object({
    name          = optional(string, "app")
    image         = string
    cpu           = optional(number, 256)
    memory        = optional(number, 512)
    port          = optional(number)
    environment   = optional(map(string), {})
    secrets       = optional(map(string), {})
    command       = optional(list(string))
    stop_timeout  = optional(number, 30)
    readonly_root = optional(bool, true)
  })

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$", var.container.name))
    error_message = "container.name: letters, digits, '-' and '_' (it is the name imagedefinitions.json refers to)."
  }

  validation {
    condition     = var.container.port == null || try(var.container.port >= 1 && var.container.port <= 65535, false)
    error_message = "container.port must be 1-65535."
  }

  validation {
    condition     = var.container.stop_timeout >= 2 && var.container.stop_timeout <= 120
    error_message = "container.stop_timeout must be 2-120 seconds (the ECS agent's limit)."
  }

  validation {
    condition = alltrue([for k, v in var.container.secrets :
    can(regex("^arn:aws[a-z-]*:(ssm|secretsmanager):", v))])
    error_message = "container.secrets: each value must be an SSM parameter or Secrets Manager ARN; the execution role may read exactly these."
  }
}

variable "desired_count" {
  description = "Number of tasks at the first apply. Application Auto Scaling or operators own it afterwards (changes are ignored)."
  type        = number
  default     = 2

  validation {
    condition     = var.desired_count >= 0 && floor(var.desired_count) == var.desired_count
    error_message = "desired_count must be a whole number >= 0."
  }
}

variable "deployment" {
  description = "Rolling update. A drain replaces a draining instance's tasks within these bounds too, so at least one task must be able to move: with minimum 100 % and maximum 100 % a drain never finishes. The circuit breaker rolls a failing deployment back."
  type = object({
    minimum_healthy_percent = optional(number, 100)
    maximum_percent         = optional(number, 200)
    circuit_breaker         = optional(bool, true)
    rollback                = optional(bool, true)
  })
  default = {}

  validation {
    condition     = var.deployment.minimum_healthy_percent >= 0 && var.deployment.minimum_healthy_percent <= 100
    error_message = "deployment.minimum_healthy_percent must be 0-100."
  }

  validation {
    condition     = var.deployment.maximum_percent >= 100 && var.deployment.maximum_percent <= 200
    error_message = "deployment.maximum_percent must be 100-200."
  }

  validation {
    condition     = !(var.deployment.minimum_healthy_percent >= 100 && var.deployment.maximum_percent <= 100)
    error_message = "deployment: minimum_healthy_percent 100 with maximum_percent 100 lets no task move, so a drained instance's tasks are never replaced and ecs-boot's drain can only end at its deadline. Lower the minimum or raise the maximum (default 100/200)."
  }

  # ECS rounds the minimum up and the maximum down (task counts): with few tasks, percentages that
  # look fine still leave no room. At least one task must be stoppable or startable.
  validation {
    condition = var.desired_count == 0 || (
      floor(var.desired_count * var.deployment.maximum_percent / 100) > var.desired_count ||
      ceil(var.desired_count * var.deployment.minimum_healthy_percent / 100) < var.desired_count
    )
    error_message = "deployment: with this desired_count, ECS rounds minimum_healthy_percent up and maximum_percent down so that no task can be stopped nor an extra one started; a drain could never move a task. Raise maximum_percent or lower minimum_healthy_percent."
  }

  validation {
    condition     = var.deployment.rollback == false || var.deployment.circuit_breaker
    error_message = "deployment.rollback needs circuit_breaker = true (the circuit breaker decides when to roll back)."
  }
}

variable "require_ready_attribute" {
  description = "Place tasks only on container instances with the attribute ecs-boot.ready = true (placement constraint memberOf(attribute:ecs-boot.ready == true)), i.e. instances whose boot ecs-boot has finished and whose essential system containers are alive. Turn off for instances that do not run ecs-boot (they never set it)."
  type        = bool
  default     = true
}

variable "placement_constraints" {
  description = "Extra memberOf expressions in the cluster query language, e.g. [\"attribute:stack == blue\"]."
  type        = list(string)
  default     = []
}

variable "network_mode" {
  description = "\"bridge\" (dynamic host ports, target type instance) or \"awsvpc\" (an ENI per task, target type ip; set network)."
  type        = string
  default     = "bridge"

  validation {
    condition     = contains(["bridge", "awsvpc"], var.network_mode)
    error_message = "network_mode must be \"bridge\" or \"awsvpc\" (\"host\" would let a task reach IMDS and the instance role)."
  }
}

variable "network" {
  description = "awsvpc only: subnets and security groups of the tasks' ENIs."
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
  default = null

  validation {
    condition     = (var.network_mode == "awsvpc") == (var.network != null)
    error_message = "network is required with network_mode \"awsvpc\" and refused otherwise."
  }
}

variable "drain_deadline_seconds" {
  description = "ecs-boot's drain deadline on the instances ([drain] deadline, default 900 s; the instance group's drain_deadline). The load balancer must deregister a task well before ecs-boot gives up on the drain."
  type        = number
  default     = 900

  validation {
    condition     = var.drain_deadline_seconds >= 30 && var.drain_deadline_seconds <= 7200
    error_message = "drain_deadline_seconds must be 30-7200 (a terminate hook's heartbeat range)."
  }
}

variable "load_balancer" {
  description = "Optional: a target group for the container port, attached to an existing listener by a rule. deregistration_delay must be shorter than drain_deadline_seconds, so a drained task has left the load balancer before ecs-boot's deadline."
  type = object({
    vpc_id               = string
    listener_arn         = string
    priority             = number
    path_patterns        = optional(list(string), ["/*"])
    host_headers         = optional(list(string), [])
    protocol             = optional(string, "HTTP")
    deregistration_delay = optional(number, 60)
    health_check_path    = optional(string, "/")
    health_check_matcher = optional(string, "200-399")
  })
  default = null

  validation {
    condition     = var.load_balancer == null || var.container.port != null
    error_message = "load_balancer needs container.port."
  }

  validation {
    condition     = var.load_balancer == null || try(var.load_balancer.deregistration_delay >= 0 && var.load_balancer.deregistration_delay <= 3600, false)
    error_message = "load_balancer.deregistration_delay must be 0-3600 seconds."
  }

  validation {
    condition     = var.load_balancer == null || try(var.load_balancer.deregistration_delay < var.drain_deadline_seconds, false)
    error_message = "load_balancer.deregistration_delay must be shorter than drain_deadline_seconds: ecs-boot completes the terminate hook at its drain deadline, and a task still deregistering then is cut off mid-request."
  }

  validation {
    condition     = var.load_balancer == null || try(contains(["HTTP", "HTTPS"], var.load_balancer.protocol), false)
    error_message = "load_balancer.protocol must be HTTP or HTTPS (an application load balancer listener rule attaches it)."
  }

  validation {
    condition     = var.load_balancer == null || try(var.load_balancer.priority >= 1 && var.load_balancer.priority <= 50000, false)
    error_message = "load_balancer.priority must be 1-50000."
  }
}

variable "health_check_grace_period_seconds" {
  description = "Seconds the scheduler ignores load balancer health checks of a new task (only with load_balancer)."
  type        = number
  default     = 60
}

variable "ecr_repository_arns" {
  description = "ECR repositories the execution role may pull from (the image pipeline's ecr_repository_arn). Empty: images from public registries only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.ecr_repository_arns : can(regex("^arn:aws[a-z-]*:ecr:[a-z0-9-]+:[0-9]{12}:repository/.+$", a))])
    error_message = "ecr_repository_arns: each must be an ECR repository ARN (no wildcards)."
  }
}

variable "task_role_policy_json" {
  description = "Optional IAM policy document for the task role (what the application itself calls). The task role has no permissions otherwise."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "KMS key encrypting the log group. null creates one (with rotation) for this service."
  type        = string
  default     = null
}

variable "secrets_kms_key_arns" {
  description = "Customer managed KMS keys of container.secrets (SecureString, secrets); the execution role may decrypt with them through SSM/Secrets Manager only."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of the service's log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}
