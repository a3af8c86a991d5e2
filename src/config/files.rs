//! The trusted layers on disk: the baked `/etc/ecs-boot/config.toml`, then every
//! `/etc/ecs-boot/config.d/*.toml` in name order (written by user data: whoever can edit the
//! launch template already controls the instance, so it is trusted like the AMI). String values
//! may use `${region}`, `${account_id}` and `${instance_id}` from the instance identity document,
//! so one AMI and one launch template serve every account and region.

use super::ConfigError;
use crate::sources::imds::Identity;
use std::path::{Path, PathBuf};

/// Larger than any real config; a bigger file is a mistake, not a config.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;
/// At most this many config.d files are read.
pub const MAX_DROP_INS: usize = 64;

/// One trusted layer: where it came from and its TOML table (placeholders not yet substituted).
#[derive(Debug, Clone)]
pub struct Layer {
    pub origin: String,
    pub table: toml::Table,
    /// A `config.d/` drop-in (user data's), not the baked file: status names which.
    pub drop_in: bool,
}

/// The baked file (missing = defaults) and its config.d drop-ins, in merge order.
pub fn read_layers(baked: &Path) -> Result<Vec<Layer>, ConfigError> {
    let mut layers = Vec::new();
    if let Some(table) = read_toml(baked)? {
        layers.push(Layer {
            origin: baked.display().to_string(),
            table,
            drop_in: false,
        });
    }
    for path in drop_ins(&config_d(baked))? {
        if let Some(table) = read_toml(&path)? {
            layers.push(Layer {
                origin: path.display().to_string(),
                table,
                drop_in: true,
            });
        }
    }
    Ok(layers)
}

/// `config.d` beside the baked file: `/etc/ecs-boot/config.d` for `/etc/ecs-boot/config.toml`.
pub fn config_d(baked: &Path) -> PathBuf {
    crate::util::paths::parent_dir(baked).join("config.d")
}

fn drop_ins(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| {
            // Editors' and package managers' leftovers (.foo.toml.swp, x.toml.rpmnew) never count.
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    if files.len() > MAX_DROP_INS {
        return Err(ConfigError::Invalid {
            origin: dir.display().to_string(),
            key: "config.d".into(),
            problem: format!("{} files; at most {MAX_DROP_INS} are read", files.len()),
        });
    }
    Ok(files)
}

fn read_toml(path: &Path) -> Result<Option<toml::Table>, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    let mut text = String::new();
    use std::io::Read;
    let n = file
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if n as u64 > MAX_FILE_BYTES {
        return Err(ConfigError::Invalid {
            origin: path.display().to_string(),
            key: "(file)".into(),
            problem: format!("larger than {MAX_FILE_BYTES} bytes"),
        });
    }
    super::parse_table(&text, &path.display().to_string(), false).map(Some)
}

/// Stand-ins used before the identity document is read (and by `check-config`): the shapes of
/// real values, so a substituted location or name validates the same way.
const STAND_IN: (&str, &str, &str) = ("us-east-1", "000000000000", "i-00000000000000000");

/// Replaces `${region}`, `${account_id}` and `${instance_id}` in every string of `table`.
/// Any other `${...}` is an error naming the key; a `$` not followed by `{` is kept.
pub fn substitute(
    table: &mut toml::Table,
    identity: Option<&Identity>,
    origin: &str,
) -> Result<(), ConfigError> {
    let (region, account, instance) = match identity {
        Some(id) => (
            id.region.as_str(),
            id.account_id.as_str(),
            id.instance_id.as_str(),
        ),
        None => STAND_IN,
    };
    let vars = [
        ("region", region),
        ("account_id", account),
        ("instance_id", instance),
    ];
    walk_strings(table, "", &mut |path, s| {
        if path.starts_with("proxy") && s.contains("${") {
            // Docker's proxy is written before IMDS is asked anything (docker-proxy).
            return Err(ConfigError::Invalid {
                origin: origin.to_string(),
                key: path.to_string(),
                problem: "placeholders are not available in [proxy]".into(),
            });
        }
        substitute_str(s, &vars).map_err(|problem| ConfigError::Invalid {
            origin: origin.to_string(),
            key: path.to_string(),
            problem,
        })
    })
}

