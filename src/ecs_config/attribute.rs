//! Container instance attributes (`ECS_INSTANCE_ATTRIBUTES`), checked by ECS's own rules (ECS API
//! reference, data type `Attribute`) so that a bad one fails at boot, naming its tag or key,
//! instead of at registration inside the agent:
//! - name: 1-128 characters: ASCII letters, digits, `-`, `_`, `/`, `\`, `.`;
//! - value: 1-128 characters: ASCII letters, digits, `-`, `_`, `.`, `@`, `/`, `\`, `:` and
//!   spaces, not starting or ending with a space.
//!
//! Names starting with `ecs-boot.` are reserved for attributes ecs-boot sets itself: neither a
//! tag nor the config may set them, so a placement constraint on one can trust it.

/// Prefix of attribute names only ecs-boot may set.
pub const RESERVED_PREFIX: &str = "ecs-boot.";

/// Readiness for placement: `false` at registration (in ECS_INSTANCE_ATTRIBUTES), `true` once
/// ecs-boot's launch is done (PutAttributes, just before the launch CONTINUE). A task with the
/// placement constraint `attribute:ecs-boot.ready == true` never lands on a node still booting.
pub const READY: &str = "ecs-boot.ready";

const MAX_LEN: usize = 128;

/// Checks an attribute name; the problem names the rule, never the name (it may be anything).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_LEN {
        return Err("attribute names are 1-128 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_/\\.".contains(c))
    {
        return Err(
            "attribute names may only hold ASCII letters, digits and - _ / \\ . (ECS's rule)"
                .into(),
        );
    }
    if name.starts_with(RESERVED_PREFIX) {
        return Err(format!(
            "attribute names starting with {RESERVED_PREFIX:?} are reserved for ecs-boot"
        ));
    }
    Ok(())
}

/// Checks an attribute value; the problem names the rule, never the value.
pub fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_LEN {
        return Err("attribute values are 1-128 characters".into());
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.@/\\: ".contains(c))
    {
        return Err("attribute values may only hold ASCII letters, digits, spaces and - _ . @ / \\ : (ECS's rule)".into());
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return Err("attribute values may not start or end with a space".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_ecs() {
        for ok in [
            "stack",
            "team/web",
            "a.b-c_d",
            "dom\\user",
            &"n".repeat(128),
        ] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a@b",
            "a:b",
            "stäck",
            "a b",
            "a\u{202e}",
            &"n".repeat(129),
            "ecs-boot.drained",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(
            check_name("ecs-boot-x").is_ok(),
            "only the dotted prefix is reserved"
        );
    }

    #[test]
    fn values_follow_ecs() {
        for ok in ["blue", "a b", "user@host:/p\\q", "1.2.3", &"v".repeat(128)] {
            assert!(check_value(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " lead",
            "trail ",
            "a,b",
            "ü",
            "x=y",
            "{\"a\":1}",
            "tab\t",
            &"v".repeat(129),
        ] {
            assert!(check_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn problems_never_quote_the_input() {
        let marker = "S3cr3tMarker@x";
        assert!(!check_name(marker).unwrap_err().contains(marker));
        let marker = "S3cr3t,Marker";
        assert!(!check_value(marker).unwrap_err().contains(marker));
    }
}
