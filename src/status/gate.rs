//! `ecs-boot gate`: the `ExecStartPre` of ecs.service. `Before=ecs.service` orders but does not
//! require, so without this gate a failed ecs-boot would let the agent start on the golden image's
//! empty ecs.config and join the `default` cluster.

use crate::util::atomic_file::sha256_hex;
use crate::util::paths::Paths;

/// `Ok` only if this boot's ecs-boot wrote the ecs.config that is on disk now, with a cluster.
pub fn check(paths: &Paths) -> Result<String, String> {
    let marker = paths.ready_marker();
    let expected = std::fs::read_to_string(&marker)
        .map_err(|_| format!("ecs-boot has not written a complete ecs.config during this boot ({} is missing); see `ecs-boot status`", marker.display()))?;
    let config = paths.ecs_config();
    let bytes =
        std::fs::read(&config).map_err(|e| format!("cannot read {}: {e}", config.display()))?;
    // A reload lists the old and the new hash while it replaces the file, so the gate never
    // refuses a file ecs-boot wrote (see lifecycle::boot::write).
    let sha = sha256_hex(&bytes);
    if !expected.lines().any(|l| l.trim() == sha) {
        return Err(format!(
            "{} changed after ecs-boot wrote it; run `systemctl restart ecs-boot` to render it again",
            config.display()
        ));
    }
    let text = String::from_utf8_lossy(&bytes);
    let cluster = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("ECS_CLUSTER="))
        .unwrap_or_default();
    if cluster.is_empty() {
        return Err(format!("{} sets no ECS_CLUSTER", config.display()));
    }
    Ok(format!("ecs.config is complete (cluster {cluster})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_needs_the_marker_and_the_same_content() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        assert!(check(&paths).unwrap_err().contains("has not written"));
        std::fs::create_dir_all(paths.ecs_config().parent().unwrap()).unwrap();
        std::fs::create_dir_all(paths.ready_marker().parent().unwrap()).unwrap();
        std::fs::write(paths.ecs_config(), "ECS_CLUSTER=prod\n").unwrap();
        std::fs::write(paths.ready_marker(), sha256_hex(b"ECS_CLUSTER=prod\n")).unwrap();
        assert!(check(&paths).unwrap().contains("prod"));
        std::fs::write(paths.ecs_config(), "ECS_CLUSTER=prod\nECS_X=1\n").unwrap();
        assert!(check(&paths).unwrap_err().contains("changed"));
        std::fs::write(paths.ecs_config(), "ECS_LOGLEVEL=info\n").unwrap();
        std::fs::write(paths.ready_marker(), sha256_hex(b"ECS_LOGLEVEL=info\n")).unwrap();
        assert!(check(&paths).unwrap_err().contains("no ECS_CLUSTER"));
    }

    #[test]
    fn during_a_reload_both_the_old_and_the_new_file_pass() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        std::fs::create_dir_all(paths.ecs_config().parent().unwrap()).unwrap();
        std::fs::create_dir_all(paths.ready_marker().parent().unwrap()).unwrap();
        let (old, new) = (b"ECS_CLUSTER=a\n", b"ECS_CLUSTER=b\n");
        let both = format!("{}\n{}\n", sha256_hex(old), sha256_hex(new));
        std::fs::write(paths.ready_marker(), both).unwrap();
        for content in [&old[..], &new[..]] {
            std::fs::write(paths.ecs_config(), content).unwrap();
            assert!(check(&paths).is_ok());
        }
        std::fs::write(paths.ecs_config(), "ECS_CLUSTER=c\n").unwrap();
        assert!(check(&paths).is_err());
    }
}
