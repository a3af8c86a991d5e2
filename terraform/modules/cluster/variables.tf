variable "name" {
  description = "ECS cluster name."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.name))
    error_message = "name must be 1-255 letters, digits, '-' and '_'."
  }
}

variable "container_insights" {
  description = "Container Insights: \"enabled\", \"enhanced\" or \"disabled\"."
  type        = string
  default     = "enabled"

  validation {
    condition     = contains(["enabled", "enhanced", "disabled"], var.container_insights)
    error_message = "container_insights must be enabled, enhanced or disabled."
  }
}

variable "capacity_providers" {
  description = "Capacity providers of the instance groups in this cluster (each group module's capacity_provider_name output)."
  type        = list(string)
  default     = []
}

variable "fargate" {
  description = "Also associate FARGATE."
  type        = bool
  default     = false
}

variable "fargate_spot" {
  description = "Also associate FARGATE_SPOT."
  type        = bool
  default     = false
}

variable "default_capacity_provider_strategy" {
  description = "The cluster's default strategy: services without their own strategy spread over these providers by weight, base tasks first."
  type = list(object({
    capacity_provider = string
    weight            = optional(number, 1)
    base              = optional(number, 0)
  }))
  default = []
}

variable "tags" {
  description = "Tags for the cluster."
  type        = map(string)
  default     = {}
}
