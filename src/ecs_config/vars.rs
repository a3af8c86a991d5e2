//! The ECS agent variables ecs-boot may write, each with the type the agent parses it as and
//! whether a tag may set it. The agent exits (and systemd crash-loops it) on invalid JSON in a
//! known key, so every value is checked here, before it can reach ecs.config.

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    /// Non-negative integer the agent reads with Go's `strconv.Atoi`: at most `i64::MAX`.
    Int,
    /// Non-negative integer the agent reads with its 16-bit parser (`parseEnvVariableUint16`):
    /// a larger value is not an error there, it is silently read as 0.
    Uint16,
    /// Go duration such as `30s`, `10m`, `1h30m`, within Go's `time.Duration` (int64 nanoseconds).
    Duration,
    /// JSON object whose values are all strings.
    JsonStringMap,
    /// JSON array of strings.
    JsonStringArray,
    /// JSON array of integers.
    JsonIntArray,
    OneOf(&'static [&'static str]),
    /// Free text on one line (paths, lists the agent splits itself).
    Text,
}

/// Who may set a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Placement and tuning: tags may set it.
    Tag,
    /// Security-relevant: only the baked config (root-owned, in the AMI) may set it.
    Baked,
    /// Written by ecs-boot itself from its own sources (cluster, attributes, credentials).
    Managed,
}

#[derive(Debug, Clone)]
pub struct Var {
    pub name: &'static str,
    pub kind: Kind,
    pub trust: Trust,
    /// The value is a credential: masked by `render` wherever the line comes from, never logged.
    pub secret: bool,
}

const fn var(name: &'static str, kind: Kind, trust: Trust) -> Var {
    Var {
        name,
        kind,
        trust,
        secret: false,
    }
}

const fn secret(name: &'static str, kind: Kind, trust: Trust) -> Var {
    Var {
        name,
        kind,
        trust,
        secret: true,
    }
}

use Kind::*;
use Trust::*;

