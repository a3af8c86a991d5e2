//! The config schema as data: every key path config.toml accepts, read from the serde derives
//! themselves (a struct's field list), so a section added later is known here without a list to
//! keep in step. The fragment allowlist uses it to name only keys that exist, and its test walks
//! every path to prove that anything not opened is refused.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A deserializer that answers nothing but records the field list serde asks for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field names recorded")
    }
}
impl std::error::Error for Stop {}
impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = Stop;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The field names of a struct that derives `Deserialize` (as written in TOML, renames applied).
pub fn fields<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut out: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut out));
    out
}

/// Every key path of the schema: sections and their keys (`ecs`, `ecs.cluster`, ...). Tables
/// whose keys are free (`ecs.settings`, `ecs.attributes`, `container` entries) end the path.
pub fn all_paths() -> Vec<String> {
    let mut out = Vec::new();
    for section in fields::<super::Config>() {
        out.push(section.to_string());
        for key in section_fields(section) {
            out.push(format!("{section}.{key}"));
        }
    }
    out
}

/// The keys of one top-level section; empty for free-form sections and arrays of tables.
pub fn section_fields(section: &str) -> &'static [&'static str] {
    use super::*;
    match section {
        "ecs" => fields::<EcsSection>(),
        "tags" => fields::<TagsSection>(),
        "imds" => fields::<ImdsSection>(),
        "ecs_agent" => fields::<EcsAgentSection>(),
        "lifecycle" => fields::<LifecycleSection>(),
        "drain" => fields::<DrainSection>(),
        "docker" => fields::<DockerSection>(),
        "trust" => fields::<TrustSection>(),
        "proxy" => fields::<ProxySection>(),
        "hooks" => fields::<HooksSection>(),
        "recorder" => fields::<RecorderSection>(),
        "health" => fields::<HealthSection>(),
        "metrics" => fields::<MetricsSection>(),
        "logs" => fields::<LogsSection>(),
        // `container`, and any section added later without an entry here: its keys are not
        // listed, so a path under it is named only by its section (and refused unless opened).
        _ => &[],
    }
}

/// Whether `path` names a key of the schema, so an error may name it without quoting content.
pub fn is_known(path: &str) -> bool {
    // The same paths as `all_paths`, without building them: this runs for every key of every
    // layer at boot (it was 12 % of the config phase's instructions, bench/results/profile-boot.md).
    let (section, key) = match path.split_once('.') {
        Some((section, key)) => (section, Some(key)),
        None => (path, None),
    };
    fields::<super::Config>().contains(&section)
        && key.is_none_or(|key| section_fields(section).contains(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_field_lists_from_the_derives() {
        let ecs = fields::<crate::config::EcsSection>();
        assert!(
            ecs.contains(&"cluster") && ecs.contains(&"settings"),
            "{ecs:?}"
        );
        let top = fields::<crate::config::Config>();
        assert!(
            top.contains(&"container") && top.contains(&"drain"),
            "{top:?}"
        );
        assert!(
            !top.contains(&"raw"),
            "skipped fields are not part of the schema"
        );
    }

    #[test]
    fn is_known_answers_exactly_the_listed_paths() {
        let paths = all_paths();
        for path in &paths {
            assert!(is_known(path), "{path}");
        }
        for path in [
            "",
            ".",
            "ecs.",
            "nope",
            "ecs.nope",
            "ecs.cluster.x",
            "container.image",
            "x.cluster",
        ] {
            assert_eq!(is_known(path), paths.iter().any(|p| p == path), "{path:?}");
        }
    }

    #[test]
    fn every_section_with_keys_is_listed() {
        // A new struct section must get an entry in section_fields, or its keys are unknown.
        for section in fields::<crate::config::Config>() {
            if !["container", "bootstrap"].contains(section) {
                assert!(
                    !section_fields(section).is_empty(),
                    "section {section} has no entry in schema::section_fields"
                );
            }
        }
    }
}
