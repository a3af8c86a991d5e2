//! `/etc/ecs/ecs.config`: rendered for ecs-init's naive parser (split on the first `=`, value
//! verbatim, no quotes or comments), written atomically so a half-written file never exists.

use crate::agent_env::AgentEnv;
use crate::paths::parent_dir;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

// Marker lines have no `=`, so ecs-init skips them.
pub const BEGIN: &str = "# BEGIN ecs-boot: this block is rewritten at every boot; change tags or /etc/ecs-boot/config.toml instead";
pub const END: &str = "# END ecs-boot";

#[derive(Debug, Error)]
pub enum WriteError {
    #[error("cannot write {path}: {source} (the previous file is left as it was)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What rendering found in the existing file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// Keys from lines outside our block that ecs-boot overrides (user data set them too).
    pub overridden: Vec<String>,
}

/// Renders the file: lines outside our block are kept in order (user data may add some), except
/// those setting a key we manage; then our block, sorted by key, so the same inputs give the same
/// bytes.
pub fn render(env: &AgentEnv, existing: Option<&str>) -> Rendered {
    let mut out = Rendered::default();
    let mut inside = false;
    for line in existing.unwrap_or_default().lines() {
        let trimmed = line.trim();
        if trimmed == BEGIN {
            inside = true;
            continue;
        }
        if trimmed == END {
            inside = false;
            continue;
        }
        if inside || trimmed.is_empty() {
            continue;
        }
        if let Some((key, _)) = trimmed.split_once('=')
            && env.vars.contains_key(key.trim())
        {
            out.overridden.push(key.trim().to_string());
            continue;
        }
        out.text.push_str(line);
        out.text.push('\n');
    }
    out.text.push_str(BEGIN);
    out.text.push('\n');
    for (k, v) in &env.vars {
        out.text.push_str(&format!("{k}={v}\n"));
    }
    out.text.push_str(END);
    out.text.push('\n');
    out
}