fn substitute_str(s: &mut String, vars: &[(&str, &str)]) -> Result<(), String> {
    if !s.contains("${") {
        return Ok(());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after.find('}').ok_or_else(|| {
            "an unclosed ${ (use ${region}, ${account_id} or ${instance_id})".to_string()
        })?;
        let name = &after[..end];
        let value = vars
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                format!("${{{name}}} is not a placeholder (use ${{region}}, ${{account_id}} or ${{instance_id}})")
            })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    *s = out;
    Ok(())
}

fn walk_strings(
    table: &mut toml::Table,
    prefix: &str,
    f: &mut dyn FnMut(&str, &mut String) -> Result<(), ConfigError>,
) -> Result<(), ConfigError> {
    for (key, value) in table.iter_mut() {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        walk_value(value, &path, f)?;
    }
    Ok(())
}

fn walk_value(
    value: &mut toml::Value,
    path: &str,
    f: &mut dyn FnMut(&str, &mut String) -> Result<(), ConfigError>,
) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) => f(path, s),
        toml::Value::Table(t) => walk_strings(t, path, f),
        toml::Value::Array(items) => {
            for item in items {
                walk_value(item, path, f)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            instance_id: "i-0abc".into(),
            region: "eu-west-1".into(),
            account_id: "111122223333".into(),
            availability_zone: String::new(),
            instance_type: String::new(),
        }
    }

    #[test]
    fn placeholders_come_from_the_identity_document() {
        let mut t: toml::Table = toml::from_str(
            "[trust]\nfragment_prefixes = [\"s3://cfg-${account_id}-${region}/ecs/\"]\n[ecs]\ncluster = \"web-${region}\"\nregistry_auth = \"ssm:/x/${instance_id}$\"\n",
        )
        .unwrap();
        substitute(&mut t, Some(&identity()), "f").unwrap();
        assert_eq!(t["ecs"]["cluster"].as_str(), Some("web-eu-west-1"));
        assert_eq!(
            t["trust"]["fragment_prefixes"][0].as_str(),
            Some("s3://cfg-111122223333-eu-west-1/ecs/")
        );
        assert_eq!(t["ecs"]["registry_auth"].as_str(), Some("ssm:/x/i-0abc$"));
    }

    #[test]
    fn unknown_placeholders_name_the_key_and_file() {
        for text in [
            "[ecs]\ncluster = \"${cluster}\"\n",
            "[ecs]\ncluster = \"${region\"\n",
        ] {
            let mut t: toml::Table = toml::from_str(text).unwrap();
            let err = substitute(&mut t, None, "config.d/10.toml")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("config.d/10.toml") && err.contains("ecs.cluster"),
                "{err}"
            );
        }
    }

    #[test]
    fn drop_ins_are_read_in_name_order_and_leftovers_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let baked = dir.path().join("config.toml");
        std::fs::write(&baked, "[ecs]\ncluster = \"baked\"\n").unwrap();
        let d = dir.path().join("config.d");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("20-b.toml"), "[ecs]\ncluster = \"b\"\n").unwrap();
        std::fs::write(d.join("10-a.toml"), "[ecs]\ncluster = \"a\"\n").unwrap();
        std::fs::write(d.join(".30.toml"), "not toml").unwrap();
        std::fs::write(d.join("40.toml.rpmnew"), "not toml").unwrap();
        let layers = read_layers(&baked).unwrap();
        let origins: Vec<_> = layers
            .iter()
            .map(|l| l.origin.rsplit('/').next().unwrap().to_string())
            .collect();
        assert_eq!(origins, ["config.toml", "10-a.toml", "20-b.toml"]);
    }
}
