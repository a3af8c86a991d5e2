# The smallest useful deployment: existing network, module defaults (its own cluster, ecs-boot
# drains, no ingress, IMDS hop limit 1, the AMI from the SSM parameter /ecs-boot/ami/x86_64 that
# the Packer build publishes).
module "ecs_boot" {
  source = "../../"

  name       = var.name
  vpc_id     = var.vpc_id
  subnet_ids = var.subnet_ids
  ami_id     = var.ami_id
}
