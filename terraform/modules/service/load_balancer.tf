################################################################################
# Optional target group: deregistration shorter than ecs-boot's drain deadline (checked by a
# validation of load_balancer), attached to an existing listener by one rule.
################################################################################

resource "aws_lb_target_group" "this" {
  count = var.load_balancer == null ? 0 : 1

  name                 = var.name
  vpc_id               = var.load_balancer.vpc_id
  port                 = var.container.port
  protocol             = var.load_balancer.protocol
  target_type          = var.network_mode == "awsvpc" ? "ip" : "instance"
  deregistration_delay = var.load_balancer.deregistration_delay
  tags                 = var.tags

  health_check {
    enabled             = true
    path                = var.load_balancer.health_check_path
    matcher             = var.load_balancer.health_check_matcher
    protocol            = var.load_balancer.protocol
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener_rule" "this" {
  count = var.load_balancer == null ? 0 : 1

  listener_arn = var.load_balancer.listener_arn
  priority     = var.load_balancer.priority
  tags         = var.tags

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[0].arn
  }

  condition {
    path_pattern {
      values = var.load_balancer.path_patterns
    }
  }

  dynamic "condition" {
    for_each = length(var.load_balancer.host_headers) == 0 ? [] : [var.load_balancer.host_headers]
    content {
      host_header {
        values = condition.value
      }
    }
  }
}
