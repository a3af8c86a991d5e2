# The network used to be written out in this example (vpc.tf); it is modules/network now. These
# blocks move a deployment applied before that into the module, so Terraform keeps the VPC, its
# subnets, NAT gateways and flow logs instead of destroying and recreating them.

moved {
  from = aws_vpc.this
  to   = module.network.aws_vpc.this
}

moved {
  from = aws_default_security_group.this
  to   = module.network.aws_default_security_group.this
}

moved {
  from = aws_internet_gateway.this
  to   = module.network.aws_internet_gateway.this
}

moved {
  from = aws_subnet.public
  to   = module.network.aws_subnet.public
}

moved {
  from = aws_subnet.private
  to   = module.network.aws_subnet.private
}

moved {
  from = aws_route_table.public
  to   = module.network.aws_route_table.public
}

moved {
  from = aws_route.public_internet
  to   = module.network.aws_route.public_internet
}

moved {
  from = aws_route_table_association.public
  to   = module.network.aws_route_table_association.public
}

moved {
  from = aws_eip.nat
  to   = module.network.aws_eip.nat
}

moved {
  from = aws_nat_gateway.this
  to   = module.network.aws_nat_gateway.this
}

moved {
  from = aws_route_table.private
  to   = module.network.aws_route_table.private
}

moved {
  from = aws_route_table_association.private
  to   = module.network.aws_route_table_association.private
}

moved {
  from = aws_kms_key.flow_logs
  to   = module.network.aws_kms_key.flow_logs
}

moved {
  from = aws_cloudwatch_log_group.flow_logs
  to   = module.network.aws_cloudwatch_log_group.flow_logs
}

moved {
  from = aws_iam_role.flow_logs
  to   = module.network.aws_iam_role.flow_logs
}

moved {
  from = aws_iam_role_policy.flow_logs
  to   = module.network.aws_iam_role_policy.flow_logs
}

moved {
  from = aws_flow_log.this
  to   = module.network.aws_flow_log.this
}

# The private subnets' default routes were separate aws_route resources; the module's route tables
# carry them inline (so an associated subnet always has one). Forget the old resources without
# destroying them: deleting them would delete the very routes the route tables now declare.
removed {
  from = aws_route.private_nat

  lifecycle {
    destroy = false
  }
}
