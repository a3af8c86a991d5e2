# The ecs-boot AMI: the latest ECS-optimized Amazon Linux 2023 or Amazon Linux 2 AMI, x86_64 or
# arm64, with the ecs-boot RPM, its config and its unit enabled, cleaned for a golden image, then
# published for Terraform and the AMI pipeline. Build it with packer/build-ami.sh, which builds the
# RPM and fills in ecs_boot_version and git_commit (see README.md).
#
# Every decision that depends on a variable is a local, so tests/test_packer.py can evaluate each
# one for every combination of variables with `packer console`; the blocks below only use them.

packer {
  required_version = ">= 1.9.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

# AWS publishes the current ECS-optimized AMI of each base and architecture under a public
# parameter (read even when source_ami pins the base).
data "amazon-parameterstore" "ecs_optimized" {
  region = var.region
  name   = local.base_ami_parameter
}

locals {
  # EC2 spells the Graviton architecture arm64; Rust and RPM spell it aarch64.
  rpm_arch            = var.architecture == "arm64" ? "aarch64" : "x86_64"
  base_os_name        = { al2023 = "amazon-linux-2023", al2 = "amazon-linux-2" }[var.base_os]
  base_os_description = { al2023 = "Amazon Linux 2023", al2 = "Amazon Linux 2" }[var.base_os]
  base_ami_parameter = join("/", compact([
    "/aws/service/ecs/optimized-ami", local.base_os_name, var.architecture == "arm64" ? "arm64" : "", "recommended/image_id",
  ]))
  source_ami      = var.source_ami != "" ? var.source_ami : data.amazon-parameterstore.ecs_optimized.value
  instance_type   = var.instance_type != "" ? var.instance_type : (var.architecture == "arm64" ? "t4g.small" : "t3.small")
  ami_name_prefix = var.ami_name_prefix != "" ? var.ami_name_prefix : "ecs-boot-${var.base_os}"
  ami_name        = "${local.ami_name_prefix}-${var.ecs_boot_version}-${var.architecture}-${local.build_time}"
  rpm_file = (var.rpm_file != ""
    ? var.rpm_file
    : "${path.root}/../target/${local.rpm_arch}-unknown-linux-gnu/generate-rpm/ecs-boot-${var.ecs_boot_version}-1.${local.rpm_arch}.rpm"
  )
  config_file = var.config_file != "" ? var.config_file : "${path.root}/files/config.toml"
  build_time  = formatdate("YYYYMMDD'T'hhmmss'Z'", timestamp())

  # Builder access. session_manager: SSH runs through an SSM session, and the plugin then adds no
  # inbound rule to its temporary security group. ssh: port 22 is open to ssh_source_cidrs, or to
  # this host's public address, never to 0.0.0.0/0 (the plugin's own default).
  session_manager            = var.builder_access == "session_manager"
  ssh_interface              = local.session_manager ? "session_manager" : null
  iam_instance_profile       = var.iam_instance_profile != "" ? var.iam_instance_profile : null
  temporary_instance_profile = local.session_manager && var.iam_instance_profile == ""
  ssh_source_public_ip       = var.builder_access == "ssh" && length(var.ssh_source_cidrs) == 0
  ssh_source_cidrs           = var.builder_access == "ssh" && length(var.ssh_source_cidrs) > 0 ? var.ssh_source_cidrs : null
  # What the SSM agent needs to register and carry a session (AmazonSSMManagedInstanceCore's
  # agent actions; ec2messages for agents older than 3.x). None of them takes a resource scope.
  session_manager_actions = [
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
  ]

  # Sharing and encryption.
  kms_key_id         = var.kms_key_id != "" ? var.kms_key_id : null
  region_kms_key_ids = length(var.region_kms_key_ids) > 0 ? var.region_kms_key_ids : null
  deprecate_at       = var.deprecate_at != "" ? var.deprecate_at : null
  shared             = length(var.ami_users) + length(var.ami_org_arns) > 0

  # Handoff: the parameter Terraform reads, per base and architecture, and the manifest.
  ami_ssm_parameter = (var.ami_ssm_parameter != ""
    ? var.ami_ssm_parameter
    : (var.base_os == "al2023" ? "/ecs-boot/ami/${var.architecture}" : "/ecs-boot/ami/al2/${var.architecture}")
  )
  manifest_file = "${path.root}/manifest.json"

  # Rules across variables (a variable's validation sees only itself). A broken rule fails
  # `packer validate` and `packer build` with the message as the "missing file" name.
  checks = [
    for rule in [
      {
        ok      = local.shared == false || var.kms_key_id != ""
        message = "sharing the AMI (ami_users, ami_org_arns) needs kms_key_id: the default aws/ebs key cannot be used by other accounts"
      },
      {
        ok      = alltrue([for r in keys(var.region_kms_key_ids) : contains(var.ami_regions, r)])
        message = "every region_kms_key_ids key must be one of ami_regions"
      },
      {
        # The plugin's rule: once the map is given, it is read for every copy.
        ok      = length(var.region_kms_key_ids) == 0 || alltrue([for r in var.ami_regions : contains(keys(var.region_kms_key_ids), r)])
        message = "region_kms_key_ids, once set, needs a key for every ami_regions region"
      },
      {
        ok      = length(var.region_kms_key_ids) == 0 || var.kms_key_id != ""
        message = "region_kms_key_ids needs kms_key_id for the AMI in region"
      },
      {
        ok      = contains(var.ami_regions, var.region) == false
        message = "ami_regions lists copies: leave out region, where the AMI is built"
      },
    ] : rule.ok ? "ok" : file("ERROR: ${rule.message}")
  ]

  # Tag keys stay outside the `ecs-boot:` namespace the agent reads from instance tags, and use
  # only characters that are valid in IMDS instance tags, should anyone copy them to instances.
  ami_tags = merge(var.extra_tags, {
    Name               = "${local.ami_name_prefix}-${var.ecs_boot_version}-${var.architecture}"
    "ecs-boot-version" = var.ecs_boot_version
    "ecs-boot-commit"  = var.git_commit
    "source-ami"       = local.source_ami
    "base-os"          = local.base_os_name
    "architecture"     = var.architecture
  })
}

source "amazon-ebs" "ecs_boot" {
  region        = var.region
  source_ami    = local.source_ami
  instance_type = local.instance_type
  subnet_id     = var.subnet_id != "" ? var.subnet_id : null

  # No public SSH: see the builder-access locals.
  associate_public_ip_address               = var.associate_public_ip_address
  ssh_username                              = "ec2-user"
  temporary_key_pair_type                   = "ed25519"
  ssh_interface                             = local.ssh_interface
  iam_instance_profile                      = local.iam_instance_profile
  temporary_security_group_source_public_ip = local.ssh_source_public_ip
  temporary_security_group_source_cidrs     = local.ssh_source_cidrs
  dynamic "temporary_iam_instance_profile_policy_document" {
    for_each = local.temporary_instance_profile ? [local.session_manager_actions] : []
    content {
      Version = "2012-10-17"
      Statement {
        Effect   = "Allow"
        Action   = temporary_iam_instance_profile_policy_document.value
        Resource = ["*"]
      }
    }
  }

  ami_name        = local.ami_name
  ami_description = "ECS-optimized ${local.base_os_description} (${var.architecture}) with ecs-boot ${var.ecs_boot_version} (${var.git_commit})"
  # ecs-boot talks to IMDS with v2 tokens only; instances launched from this AMI default to
  # IMDSv2-only (and a hop limit of 2) unless their launch template says otherwise.
  imds_support = "v2.0"

  # The builder itself refuses IMDSv1, as the fleet's instances should.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  # Encrypted root volume, so the AMI's snapshot (and every copy) is encrypted too.
  launch_block_device_mappings {
    device_name = "/dev/xvda"
    volume_size = var.root_volume_size
    volume_type = "gp3"
    # gp3's free baseline, stated: Packer 1.6.6's validation (the CI's) insists on both.
    iops                  = 3000
    throughput            = 125
    encrypted             = true
    kms_key_id            = local.kms_key_id
    delete_on_termination = true
  }
  encrypt_boot       = true
  kms_key_id         = local.kms_key_id
  region_kms_key_ids = local.region_kms_key_ids

  # Sharing and lifecycle: copies in ami_regions get the same launch permissions and deprecation.
  ami_regions  = var.ami_regions
  ami_users    = var.ami_users
  ami_org_arns = var.ami_org_arns
  deprecate_at = local.deprecate_at

  tags          = local.ami_tags
  snapshot_tags = local.ami_tags
  run_tags      = merge(var.extra_tags, { Name = "packer-${local.ami_name_prefix}-${var.ecs_boot_version}-${var.architecture}" })
}

build {
  name    = "ecs-boot"
  sources = ["source.amazon-ebs.ecs_boot"]

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
      "CLOUDWATCH_AGENT_RPM=${var.cloudwatch_agent_rpm}",
    ]
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    scripts = [
      "${path.root}/scripts/10-install-rpm.sh",
      "${path.root}/scripts/20-install-config.sh",
      "${path.root}/scripts/25-install-cloudwatch-agent.sh",
      "${path.root}/scripts/30-enable-units.sh",
      "${path.root}/scripts/40-systemd-compat.sh",
      "${path.root}/scripts/90-cleanup.sh",
    ]
  }

  # In sequence: the manifest is on disk before publish-ami.py reads it.
  post-processors {
    post-processor "manifest" {
      output     = local.manifest_file
      strip_path = true
      custom_data = {
        ecs_boot_version  = var.ecs_boot_version
        git_commit        = var.git_commit
        architecture      = var.architecture
        base_os           = var.base_os
        source_ami        = local.source_ami
        ami_ssm_parameter = local.ami_ssm_parameter
      }
    }

    # The handoff: the AMI id of every region to the SSM parameter Terraform reads, and this
    # run's manifest to where the AMI pipeline's source reads it. Runs on the Packer host.
    post-processor "shell-local" {
      environment_vars = [
        "ECS_BOOT_PUBLISH=${var.publish}",
        "ECS_BOOT_MANIFEST=${local.manifest_file}",
        "ECS_BOOT_AMI_PARAMETER=${local.ami_ssm_parameter}",
        "ECS_BOOT_MANIFEST_S3_URI=${var.manifest_s3_uri}",
      ]
      execute_command = ["/bin/sh", "-c", "{{.Vars}} python3 {{.Script}}"]
      script          = "${path.root}/publish-ami.py"
    }
  }
}
