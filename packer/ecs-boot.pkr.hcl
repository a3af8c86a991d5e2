# The ecs-boot AMI: the latest ECS-optimized Amazon Linux 2023 AMI with the ecs-boot RPM, its
# config and its unit enabled, cleaned for a golden image. Build it with packer/build-ami.sh, which
# builds the RPM and fills in ecs_boot_version and git_commit (see README.md).

packer {
  required_version = ">= 1.9.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

# AWS publishes the current ECS-optimized AMI of each architecture under these public parameters.
data "amazon-parameterstore" "ecs_optimized_al2023" {
  region = var.region
  name = (var.architecture == "arm64"
    ? "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"
    : "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
  )
}

locals {
  # Rust and RPM spell the Graviton architecture aarch64; EC2 spells it arm64.
  rpm_arch      = var.architecture == "arm64" ? "aarch64" : "x86_64"
  source_ami    = var.source_ami != "" ? var.source_ami : data.amazon-parameterstore.ecs_optimized_al2023.value
  instance_type = var.instance_type != "" ? var.instance_type : (var.architecture == "arm64" ? "t4g.small" : "t3.small")
  rpm_file = (var.rpm_file != ""
    ? var.rpm_file
    : "${path.root}/../target/${local.rpm_arch}-unknown-linux-gnu/generate-rpm/ecs-boot-${var.ecs_boot_version}-1.${local.rpm_arch}.rpm"
  )
  config_file = var.config_file != "" ? var.config_file : "${path.root}/files/config.toml"
  build_time  = formatdate("YYYYMMDD'T'hhmmss'Z'", timestamp())

  # Tag keys stay outside the `ecs-boot:` namespace the agent reads from instance tags, and use
  # only characters that are valid in IMDS instance tags, should anyone copy them to instances.
  ami_tags = merge(var.extra_tags, {
    Name               = "${var.ami_name_prefix}-${var.ecs_boot_version}-${var.architecture}"
    "ecs-boot-version" = var.ecs_boot_version
    "ecs-boot-commit"  = var.git_commit
    "source-ami"       = local.source_ami
    "base-os"          = "amazon-linux-2023"
  })
}

source "amazon-ebs" "ecs_al2023" {
  region        = var.region
  source_ami    = local.source_ami
  instance_type = local.instance_type
  subnet_id     = var.subnet_id != "" ? var.subnet_id : null

  associate_public_ip_address = var.associate_public_ip_address
  ssh_username                = "ec2-user"
  temporary_key_pair_type     = "ed25519"

  ami_name        = "${var.ami_name_prefix}-${var.ecs_boot_version}-${var.architecture}-${local.build_time}"
  ami_description = "ECS-optimized Amazon Linux 2023 with ecs-boot ${var.ecs_boot_version} (${var.git_commit})"
  # ecs-boot talks to IMDS with v2 tokens only; instances launched from this AMI default to
  # IMDSv2-only (and a hop limit of 2) unless their launch template says otherwise.
  imds_support = "v2.0"

  # The builder itself refuses IMDSv1, as the fleet's instances should.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  # Encrypted root volume, so the AMI's snapshot is encrypted too.
  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.root_volume_size
    volume_type           = "gp3"
    encrypted             = true
    kms_key_id            = var.kms_key_id != "" ? var.kms_key_id : null
    delete_on_termination = true
  }
  encrypt_boot = true
  kms_key_id   = var.kms_key_id != "" ? var.kms_key_id : null

  tags          = local.ami_tags
  snapshot_tags = local.ami_tags
  run_tags      = merge(var.extra_tags, { Name = "packer-${var.ami_name_prefix}-${var.ecs_boot_version}" })
}

build {
  name    = "ecs-boot"
  sources = ["source.amazon-ebs.ecs_al2023"]

  provisioner "file" {
    source      = local.rpm_file
    destination = "/tmp/ecs-boot.rpm"
  }

  provisioner "file" {
    source      = local.config_file
    destination = "/tmp/ecs-boot-config.toml"
  }

  # One job per script, in order; each is also run for real in the simulated instance under
  # tests/sim/. 90-cleanup.sh must stay last: it removes everything this build left behind.
  provisioner "shell" {
    environment_vars = [
      "ECS_BOOT_RPM=/tmp/ecs-boot.rpm",
      "ECS_BOOT_CONFIG=/tmp/ecs-boot-config.toml",
    ]
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    scripts = [
      "${path.root}/scripts/10-install-rpm.sh",
      "${path.root}/scripts/20-install-config.sh",
      "${path.root}/scripts/30-enable-units.sh",
      "${path.root}/scripts/90-cleanup.sh",
    ]
  }

  post-processor "manifest" {
    output     = "${path.root}/manifest.json"
    strip_path = true
    custom_data = {
      ecs_boot_version = var.ecs_boot_version
      git_commit       = var.git_commit
      architecture     = var.architecture
      source_ami       = local.source_ami
    }
  }
}