/// Real agent variables (amazon-ecs-agent README), Linux. Anything not listed is refused.
pub const VARS: &[Var] = &[
    // Managed by ecs-boot from its own contract; never from `settings`.
    var("ECS_CLUSTER", Text, Managed),
    var("ECS_INSTANCE_ATTRIBUTES", JsonStringMap, Managed),
    var(
        "ECS_ENGINE_AUTH_TYPE",
        OneOf(&["docker", "dockercfg"]),
        Managed,
    ),
    secret("ECS_ENGINE_AUTH_DATA", Text, Managed),
    // Proxies for ecs-init and the agent, from `[proxy]` with the local endpoints kept direct.
    var("HTTP_PROXY", Text, Managed),
    var("HTTPS_PROXY", Text, Managed),
    var("NO_PROXY", Text, Managed),
    // Placement and tuning.
    var("ECS_CONTAINER_STOP_TIMEOUT", Duration, Tag),
    var("ECS_CONTAINER_START_TIMEOUT", Duration, Tag),
    var("ECS_CONTAINER_CREATE_TIMEOUT", Duration, Tag),
    var(
        "ECS_IMAGE_PULL_BEHAVIOR",
        OneOf(&["default", "always", "once", "prefer-cached"]),
        Tag,
    ),
    var("ECS_IMAGE_PULL_TIMEOUT", Duration, Tag),
    var("ECS_IMAGE_PULL_INACTIVITY_TIMEOUT", Duration, Tag),
    var("ECS_IMAGE_CLEANUP_INTERVAL", Duration, Tag),
    var("ECS_IMAGE_MINIMUM_CLEANUP_AGE", Duration, Tag),
    var("ECS_NUM_IMAGES_DELETE_PER_CYCLE", Int, Tag),
    var("ECS_DISABLE_IMAGE_CLEANUP", Bool, Tag),
    var("ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION", Duration, Tag),
    var("ECS_RESERVED_MEMORY", Uint16, Tag),
    var(
        "ECS_LOGLEVEL",
        OneOf(&["crit", "error", "warn", "info", "debug"]),
        Tag,
    ),
    var(
        "ECS_LOGLEVEL_ON_INSTANCE",
        OneOf(&["none", "crit", "error", "warn", "info", "debug"]),
        Tag,
    ),
    var("ECS_LOG_ROLLOVER_TYPE", OneOf(&["hourly", "size"]), Tag),
    var("ECS_LOG_MAX_FILE_SIZE_MB", Int, Tag),
    var("ECS_LOG_MAX_ROLL_COUNT", Int, Tag),
    var("ECS_ENABLE_SPOT_INSTANCE_DRAINING", Bool, Tag),
    var("ECS_WARM_POOLS_CHECK", Bool, Managed),
    var("ECS_CONTAINER_INSTANCE_TAGS", JsonStringMap, Tag),
    var(
        "ECS_CONTAINER_INSTANCE_PROPAGATE_TAGS_FROM",
        OneOf(&["ec2_instance", "none"]),
        Tag,
    ),
    var("ECS_ENABLE_CONTAINER_METADATA", Bool, Tag),
    var("ECS_POLL_METRICS", Bool, Tag),
    var("ECS_POLLING_METRICS_WAIT_DURATION", Duration, Tag),
    var("ECS_TASK_METADATA_RPS_LIMIT", Text, Tag),
    var("ECS_ENABLE_HIGH_DENSITY_ENI", Bool, Tag),
    var("ECS_CGROUP_CPU_PERIOD", Duration, Tag),
    // Security-relevant: baked config only.
    var("ECS_DISABLE_PRIVILEGED", Bool, Baked),
    var("ECS_SELINUX_CAPABLE", Bool, Baked),
    var("ECS_APPARMOR_CAPABLE", Bool, Baked),
    var("ECS_ENABLE_TASK_IAM_ROLE", Bool, Baked),
    var("ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST", Bool, Baked),
    var("ECS_AWSVPC_BLOCK_IMDS", Bool, Baked),
    var("ECS_ENABLE_TASK_ENI", Bool, Baked),
    var("ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS", Bool, Baked),
    var("ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE", Bool, Baked),
    var("ECS_AVAILABLE_LOGGING_DRIVERS", JsonStringArray, Baked),
    var("ECS_RESERVED_PORTS", JsonIntArray, Baked),
    var("ECS_RESERVED_PORTS_UDP", JsonIntArray, Baked),
    var("ECS_DATADIR", Text, Baked),
    var("ECS_HOST_DATA_DIR", Text, Baked),
    var("ECS_LOGFILE", Text, Baked),
    var("ECS_CHECKPOINT", Bool, Baked),
    var("ECS_UPDATES_ENABLED", Bool, Baked),
    var("ECS_UPDATE_DOWNLOAD_DIR", Text, Baked),
    var("ECS_DISABLE_METRICS", Bool, Baked),
    var("ECS_ENABLE_GPU_SUPPORT", Bool, Baked),
    var("ECS_BACKEND_HOST", Text, Baked),
    var("ECS_EXCLUDE_UNTRACKED_IMAGE", Text, Baked),
    var("ECS_ENABLE_UNTRACKED_IMAGE_CLEANUP", Bool, Baked),
    var("ECS_SHARED_VOLUME_MATCH_FULL_CONFIG", Bool, Baked),
    var("ECS_DISABLE_DOCKER_HEALTH_CHECK", Bool, Baked),
    var("ECS_ENABLE_RUNTIME_STATS", Bool, Baked),
];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum VarError {
    #[error(
        "{name} is not an ECS agent variable ecs-boot knows; check the spelling against the agent's README"
    )]
    Unknown { name: String },
    #[error("{name} is written by ecs-boot itself ({how}); it cannot be given as a setting")]
    Managed { name: String, how: &'static str },
    #[error("{name} is security-relevant and may only come from the baked config, not from a tag")]
    NotFromTags { name: String },
    #[error("{name} is locked by the baked config ([ecs] locked); tags may not change it")]
    Locked { name: String },
    #[error(
        "{name} has a control character (newline, CR, NUL, ...) that would inject another ecs.config line"
    )]
    ControlCharacter { name: String },
    #[error(
        "{name} must not be quoted: ecs-init keeps quotes verbatim, so they would become part of the value"
    )]
    Quoted { name: String },
    #[error("{name} must be {expected}; got something else ({problem})")]
    BadValue {
        name: String,
        expected: &'static str,
        problem: String,
    },
}

pub fn lookup(name: &str) -> Option<&'static Var> {
    VARS.iter().find(|v| v.name == name)
}

/// Whether the table marks `name` as a credential.
pub fn is_secret(name: &str) -> bool {
    lookup(name).is_some_and(|v| v.secret)
}

