//! Hostile input (issue 10): every parser of outside input under property tests. A panic is a bug;
//! an error names the input (file, tag, object, path) and never quotes a secret.
//!
//! Parsers covered: config.toml (`Config::parse`, arbitrary text and TOML-shaped documents), tag
//! values (`tags::parse`, then `layers::build` + `ecs_config::render` as ecs-init reads the
//! result), registry credentials JSON (`RegistryAuth::parse`), the ECS agent's introspection JSON
//! (`Metadata`, `Task`, `TaskList`), IMDS answers (identity document, spot instance action).

use crate::config::Config;
use crate::config::layers;
use crate::config::tags;
use crate::ecs_config::{self, BEGIN, END};
use crate::sources::ecs_agent::{Metadata, Task, TaskList};
use crate::sources::imds;
use crate::sources::registry_auth::RegistryAuth;
use base64::Engine;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;
use std::collections::BTreeMap;

const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // Shrinking is for humans reading a failure; keep `cargo test` quick when all is well.
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

// --- strategies -------------------------------------------------------------------------------

/// Strings that stress parsers: any Unicode, control characters, quotes, `=`, newlines.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[\\x00-\\x1f\\x7f=\"'\\\\ a-zA-Z0-9:/._-]{0,40}",
        select(vec![
            "",
            " ",
            "=",
            "\n",
            "\r",
            "\0",
            "\"prod\"",
            "'x'",
            "a=b",
            "a\nECS_CLUSTER=evil",
            "true",
            "-1",
            "1e99",
            "{}",
            "[]",
            "{\"a\":1}",
            "null",
            "\u{2028}",
            "\u{feff}x",
            "99999999999999999999",
        ])
        .prop_map(str::to_string),
    ]
}

/// Arbitrary JSON, with the key names the parsers look for mixed in.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        nasty_string().prop_map(Value::String),
    ];
    let key = prop_oneof![
        select(vec![
            "Cluster",
            "ContainerInstanceArn",
            "Version",
            "Tasks",
            "Arn",
            "KnownStatus",
            "DesiredStatus",
            "Family",
            "instanceId",
            "region",
            "availabilityZone",
            "instanceType",
            "action",
            "time",
            "auths",
            "auth",
            "username",
            "password",
            "registry",
            "email",
            "credsStore",
            "docker.io",
            "https://index.docker.io/v1/",
        ])
        .prop_map(str::to_string),
        ".{0,10}",
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bytes that are mostly JSON-ish: arbitrary JSON, cut or with junk, or raw bytes.
fn json_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        arb_json().prop_map(|v| v.to_string().into_bytes()),
        (arb_json(), any::<prop::sample::Index>()).prop_map(|(v, i)| {
            let s = v.to_string().into_bytes();
            let cut = if s.is_empty() { 0 } else { i.index(s.len()) };
            s[..cut].to_vec()
        }),
        prop::collection::vec(any::<u8>(), 0..200),
    ]
}

fn toml_value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        nasty_string().prop_map(|s| serde_json::to_string(&s).expect("a string serializes")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        select(vec![
            "\"90s\"",
            "\"2m 30s\"",
            "\"1h\"",
            "\"0s\"",
            "\"-1s\"",
            "\"soon\"",
            "\"\"",
            "\"abandon\"",
            "\"leave\"",
            "\"CONTINUE\"",
            "\"ABANDON\"",
            "\"never\"",
            "\"s3://b/k\"",
            "\"ssm:/p\"",
            "\"http://127.0.0.1:1\"",
            "1.5",
            "inf",
            "nan",
            "1979-05-27T07:32:00Z",
            "\"\"\"multi\nline\"\"\"",
            "'literal'",
            "junk",
        ])
        .prop_map(str::to_string),
    ];
    prop_oneof![
        4 => scalar.clone(),
        1 => prop::collection::vec(scalar.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
        1 => prop::collection::vec(("[a-zA-Z_]{1,8}", scalar), 0..3).prop_map(|kv| {
            let inner: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
            format!("{{ {} }}", inner.join(", "))
        }),
    ]
}

