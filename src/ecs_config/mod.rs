//! `/etc/ecs/ecs.config`: rendered for ecs-init's naive parser (split on the first `=`, value
//! verbatim, no quotes or comments), written atomically so a half-written file never exists.

pub mod attribute;
pub mod source;
pub mod vars;

pub use source::VarSource;

pub use crate::util::atomic_file::{WriteError, WriteOutcome, sha256_hex, write_atomic};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use thiserror::Error;

// Marker lines have no `=`, so ecs-init skips them.
pub const BEGIN: &str = "# BEGIN ecs-boot: this block is rewritten at every boot; change tags or /etc/ecs-boot/config.toml instead";
pub const END: &str = "# END ecs-boot";

/// The largest ecs.config ecs-boot reads back (user data may have written it): a few hundred
/// variables of JSON fit many times over.
pub const MAX_EXISTING: u64 = 1 << 20;

/// Why the ecs.config already on disk cannot be rendered over. ecs-boot keeps every line it does
/// not manage (user data's own settings, `ECS_DISABLE_PRIVILEGED=true` among them), so a file it
/// cannot read exactly is refused, never rewritten without those lines.
#[derive(Debug, Error)]
pub enum ExistingError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_EXISTING} bytes")]
    TooLarge { path: PathBuf },
    #[error(
        "{path} line {line} is not UTF-8 text (byte {column}); ecs-boot will not rewrite the file without its other lines"
    )]
    NotUtf8 {
        path: PathBuf,
        line: usize,
        column: usize,
    },
}

/// The ecs.config on disk as text, `None` when there is none.
pub fn read_existing(path: &Path) -> Result<Option<String>, ExistingError> {
    use std::io::Read;
    let read = |source| ExistingError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_EXISTING + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_EXISTING {
        return Err(ExistingError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    String::from_utf8(bytes).map(Some).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let line_start = bytes[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        ExistingError::NotUtf8 {
            path: path.to_path_buf(),
            line: 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count(),
            column: 1 + at - line_start,
        }
    })
}

/// The variables to write, which of them are secret (masked in `render`, never logged), and
/// where each came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentEnv {
    pub vars: BTreeMap<String, String>,
    pub secret: BTreeSet<String>,
    /// One entry per variable in `vars` (see `config::layers::build`).
    pub sources: BTreeMap<String, VarSource>,
}

impl AgentEnv {
    pub fn cluster(&self) -> &str {
        self.vars
            .get("ECS_CLUSTER")
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Sets `name` and records where its value came from.
    pub fn set(&mut self, name: impl Into<String>, value: String, source: VarSource) {
        let name = name.into();
        self.sources.insert(name.clone(), source);
        self.vars.insert(name, value);
    }

    /// Where every variable of the rendered file comes from, as `status` shows it: ecs-boot's
    /// own, and the user data lines `render` kept (or replaced, which the source then says).
    pub fn sources_in(&self, rendered: &Rendered) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = rendered
            .kept
            .iter()
            .map(|k| (k.clone(), VarSource::UserData.to_string()))
            .collect();
        for name in self.vars.keys() {
            let source = self
                .sources
                .get(name)
                .map_or_else(|| "ecs-boot".to_string(), ToString::to_string);
            let source = if rendered.overridden.contains(name) {
                format!("{source}, over user data's own line")
            } else {
                source
            };
            out.insert(name.clone(), source);
        }
        out
    }
}

