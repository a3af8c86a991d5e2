//! Where each ecs.config variable came from, kept beside its value so `ecs-boot status` can say
//! why a variable is set without showing it: a source names a file, a location or a tag key,
//! never a value (some values are credentials).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum VarSource {
    /// The baked config file (its path).
    Baked(String),
    /// A trusted drop-in of `config.d/` (its path).
    ConfigD(String),
    /// The config fragment the `ecs-boot:config` tag named (its location).
    Fragment(String),
    /// An instance tag (its key).
    Tag(String),
    /// Computed by ecs-boot (from what).
    EcsBoot(String),
    /// A line outside ecs-boot's block in the ecs.config on disk (user data wrote it), kept.
    UserData,
}

impl VarSource {
    /// One source for a value merged from several (the instance attributes): the source itself
    /// when they agree, else ecs-boot naming each.
    pub fn merged(mut parts: Vec<VarSource>) -> VarSource {
        parts.sort();
        parts.dedup();
        match parts.len() {
            1 => parts.remove(0),
            _ => VarSource::EcsBoot(format!(
                "merged from {}",
                parts
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

impl fmt::Display for VarSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarSource::Baked(path) => write!(f, "baked config {path}"),
            VarSource::ConfigD(path) => write!(f, "config.d {path}"),
            VarSource::Fragment(location) => write!(f, "fragment {location}"),
            VarSource::Tag(key) => write!(f, "tag {key}"),
            VarSource::EcsBoot(what) => write!(f, "ecs-boot ({what})"),
            VarSource::UserData => f.write_str("user data (a line outside ecs-boot's block)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_sources_name_each_once() {
        let tag = VarSource::Tag("ecs-boot:attribute:a".into());
        assert_eq!(VarSource::merged(vec![tag.clone(), tag.clone()]), tag);
        let both = VarSource::merged(vec![
            tag.clone(),
            VarSource::Baked("/etc/ecs-boot/config.toml".into()),
            tag,
        ]);
        assert_eq!(
            both.to_string(),
            "ecs-boot (merged from baked config /etc/ecs-boot/config.toml, tag ecs-boot:attribute:a)"
        );
    }
}