/// TOML-shaped documents over ecs-boot's sections and keys (and some that are not).
fn toml_doc() -> impl Strategy<Value = String> {
    let section = select(vec![
        "[ecs]",
        "[tags]",
        "[imds]",
        "[ecs_agent]",
        "[lifecycle]",
        "[drain]",
        "[docker]",
        "[ecs.settings]",
        "[ecs.attributes]",
        "[[container]]",
        "[bogus]",
        "[ecs",
        "",
    ]);
    let key = prop_oneof![
        select(vec![
            "cluster",
            "registry_auth",
            "attributes",
            "settings",
            "locked",
            "wait",
            "required",
            "timeout",
            "introspection_url",
            "registration_timeout",
            "launch_hook",
            "terminate_hook",
            "on_failure",
            "heartbeat_interval",
            "enabled",
            "poll_interval",
            "deadline",
            "standalone_grace",
            "result_on_deadline",
            "spot",
            "rebalance",
            "engine_wait",
            "name",
            "image",
            "essential",
            "pull",
            "memory_mib",
            "restart",
            "min_uptime",
            "binds",
            "env",
            "command",
            "ECS_LOGLEVEL",
            "ECS_RESERVED_MEMORY",
            "ECS_CLUSTER",
            "ECS_ENGINE_AUTH_DATA",
            "ECS_INSTANCE_ATTRIBUTES",
            "stack",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z_.\"-]{1,12}",
    ];
    prop::collection::vec(
        (section, prop::collection::vec((key, toml_value()), 0..5)),
        0..6,
    )
    .prop_map(|sections| {
        let mut out = String::new();
        for (header, pairs) in sections {
            out.push_str(header);
            out.push('\n');
            for (k, v) in pairs {
                out.push_str(&format!("{k} = {v}\n"));
            }
        }
        out
    })
}

const TAG_KEYS: &[&str] = &[
    tags::CLUSTER,
    tags::REGISTRY_AUTH,
    tags::CONFIG,
    tags::LAUNCH_HOOK,
    tags::TERMINATE_HOOK,
    tags::ASG,
    tags::AWS_ASG,
    "ecs-boot:attribute:stack",
    "ecs-boot:attribute:a.b/c@d",
    "ecs-boot:setting:ECS_LOGLEVEL",
    "ecs-boot:setting:ECS_RESERVED_MEMORY",
    "ecs-boot:setting:ECS_IMAGE_PULL_BEHAVIOR",
    "ecs-boot:setting:ECS_CONTAINER_STOP_TIMEOUT",
    "ecs-boot:setting:ECS_CONTAINER_INSTANCE_TAGS",
    "ecs-boot:setting:ECS_ENABLE_SPOT_INSTANCE_DRAINING",
    "ecs-boot:setting:ECS_DISABLE_PRIVILEGED",
    "ecs-boot:setting:ECS_ENGINE_AUTH_DATA",
    "ecs-boot:setting:ECS_CLUSTER",
    "Name",
];

fn tag_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    let key = prop_oneof![
        3 => select(TAG_KEYS).prop_map(str::to_string),
        1 => "ecs-boot:(attribute|setting):.{0,12}",
        1 => ".{0,20}",
    ];
    let value = prop_oneof![
        2 => nasty_string(),
        2 => "[a-zA-Z0-9_-]{1,20}",
        1 => select(vec!["debug", "info", "always", "once", "30s", "512", "true",
                         "{\"team\":\"web\"}", "s3://bucket/key", "ssm:/p"]).prop_map(str::to_string),
    ];
    prop::collection::btree_map(key, value, 0..8)
}

/// ecs-init's reading of ecs.config: split each line on the first `=`, key trimmed, value
/// verbatim; lines without `=` are skipped.
fn ecs_init_parse(text: &str) -> Vec<(String, String)> {
    text.split('\n')
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

// --- properties -------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_parse_of_any_text_never_panics_and_errors_name_the_file(text in ".{0,300}") {
        if let Err(e) = Config::parse(&text, "/etc/ecs-boot/config.toml") {
            let msg = e.to_string();
            prop_assert!(msg.contains("/etc/ecs-boot/config.toml"), "{msg}");
            prop_assert!(!msg.contains('\n'), "one journald line: {msg:?}");
        }
    }

    #[test]
    fn config_parse_of_toml_shaped_documents_never_panics(doc in toml_doc()) {
        match Config::parse(&doc, "fuzz.toml") {
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.starts_with("fuzz.toml: "), "{msg}");
                prop_assert!(!msg.contains('\n'), "{msg:?}");
            }
            Ok(c) => {
                // Whatever it accepted, validation held: settings are line-safe and typed.
                for (name, value) in &c.ecs.settings {
                    prop_assert!(!value.chars().any(char::is_control), "{name}={value:?}");
                }
                if let Some(cluster) = &c.ecs.cluster {
                    prop_assert!(tags::check_cluster_name(cluster).is_ok());
                }
            }
        }
    }

    #[test]
    fn tags_never_panic_and_nothing_accepted_can_break_a_line(raw in tag_map()) {
        match tags::parse(&raw) {
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(raw.keys().any(|k| msg.starts_with(&format!("tag {k}: "))), "{msg}");
            }
            Ok(t) => {
                let accepted = t.cluster.iter()
                    .chain(t.registry_auth.iter())
                    .chain(t.config.iter())
                    .chain(t.launch_hook.iter())
                    .chain(t.terminate_hook.iter())
                    .chain(t.attributes.values())
                    .chain(t.settings.values());
                for v in accepted {
                    prop_assert!(!v.chars().any(char::is_control), "{v:?}");
                }
            }
        }
    }

    #[test]
    fn rendered_ecs_config_has_one_line_per_variable_as_ecs_init_reads_it(
        raw in tag_map(),
        user_lines in prop::collection::vec(prop_oneof![
            "[A-Z_]{1,20}=[ -~]{0,20}",
            select(vec!["ECS_CLUSTER=from-user-data", " ECS_LOGLEVEL = warn", "# comment",
                        END, "", "ECS_INSTANCE_ATTRIBUTES={}", "junk"]).prop_map(str::to_string),
        ], 0..6),
        with_auth in any::<bool>(),
    ) {
        let Ok(t) = tags::parse(&raw) else { return Ok(()) };
        let baked = Config::parse("[ecs]\ncluster = \"baked\"\n", "t").expect("valid");
        let auth = RegistryAuth::parse(br#"{"username":"u","password":"p=w\"d"}"#, "t")
            .expect("valid");
        let Ok(env) = layers::build(&baked, &t, with_auth.then_some(&auth)) else {
            return Ok(());
        };
        let existing = user_lines.join("\n");
        let rendered = ecs_config::render(&env, Some(&existing));
        let text = &rendered.text;
        let closed = text.ends_with(&format!("{END}\n"));
        prop_assert!(closed, "block not closed:\n{}", text);
        prop_assert_eq!(text.lines().filter(|l| l.trim() == BEGIN).count(), 1);
        let parsed = ecs_init_parse(text);
        for (key, value) in &env.vars {
            let lines: Vec<_> = parsed.iter().filter(|(k, _)| k == key).collect();
            prop_assert_eq!(lines.len(), 1, "{} in\n{}", key, text);
            prop_assert_eq!(&lines[0].1, value, "{} round-trips", key);
        }
        // Rendering its own output again changes nothing.
        prop_assert_eq!(&ecs_config::render(&env, Some(text)).text, text);
    }

    #[test]
    fn registry_auth_never_panics_on_any_bytes(bytes in json_bytes()) {
        if let Err(e) = RegistryAuth::parse(&bytes, "s3://creds/hub.json") {
            prop_assert!(e.to_string().contains("s3://creds/hub.json"), "{e}");
        }
    }

    #[test]
    fn registry_auth_errors_never_quote_a_planted_secret(
        secret in "Zq[A-Za-z0-9+/]{14,24}",
        shape in 0usize..8,
        cut in any::<prop::sample::Index>(),
        extra in arb_json(),
    ) {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let doc = match shape {
            0 => format!(r#"{{"username":"bob","password":"{secret}","registry":{extra}}}"#),
            1 => format!(r#"{{"auths":{{"docker.io":{{"auth":"{}","email":{extra}}}}}}}"#, b64(&secret)),
            2 => format!(r#"{{"auths":{{"docker.io":{{"auth":"{secret}"}}}}}}"#),
            3 => format!(r#"{{"auths":{{"r.example.com":{{"auth":"{}"}}}}}}"#, b64(&format!("bob:{secret}\u{1}"))),
            4 => format!(r#"{{"password":"{secret}","username":{extra}}}"#),
            5 => format!(r#"{{"auths":{{"x":{{"auth":"{}","username":{extra}}}}}}}"#, b64(&format!(":{secret}"))),
            6 => format!(r#"{{"docker.io":{{"username":"u","password":"{secret}","auth":{extra}}}}}"#),
            _ => format!(r#"{{"auths":{{"docker.io":{{"auth":"{}"}}}}, "credsStore":{extra}}}"#, b64(&format!("u:{secret}"))),
        };
        let bytes = doc.as_bytes();
        // Whole, and cut anywhere (truncated objects are a classic way to echo content).
        let cut_at = cut.index(bytes.len() + 1);
        for input in [bytes, &bytes[..cut_at]] {
            if let Err(e) = RegistryAuth::parse(input, "ssm:/creds") {
                let msg = e.to_string();
                prop_assert!(!msg.contains(&secret), "{msg}");
                prop_assert!(!msg.contains(&b64(&secret)), "{msg}");
                prop_assert!(msg.contains("ssm:/creds"), "{msg}");
            } else if let Ok(a) = RegistryAuth::parse(input, "ssm:/creds") {
                let shown = format!("{a:?}");
                prop_assert!(!shown.contains(&secret), "{}", shown);
            }
        }
    }

    /// Any content with a planted marker, fetched as a fragment, as credentials, or as an IMDS
    /// document: no error, whatever the shape, ever carries the marker (trust-boundary issue).
    #[test]
    fn fetched_content_never_reaches_an_error(
        doc in prop_oneof![toml_doc(), ".{0,200}", json_bytes().prop_map(|b| String::from_utf8_lossy(&b).into_owned())],
        at in any::<prop::sample::Index>(),
        wrap in 0usize..6,
    ) {
        const MARKER: &str = "Zq9MARKERx7";
        let planted = {
            let mut cut = at.index(doc.len() + 1);
            while !doc.is_char_boundary(cut) {
                cut -= 1;
            }
            let (a, b) = doc.split_at(cut);
            match wrap {
                0 => format!("{a}{MARKER}{b}"),
                1 => format!("{a}\"{MARKER}\"{b}"),
                2 => format!("{a}\n{MARKER} = 1\n{b}"),
                3 => format!("{a}\n[{MARKER}]\n{b}"),
                4 => format!("[ecs.settings]\n{MARKER} = \"1\"\n{a}{b}"),
                _ => format!("[drain]\ndeadline = \"{MARKER}\"\n{a}{b}"),
            }
        };
        let trusted = Config::parse(
            "[trust]\nfragment_keys = [\"ecs.cluster\", \"ecs.settings\", \"ecs.attributes\", \"drain\", \"container\", \"tags\"]\n",
            "baked",
        ).unwrap();
        if let Err(e) = trusted.merge_fragment(&planted, "s3://cfg/f.toml") {
            let msg = e.to_string();
            prop_assert!(!msg.contains(MARKER), "{msg}");
            prop_assert!(msg.contains("s3://cfg/f.toml"), "{msg}");
        }
        if let Err(e) = RegistryAuth::parse(planted.as_bytes(), "ssm:/creds") {
            prop_assert!(!e.to_string().contains(MARKER), "{e}");
        }
        if let Err(e) = imds::parse_identity(&planted) {
            prop_assert!(!e.to_string().contains(MARKER), "{e}");
        }
    }

    #[test]
    fn introspection_json_never_panics(bytes in json_bytes(), value in arb_json()) {
        let _ = serde_json::from_slice::<Metadata>(&bytes);
        let _ = serde_json::from_slice::<TaskList>(&bytes);
        let _ = serde_json::from_slice::<Task>(&bytes);
        let _ = serde_json::from_value::<Metadata>(value.clone());
        if let Ok(list) = serde_json::from_value::<TaskList>(value) {
            for t in &list.tasks {
                let _ = t.is_live();
            }
        }
    }

    #[test]
    fn imds_answers_never_panic_and_errors_name_the_path(bytes in json_bytes(), value in arb_json()) {
        let text = String::from_utf8_lossy(&bytes);
        for doc in [text.to_string(), value.to_string()] {
            if let Err(e) = imds::parse_identity(&doc) {
                prop_assert!(e.to_string().contains("/latest/dynamic/instance-identity/document"));
            }
            if let Err(e) = imds::parse_spot_action(&doc) {
                prop_assert!(e.to_string().contains("/latest/meta-data/spot/instance-action"));
            }
        }
    }
}

#[test]
fn an_identity_document_with_extra_fields_parses() {
    let id = imds::parse_identity(
        r#"{"instanceId":"i-1","region":"us-east-1","availabilityZone":"us-east-1a",
            "instanceType":"t3.micro","pendingTime":"2024-01-01T00:00:00Z","version":"2017-09-30"}"#,
    )
    .unwrap();
    assert_eq!(
        (id.instance_id.as_str(), id.region.as_str()),
        ("i-1", "us-east-1")
    );
}

/// Every duration config.toml accepts must fit the deadlines it feeds (`Instant + d` in every
/// wait, `OffsetDateTime + d` for the drain deadline): both panic on overflow.
/// Found by this suite: `[tags] wait = "500000000000y"` passes check-config, then `run` panics
/// ("overflow when adding duration to instant", exit 101) in retry::poll_until. The fix belongs
/// in src/config/duration.rs (bound what is accepted) or retry.rs (saturate); until then:
#[test]
fn accepted_durations_fit_a_deadline() {
    for text in [
        "[tags]\nwait = \"500000000000y\"\n",
        "[drain]\ndeadline = \"500000000000y\"\n",
        "[ecs_agent]\nregistration_timeout = \"18446744073709551615s\"\n",
    ] {
        let Ok(c) = Config::parse(text, "t") else {
            continue;
        };
        for d in [
            c.tags.wait,
            c.drain.deadline,
            c.ecs_agent.registration_timeout,
        ] {
            assert!(
                std::time::Instant::now().checked_add(d).is_some()
                    && time::OffsetDateTime::now_utc()
                        .checked_add(d.try_into().unwrap_or(time::Duration::MAX))
                        .is_some(),
                "{text:?} was accepted but {d:?} overflows a deadline"
            );
        }
    }
}