/// What ecs-boot writes itself, and from which source; named in errors.
pub fn managed_how(name: &str) -> &'static str {
    match name {
        "ECS_CLUSTER" => "from the ecs-boot:cluster tag or [ecs] cluster",
        "ECS_INSTANCE_ATTRIBUTES" => "from ecs-boot:attribute:* tags or [ecs] attributes",
        "HTTP_PROXY" | "HTTPS_PROXY" | "NO_PROXY" => "from [proxy] in the trusted config",
        "ECS_WARM_POOLS_CHECK" => {
            "never set: ecs-boot keeps the gate closed while warmed instead, since agents from 1.89 exit for good on a 404"
        }
        _ => "from the registry credentials (ecs-boot:registry-auth or [ecs] registry_auth)",
    }
}

/// Checks a value destined for one ecs.config line: nothing may break out of the line.
pub fn check_line_safe(name: &str, value: &str) -> Result<(), VarError> {
    if value.chars().any(|c| c.is_control()) {
        return Err(VarError::ControlCharacter {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Validates `value` as the agent would parse variable `var`.
pub fn check_value(var: &Var, value: &str) -> Result<(), VarError> {
    check_line_safe(var.name, value)?;
    let bad = |expected: &'static str, problem: String| VarError::BadValue {
        name: var.name.to_string(),
        expected,
        problem,
    };
    let scalar = !matches!(var.kind, JsonStringMap | JsonStringArray | JsonIntArray);
    if scalar
        && value.len() >= 2
        && (value.starts_with('"') && value.ends_with('"')
            || value.starts_with('\'') && value.ends_with('\''))
    {
        return Err(VarError::Quoted {
            name: var.name.to_string(),
        });
    }
    match var.kind {
        Bool => match value {
            "true" | "false" => Ok(()),
            _ => Err(bad("true or false", format!("{} characters", value.len()))),
        },
        Int => parse_int(value, i64::MAX as u64)
            .map(|_| ())
            .map_err(|p| bad("a non-negative integer", p)),
        Uint16 => parse_int(value, u16::MAX.into())
            .map(|_| ())
            .map_err(|p| bad("a non-negative integer up to 65535", p)),
        Duration => parse_go_duration(value)
            .map(|_| ())
            .map_err(|p| bad("a Go duration such as 30s, 10m or 1h30m", p)),
        OneOf(allowed) => {
            if allowed.contains(&value) {
                Ok(())
            } else {
                Err(VarError::BadValue {
                    name: var.name.to_string(),
                    expected: "one of the values the agent accepts",
                    problem: format!("allowed: {}", allowed.join(", ")),
                })
            }
        }
        JsonStringMap => match serde_json::from_str::<serde_json::Value>(value) {
            Ok(serde_json::Value::Object(m)) if m.values().all(|v| v.is_string()) => Ok(()),
            Ok(_) => Err(bad(
                "a JSON object of strings",
                "valid JSON of another shape".into(),
            )),
            Err(e) => Err(bad(
                "a JSON object of strings",
                format!("invalid JSON: {e}"),
            )),
        },
        JsonStringArray => match serde_json::from_str::<serde_json::Value>(value) {
            Ok(serde_json::Value::Array(a)) if a.iter().all(|v| v.is_string()) => Ok(()),
            Ok(_) => Err(bad(
                "a JSON array of strings",
                "valid JSON of another shape".into(),
            )),
            Err(e) => Err(bad("a JSON array of strings", format!("invalid JSON: {e}"))),
        },
        JsonIntArray => match serde_json::from_str::<serde_json::Value>(value) {
            // The agent unmarshals these into []uint16.
            Ok(serde_json::Value::Array(a))
                if a.iter().all(|v| v.as_u64().is_some_and(|p| p <= 65535)) =>
            {
                Ok(())
            }
            Ok(_) => Err(bad(
                "a JSON array of port numbers",
                "valid JSON of another shape".into(),
            )),
            Err(e) => Err(bad(
                "a JSON array of port numbers",
                format!("invalid JSON: {e}"),
            )),
        },
        Text => {
            if value.is_empty() {
                Err(bad("a non-empty value", "empty".into()))
            } else {
                Ok(())
            }
        }
    }
}

/// A decimal integer `0..=max`; the problem names the rule broken, never the value.
pub fn parse_int(value: &str, max: u64) -> Result<u64, String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a decimal number".into());
    }
    match value.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!("larger than {max}, the most the ECS agent reads")),
    }
}

/// Go's largest `time.Duration`: int64 nanoseconds, about 292 years.
const GO_DURATION_MAX_NS: u64 = i64::MAX as u64;