/// The rendered file with secret values replaced by a short fingerprint, for `render` and logs.
pub fn mask(text: &str, env: &AgentEnv) -> String {
    text.lines()
        .map(|line| match line.split_once('=') {
            Some((k, v)) if env.secret.contains(k) => {
                format!("{k}=<secret sha256:{}>", &sha256_hex(v.as_bytes())[..12])
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// Same bytes already on disk: the file (and its mtime) is left untouched.
    Unchanged,
}

/// Writes `content` to `path` atomically with mode 0600: temp file in the same directory, fsync,
/// rename, fsync of the directory. On any error the old file is intact.
pub fn write_atomic(path: &Path, content: &[u8]) -> Result<WriteOutcome, WriteError> {
    write_file(path, content, Durability::Fsync)
}

/// How far a write must go before it counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Survives power loss: fsync of the file and of its directory (ecs.config).
    Fsync,
    /// Survives a crash of the process (rename is atomic), not power loss: for records that are
    /// only meaningful within the current boot anyway (the state file).
    RenameOnly,
}

pub fn write_file(
    path: &Path,
    content: &[u8],
    durability: Durability,
) -> Result<WriteOutcome, WriteError> {
    let io = |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(current) = fs::read(path)
        && current == content
    {
        // Tighten a loosened mode without touching content or mtime.
        let perms = fs::metadata(path).map_err(io)?.permissions();
        if perms.mode() & 0o777 != 0o600 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        return Ok(WriteOutcome::Unchanged);
    }
    let dir = parent_dir(path);
    fs::create_dir_all(dir).map_err(io)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale_temps(dir, &file_name);
    let tmp = dir.join(format!(".{file_name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(content)?;
        if nix::unistd::geteuid().is_root() {
            nix::unistd::fchown(&f, Some(0.into()), Some(0.into()))
                .map_err(std::io::Error::from)?;
        }
        if durability == Durability::Fsync {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        match durability {
            Durability::Fsync => File::open(dir)?.sync_all(),
            Durability::RenameOnly => Ok(()),
        }
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(WriteOutcome::Written)
}

/// A crash between create and rename leaves a temp file behind; the next write clears it.
fn remove_stale_temps(dir: &Path, file_name: &str) {
    let prefix = format!(".{file_name}.tmp.");
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// What the ECS agent's checkpoint says about the cluster, if it disagrees with ours: the agent
/// refuses to register into a different cluster than its saved state names.
pub fn checkpoint_conflict(agent_data_dir: &Path, cluster: &str) -> Option<String> {
    let json_state = agent_data_dir.join("ecs_agent_data.json");
    if let Ok(text) = fs::read_to_string(&json_state) {
        let saved = serde_json::from_str::<serde_json::Value>(&text)
            .ok()?
            .pointer("/Data/Cluster")?
            .as_str()?
            .to_string();
        if !saved.is_empty() && saved != cluster {
            return Some(format!(
                "the ECS agent checkpoint {} names cluster {saved:?}, not {cluster:?}: the agent will refuse to register until /var/lib/ecs/data is cleared",
                json_state.display()
            ));
        }
        return None;
    }
    let db = agent_data_dir.join("agent.db");
    let bytes = fs::read(&db).ok()?;
    let mentions = bytes
        .windows(cluster.len().max(1))
        .any(|w| w == cluster.as_bytes());
    (!mentions).then(|| format!("the ECS agent checkpoint {} does not mention cluster {cluster:?}: if it was baked into the AMI, the agent will refuse to register until /var/lib/ecs/data is cleared", db.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn env(pairs: &[(&str, &str)]) -> AgentEnv {
        AgentEnv {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            secret: Default::default(),
        }
    }

    #[test]
    fn golden_render_keeps_user_lines_and_replaces_ours() {
        let existing = "ECS_LOGLEVEL=warn\nECS_CLUSTER=from-user-data\n\n# BEGIN ecs-boot: old\n";
        let existing =
            format!("{existing}{BEGIN}\nECS_CLUSTER=old\nECS_GONE=1\n{END}\nECS_AFTER=1\n");
        let r = render(
            &env(&[
                ("ECS_CLUSTER", "prod"),
                ("ECS_INSTANCE_ATTRIBUTES", r#"{"a":"b"}"#),
            ]),
            Some(&existing),
        );
        assert_eq!(
            r.text,
            format!(
                "ECS_LOGLEVEL=warn\n# BEGIN ecs-boot: old\nECS_AFTER=1\n{BEGIN}\nECS_CLUSTER=prod\nECS_INSTANCE_ATTRIBUTES={{\"a\":\"b\"}}\n{END}\n"
            )
        );
        assert_eq!(r.overridden, vec!["ECS_CLUSTER".to_string()]);
        // Rendering its own output again is a fixed point.
        let again = render(
            &env(&[
                ("ECS_CLUSTER", "prod"),
                ("ECS_INSTANCE_ATTRIBUTES", r#"{"a":"b"}"#),
            ]),
            Some(&r.text),
        );
        assert_eq!(again.text, r.text);
    }

    #[test]
    fn markers_have_no_equals_sign() {
        assert!(!BEGIN.contains('=') && !END.contains('='));
    }

    #[test]
    fn mask_hides_secret_values() {
        let mut e = env(&[
            ("ECS_CLUSTER", "c"),
            ("ECS_ENGINE_AUTH_DATA", "{\"x\":{\"auth\":\"c2VjcmV0\"}}"),
        ]);
        e.secret.insert("ECS_ENGINE_AUTH_DATA".into());
        let masked = mask(&render(&e, None).text, &e);
        assert!(!masked.contains("c2VjcmV0"));
        assert!(masked.contains("ECS_ENGINE_AUTH_DATA=<secret sha256:"));
        assert!(masked.contains("ECS_CLUSTER=c"));
    }

    #[test]
    fn atomic_write_sets_0600_and_keeps_mtime_when_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/ecs/ecs.config");
        assert_eq!(
            write_atomic(&path, b"A=1\n").unwrap(),
            WriteOutcome::Written
        );
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            write_atomic(&path, b"A=1\n").unwrap(),
            WriteOutcome::Unchanged
        );
        assert_eq!(fs::metadata(&path).unwrap().mtime_nsec(), meta.mtime_nsec());
        assert_eq!(
            write_atomic(&path, b"A=2\n").unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(fs::read(&path).unwrap(), b"A=2\n");
        assert_eq!(
            fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ecs.config");
        fs::write(&path, b"OLD=1\n").unwrap();
        // A directory where the temp file would go makes the write fail midway.
        let blocker = dir
            .path()
            .join(format!(".ecs.config.tmp.{}", std::process::id()));
        fs::create_dir(&blocker).unwrap();
        fs::write(blocker.join("x"), b"").unwrap();
        let err = write_atomic(&path, b"NEW=1\n").unwrap_err().to_string();
        assert!(err.contains("previous file is left"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"OLD=1\n");
    }

    #[test]
    fn checkpoint_naming_another_cluster_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(checkpoint_conflict(dir.path(), "prod"), None);
        fs::write(
            dir.path().join("ecs_agent_data.json"),
            r#"{"Data":{"Cluster":"staging"}}"#,
        )
        .unwrap();
        assert!(
            checkpoint_conflict(dir.path(), "prod")
                .unwrap()
                .contains("staging")
        );
        assert_eq!(checkpoint_conflict(dir.path(), "staging"), None);
    }
}
