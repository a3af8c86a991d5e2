################################################################################
# The trusted channel: user data writes /etc/ecs-boot/config.d/50-terraform.toml with cloud-init
# write_files. ecs-boot trusts config.d like its baked config (whoever can change the launch
# template controls the instance anyway) and merges it over the baked file. Per-group settings go
# here, never in tags: anyone who may tag an instance could otherwise move it to another cluster,
# point it at other credentials, or turn its drain off.
#
# Values are written with jsonencode: a JSON string or array of strings is also a valid TOML
# string or inline array. ${region}, ${account_id} and ${instance_id} inside a value reach
# ecs-boot literally and are substituted on the instance from its identity document.
################################################################################

locals {
  config_d_path = "/etc/ecs-boot/config.d/50-terraform.toml"

  config_sections = {
    ecs = concat(
      ["cluster = ${jsonencode(local.cluster_name)}"],
      var.registry_auth != null ? ["registry_auth = ${jsonencode(var.registry_auth)}"] : [],
    )
    "ecs.settings" = [
      for k, v in merge(
        var.awsvpc_block_imds ? { ECS_AWSVPC_BLOCK_IMDS = "true" } : {},
        var.agent_settings,
      ) : "${k} = ${jsonencode(v)}"
    ]
    lifecycle = concat(
      ["launch_hook = ${jsonencode(local.launch_hook_name)}"],
      local.terminate_hook_enabled ? ["terminate_hook = ${jsonencode(local.terminate_hook_name)}"] : [],
    )
    drain = concat(
      # ECS managed draining drains instead: ecs-boot neither sets DRAINING nor completes a hook.
      var.drainer == "ecs-managed" ? ["enabled = false"] : [],
      ["deadline = ${jsonencode("${var.drain_deadline}s")}"],
    )
    recorder = var.recorder_location != null ? ["location = ${jsonencode(var.recorder_location)}"] : []
    metrics = [
      "enabled = ${var.metrics.enabled}",
      "namespace = ${jsonencode(var.metrics.namespace)}",
    ]
    logs = [
      "enabled = ${var.host_logs}",
      "group = ${jsonencode(local.log_group_name)}",
    ]
    trust = [
      "fragment_prefixes = ${jsonencode(var.fragment_locations)}",
      "registry_auth_prefixes = ${jsonencode(var.registry_auth_locations)}",
    ]
  }

  # Fixed section order, so the user data (and with it the launch template) changes only when a
  # setting does.
  config_toml = join("\n", [
    for section in ["ecs", "ecs.settings", "lifecycle", "drain", "recorder", "metrics", "logs", "trust"] :
    "[${section}]\n${join("", [for line in local.config_sections[section] : "${line}\n"])}"
    if length(local.config_sections[section]) > 0
  ])

  cloud_config = "#cloud-config\n${yamlencode({
    write_files = [{
      path        = local.config_d_path
      owner       = "root:root"
      permissions = "0644"
      content     = "# Written by the ecs-boot Terraform module (group ${var.name}); trusted like /etc/ecs-boot/config.toml.\n${local.config_toml}"
    }]
  })}"

  # With extra user data from the caller, both parts go in a MIME multipart archive (cloud-init runs
  # each part by its type).
  mime_boundary = "==ecs-boot-user-data=="
  user_data = var.user_data == null ? local.cloud_config : join("\n", [
    "Content-Type: multipart/mixed; boundary=\"${local.mime_boundary}\"",
    "MIME-Version: 1.0",
    "",
    "--${local.mime_boundary}",
    "Content-Type: text/cloud-config; charset=\"us-ascii\"",
    "",
    local.cloud_config,
    "--${local.mime_boundary}",
    "Content-Type: ${startswith(var.user_data, "#cloud-config") ? "text/cloud-config" : "text/x-shellscript"}; charset=\"us-ascii\"",
    "",
    var.user_data,
    "--${local.mime_boundary}--",
    "",
  ])
}