/// Parses a Go `time.ParseDuration` string (units ns, us, µs, μs, ms, s, m, h; fractions
/// allowed) the way Go does: integer nanoseconds, refused once past int64, so a value the agent
/// would reject (or that would overflow here) never reaches ecs.config. Negative durations are
/// refused too: no agent variable means anything by them.
pub fn parse_go_duration(s: &str) -> Result<std::time::Duration, String> {
    let body = s.strip_prefix('+').unwrap_or(s);
    if body == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if body.is_empty() || body.starts_with('-') {
        return Err("empty or negative".into());
    }
    let too_long = || "longer than Go's largest duration (about 292 years)".to_string();
    let mut total: u64 = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => a.split_at(a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len())),
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err("expected a number before each unit".into());
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let unit_ns: u64 = match &after[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err("missing unit (use s, m or h)".into()),
            _ => return Err("unknown unit (use ns, us, ms, s, m or h)".into()),
        };
        rest = &after[unit_len..];
        let whole = if int_part.is_empty() {
            0
        } else {
            int_part.parse::<u64>().map_err(|_| too_long())?
        };
        let mut ns = whole.checked_mul(unit_ns).ok_or_else(too_long)?;
        // The fraction in nanoseconds of this unit, digit by digit and exact: `.5h` is
        // 1_800_000_000_000 ns. Digits past the unit's precision only round down, as in Go.
        let mut scale = unit_ns;
        for d in frac_part.bytes().map(|b| u64::from(b - b'0')) {
            if scale < 10 {
                break;
            }
            scale /= 10;
            ns = ns.checked_add(d * scale).ok_or_else(too_long)?;
        }
        total = total.checked_add(ns).ok_or_else(too_long)?;
        if total > GO_DURATION_MAX_NS {
            return Err(too_long());
        }
    }
    Ok(std::time::Duration::from_nanos(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, value: &str) -> Result<(), VarError> {
        check_value(lookup(name).unwrap(), value)
    }

    #[test]
    fn json_settings_must_have_the_agents_shape() {
        assert!(check("ECS_CONTAINER_INSTANCE_TAGS", r#"{"team":"a"}"#).is_ok());
        assert!(matches!(
            check("ECS_CONTAINER_INSTANCE_TAGS", r#"{"team":1}"#),
            Err(VarError::BadValue { .. })
        ));
        assert!(matches!(
            check("ECS_CONTAINER_INSTANCE_TAGS", r#"{"team":"#),
            Err(VarError::BadValue { .. })
        ));
        assert!(check("ECS_RESERVED_PORTS", "[22, 2375]").is_ok());
        assert!(check("ECS_RESERVED_PORTS", r#"["22"]"#).is_err());
        assert!(check("ECS_RESERVED_PORTS", "[65535]").is_ok());
        assert!(check("ECS_RESERVED_PORTS", "[65536]").is_err());
        assert!(
            check(
                "ECS_AVAILABLE_LOGGING_DRIVERS",
                r#"["json-file","awslogs"]"#
            )
            .is_ok()
        );
    }

    #[test]
    fn scalars_reject_quotes_and_control_characters() {
        assert_eq!(
            check("ECS_LOGLEVEL", "\"info\""),
            Err(VarError::Quoted {
                name: "ECS_LOGLEVEL".into()
            })
        );
        assert!(matches!(
            check("ECS_CONTAINER_STOP_TIMEOUT", "30s\nECS_CLUSTER=x"),
            Err(VarError::ControlCharacter { .. })
        ));
        assert!(matches!(
            check("ECS_CONTAINER_STOP_TIMEOUT", "30s\r"),
            Err(VarError::ControlCharacter { .. })
        ));
        assert!(check("ECS_ENABLE_SPOT_INSTANCE_DRAINING", "yes").is_err());
        assert!(check("ECS_RESERVED_MEMORY", "-1").is_err());
    }

    #[test]
    fn go_durations_parse_like_the_agent() {
        assert_eq!(parse_go_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_go_duration("1.5s").unwrap().as_millis(), 1500);
        assert_eq!(parse_go_duration("0").unwrap().as_secs(), 0);
        assert!(parse_go_duration("30").is_err());
        assert!(parse_go_duration("10d").is_err());
        assert!(parse_go_duration("-5s").is_err());
    }

    #[test]
    fn durations_past_int64_nanoseconds_are_refused_not_a_crash() {
        for v in [
            "99999999999999999999h",
            "2562048h",
            "9223372036.854775808s",
            "106751d",
            "1e400s",
            "184467440737095516160ns",
            "2562047h47m16.854775808s",
        ] {
            assert!(parse_go_duration(v).is_err(), "{v}");
        }
        // The largest value Go accepts is accepted.
        assert_eq!(
            parse_go_duration("2562047h47m16.854775807s")
                .unwrap()
                .as_nanos(),
            i64::MAX as u128
        );
        assert_eq!(
            parse_go_duration("9223372036854775807ns")
                .unwrap()
                .as_nanos(),
            i64::MAX as u128
        );
        let err = check("ECS_CONTAINER_STOP_TIMEOUT", "99999999999999999999h").unwrap_err();
        assert!(
            err.to_string().contains("ECS_CONTAINER_STOP_TIMEOUT"),
            "{err}"
        );
    }

    #[test]
    fn go_fractions_are_exact() {
        assert_eq!(parse_go_duration(".5h").unwrap().as_secs(), 1800);
        assert_eq!(
            parse_go_duration("1.000000001s").unwrap().as_nanos(),
            1_000_000_001
        );
        assert_eq!(parse_go_duration("2.5µs").unwrap().as_nanos(), 2500);
        assert_eq!(parse_go_duration("2.5μs").unwrap().as_nanos(), 2500);
        assert_eq!(parse_go_duration("1.9999999999ns").unwrap().as_nanos(), 1);
        assert!(parse_go_duration(".s").is_err());
        assert!(parse_go_duration("1.2.3s").is_err());
    }

    #[test]
    fn integers_fit_what_the_agent_parses() {
        assert!(check("ECS_RESERVED_MEMORY", "65535").is_ok());
        for v in ["65536", "99999999999999999999999", "+1", " 1", "1_000"] {
            assert!(check("ECS_RESERVED_MEMORY", v).is_err(), "{v}");
        }
        assert!(check("ECS_NUM_IMAGES_DELETE_PER_CYCLE", "9223372036854775807").is_ok());
        assert!(check("ECS_NUM_IMAGES_DELETE_PER_CYCLE", "9223372036854775808").is_err());
    }

    /// Values aimed at the parsers' arithmetic: huge and fractional numbers, every unit, signs.
    fn hostile_value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "[0-9]{1,30}",
            "[+-]?[0-9]{0,25}(\\.[0-9]{0,25})?(ns|us|µs|μs|ms|s|m|h|d|)",
            "([0-9]{1,12}(h|m|s|ms)){1,6}",
            "[0-9.]{0,12}[a-zµ]{0,3}",
            ".{0,40}",
            "\\[[0-9, -]{0,40}\\]",
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

        /// `ecs-boot:setting:NAME=VALUE` for every variable and any value: an error naming the
        /// tag, or a value the agent parses; never a panic (panic = abort in release: no
        /// ABANDON, the hook waits out its timeout).
        #[test]
        fn any_tag_value_for_any_variable_never_panics(
            var in proptest::sample::select(VARS),
            value in hostile_value(),
            memory_mib in proptest::option::of(1u64..=u64::MAX),
        ) {
            use crate::config::{Config, layers, tags};
            let tag = format!("{}{}", tags::SETTING_PREFIX, var.name);
            let raw = [(tags::CLUSTER.to_string(), "c".to_string()), (tag.clone(), value.clone())]
                .into_iter()
                .collect();
            let Ok(parsed) = tags::parse(&raw) else { return Ok(()) };
            let config = match memory_mib {
                None => Config::default(),
                Some(m) => Config::parse(
                    &format!("[[container]]\nname = \"a\"\nimage = \"i\"\nmemory_mib = {}\n", m.min(i64::MAX as u64)),
                    "t",
                ).unwrap(),
            };
            match layers::build(&config, &parsed, None) {
                Err(e) => {
                    let msg = e.to_string();
                    proptest::prop_assert!(msg.contains(&tag) || msg.contains("memory_mib"), "{msg}");
                }
                Ok(env) => {
                    if let Some(v) = env.vars.get(var.name).filter(|_| var.kind == Duration) {
                        proptest::prop_assert!(parse_go_duration(v).is_ok());
                    }
                    if let Some(v) = env.vars.get("ECS_RESERVED_MEMORY") {
                        proptest::prop_assert!(v.parse::<u16>().is_ok(), "{v}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_variable_is_unique_and_uppercase() {
        let mut names: Vec<_> = VARS.iter().map(|v| v.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), VARS.len());
        assert!(VARS.iter().all(
            |v| (v.name.starts_with("ECS_") || v.name.ends_with("_PROXY"))
                && v.name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        ));
    }
}
