output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "availability_zones" {
  description = "The zones used, in subnet order."
  value       = local.azs
}

# From the route table associations, whose tables carry the NAT route inline: whatever is launched
# into these subnets (the instance groups' subnet_ids) finds its way to the AWS APIs from the start.
output "private_subnet_ids" {
  description = "Private subnets, one per zone, for the instances; known once each is associated with its route table and that table's NAT route."
  value       = aws_route_table_association.private[*].subnet_id
}

output "public_subnet_ids" {
  description = "Public subnets, one per zone, for internet-facing load balancers; known once each is associated with the public route table and its internet route exists."
  value       = aws_route_table_association.public[*].subnet_id
  depends_on  = [aws_route.public_internet]
}

output "private_route_table_ids" {
  description = "Route tables of the private subnets, one per zone (for gateway endpoints)."
  value       = aws_route_table.private[*].id
}

output "public_route_table_id" {
  description = "Route table of the public subnets."
  value       = aws_route_table.public.id
}

output "nat_gateway_ids" {
  description = "NAT gateways: one per zone, or one when single_nat_gateway."
  value       = aws_nat_gateway.this[*].id
}

output "nat_public_ips" {
  description = "Elastic IPs the instances' outbound traffic leaves from (for allowlists elsewhere)."
  value       = aws_eip.nat[*].public_ip
}

output "flow_log_group_name" {
  description = "Name of the CloudWatch log group receiving the VPC's flow logs."
  value       = aws_cloudwatch_log_group.flow_logs.name
}

output "flow_log_group_arn" {
  description = "ARN of the CloudWatch log group receiving the VPC's flow logs."
  value       = aws_cloudwatch_log_group.flow_logs.arn
}

output "flow_log_kms_key_arn" {
  description = "ARN of the KMS key encrypting the flow-log group."
  value       = aws_kms_key.flow_logs.arn
}
