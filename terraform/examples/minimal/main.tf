# The smallest useful deployment: existing network, module defaults (new cluster, ecs-boot drains,
# no ingress, IMDS hop limit 1).
module "ecs_boot" {
  source = "../../"

  name       = "ecs-boot-minimal"
  vpc_id     = var.vpc_id
  subnet_ids = var.subnet_ids
  ami_id     = var.ami_id
}