/// What rendering found in the existing file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// Keys from lines outside our block that ecs-boot overrides (user data set them too).
    pub overridden: Vec<String>,
    /// Keys from lines outside our block that are kept: user data's own settings.
    pub kept: Vec<String>,
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
        if let Some(key) = setting_key(trimmed) {
            out.kept.push(key.to_string());
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

/// The variable a kept line sets, as systemd's EnvironmentFile reads it (ecs.service loads the
/// file that way): `#` and `;` start comments.
fn setting_key(trimmed: &str) -> Option<&str> {
    if trimmed.starts_with(['#', ';']) {
        return None;
    }
    let (key, _) = trimmed.split_once('=')?;
    Some(key.trim()).filter(|k| !k.is_empty())
}

/// The rendered file with secret values replaced by a short fingerprint, for `render` and logs.
/// Every line is judged by its key as ecs-init reads it (line trimmed, split on the first `=`,
/// key trimmed), whoever wrote it: ours, or user data's own `ECS_ENGINE_AUTH_DATA` kept outside
/// our block.
pub fn mask(text: &str, env: &AgentEnv) -> String {
    text.lines()
        .map(|line| match line.split_once('=') {
            Some((k, v)) if env.secret.contains(k.trim()) || vars::is_secret(k.trim()) => {
                format!("{k}=<secret sha256:{}>", &sha256_hex(v.as_bytes())[..12])
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
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
            sources: Default::default(),
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
    fn an_existing_file_that_is_not_utf8_is_refused_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ecs.config");
        assert!(read_existing(&path).unwrap().is_none());
        fs::write(
            &path,
            b"ECS_DISABLE_PRIVILEGED=true\nECS_LOGLEVEL=info\n# caf\xe9 S3CRET\n",
        )
        .unwrap();
        let err = read_existing(&path).unwrap_err().to_string();
        assert!(
            err.contains(&path.display().to_string())
                && err.contains("line 3")
                && err.contains("byte 6"),
            "{err}"
        );
        assert!(!err.contains("S3CRET"), "{err}");
        fs::write(&path, vec![b'#'; MAX_EXISTING as usize + 1]).unwrap();
        assert!(
            read_existing(&path)
                .unwrap_err()
                .to_string()
                .contains("larger than")
        );
        fs::write(&path, "ECS_DISABLE_PRIVILEGED=true\n").unwrap();
        assert_eq!(
            read_existing(&path).unwrap().unwrap(),
            "ECS_DISABLE_PRIVILEGED=true\n"
        );
    }

    #[test]
    fn user_data_lines_are_named_as_such_kept_or_replaced() {
        let mut e = env(&[("ECS_CLUSTER", "prod")]);
        e.sources.insert(
            "ECS_CLUSTER".into(),
            VarSource::Tag("ecs-boot:cluster".into()),
        );
        let existing = format!(
            "ECS_DISABLE_PRIVILEGED=true\n# ECS_COMMENTED=1\n; ECS_ALSO_COMMENTED=1\n ECS_CLUSTER = mine\n{BEGIN}\nECS_OLD=1\n{END}\n"
        );
        let rendered = render(&e, Some(&existing));
        assert_eq!(rendered.kept, ["ECS_DISABLE_PRIVILEGED"]);
        let sources = e.sources_in(&rendered);
        assert_eq!(
            sources.into_iter().collect::<Vec<_>>(),
            [
                (
                    "ECS_CLUSTER".to_string(),
                    "tag ecs-boot:cluster, over user data's own line".to_string()
                ),
                (
                    "ECS_DISABLE_PRIVILEGED".to_string(),
                    "user data (a line outside ecs-boot's block)".to_string()
                ),
            ]
        );
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
    fn mask_hides_secret_keys_from_user_data_lines_too() {
        let e = env(&[("ECS_CLUSTER", "c")]);
        let existing = "ECS_ENGINE_AUTH_TYPE=dockercfg\nECS_ENGINE_AUTH_DATA={\"r\":{\"auth\":\"dXNlcjpodW50ZXIy\"}}\n  ECS_ENGINE_AUTH_DATA = {\"x\":1}\nECS_LOGLEVEL=info\n";
        let rendered = render(&e, Some(existing));
        assert!(
            rendered.text.contains("dXNlcjpodW50ZXIy"),
            "user data's line is kept"
        );
        let masked = mask(&rendered.text, &e);
        assert!(
            !masked.contains("dXNlcjpodW50ZXIy") && !masked.contains("{\"x\":1}"),
            "{masked}"
        );
        assert_eq!(masked.matches("=<secret sha256:").count(), 2, "{masked}");
        assert!(masked.contains("ECS_LOGLEVEL=info") && masked.contains("ECS_CLUSTER=c"));
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
