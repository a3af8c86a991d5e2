//! The config phase step by step against an in-memory instance: each phase ok and failing, what
//! it called (and what it must never call), and what state.json recorded. Tag waits run on
//! tokio's paused clock, so a 4 s wait costs no time.

use super::fake::{ACCOUNT_ID, FakeInstance, INSTANCE_ID, REGION, TagsAnswer, tag_map};
use super::*;
use crate::status::state::State;

const OK: PhaseStatus = PhaseStatus::Ok;
const FAILED: PhaseStatus = PhaseStatus::Failed;

const CLUSTER_TAG: (&str, &str) = ("ecs-boot:cluster", "web");
/// The tag wait, unless a test's config has its own `[tags]`: long enough for several reads.
const WAIT: &str = "[tags]\nwait = \"4s\"\n";

/// A password no error, log line or state file may ever show.
const SECRET: &str = "hunter2-do-not-print";
const AUTH: &str = r#"{"username":"bob","password":"hunter2-do-not-print","registry":"https://registry.example.com"}"#;

/// A scratch root with its state store, as `run` has on the host.
struct Host {
    _dir: tempfile::TempDir,
    paths: Paths,
    store: StateStore,
}

fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let store = StateStore::open(paths.state_file());
    Host {
        _dir: dir,
        paths,
        store,
    }
}

impl Host {
    /// The config phase over `instance`, with `config` as the trusted config.
    async fn prepare(
        &self,
        config: &str,
        instance: &FakeInstance,
    ) -> (Result<Prepared<FakeInstance>>, Known<FakeInstance>) {
        let text = match config.contains("[tags]") {
            true => config.to_string(),
            false => format!("{WAIT}{config}"),
        };
        let config = Config::parse(&text, "config.toml").unwrap();
        let mut known = Known::default();
        let out = prepare(
            &config,
            &self.paths,
            instance,
            instance,
            Some(&self.store),
            &mut known,
        )
        .await;
        (out, known)
    }

    /// state.json as a reader of the file sees it.
    fn state(&self) -> State {
        State::read(&self.paths.state_file()).unwrap()
    }

    fn state_text(&self) -> String {
        std::fs::read_to_string(self.paths.state_file()).unwrap()
    }

    fn phases(&self) -> Vec<(String, PhaseStatus)> {
        self.state()
            .phases
            .iter()
            .map(|p| (p.name.clone(), p.status))
            .collect()
    }
}

fn phases(expected: &[(&str, PhaseStatus)]) -> Vec<(String, PhaseStatus)> {
    expected.iter().map(|(n, s)| (n.to_string(), *s)).collect()
}

fn refused<T>(out: Result<T>) -> Error {
    match out {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    }
}

/// A `[trust]` section with these lines.
fn trust(lines: &[&str]) -> String {
    format!("[trust]\n{}", lines.concat())
}

fn fetches(instance: &FakeInstance) -> Vec<String> {
    instance
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("fetch "))
        .collect()
}

// identity

#[tokio::test(start_paused = true)]
async fn identity_failing_fails_its_phase_and_nothing_after_it_runs() {
    let h = host();
    let instance = FakeInstance::with_tags(&[CLUSTER_TAG])
        .without_identity()
        .object("s3://creds/hub.json", AUTH.as_bytes(), false);
    let (out, known) = h
        .prepare(
            "[ecs]\nregistry_auth = \"s3://creds/hub.json\"\n",
            &instance,
        )
        .await;
    let e = refused(out);
    assert!(matches!(e, Error::Imds(_)), "{e}");
    assert_eq!(
        instance.calls(),
        ["IMDS identity"],
        "no connect, no tags, no fetch"
    );
    assert!(known.identity.is_none() && known.aws.is_none() && known.tags.is_none());
    assert_eq!(h.phases(), phases(&[("identity", FAILED)]));
    let state = h.state();
    let error = state.error.expect("the failure is recorded");
    assert_eq!(error.phase, "identity");
    assert!(
        error.message.contains("instance-identity"),
        "{}",
        error.message
    );
    assert!(!error.hint.is_empty());
    assert!(state.instance.is_none());
}

#[tokio::test(start_paused = true)]
async fn after_the_identity_the_clients_are_for_its_region_and_known_to_the_abandon() {
    let h = host();
    let instance = FakeInstance::with_tags(&[]).tag_answers(&[TagsAnswer::Fails]);
    let (out, known) = h.prepare("", &instance).await;
    let e = refused(out);
    assert!(
        e.to_string().contains("/latest/meta-data/tags/instance"),
        "{e}"
    );
    assert_eq!(
        instance.calls(),
        ["IMDS identity", &format!("connect {REGION}"), "IMDS tags"],
        "a failed read ends the wait at once"
    );
    assert_eq!(known.identity.unwrap().instance_id, INSTANCE_ID);
    assert!(
        known.aws.is_some(),
        "the launch hook can still be ABANDONed"
    );
    assert!(known.tags.is_none());
    assert_eq!(h.phases(), phases(&[("identity", OK), ("tags", FAILED)]));
    assert_eq!(h.state().instance.unwrap().instance_id, INSTANCE_ID);
}

// tags

#[tokio::test(start_paused = true)]
async fn tags_missing_at_first_are_read_again_until_they_appear() {
    let h = host();
    let instance = FakeInstance::with_tags(&[]).tag_answers(&[
        TagsAnswer::Tags(tag_map(&[])),
        TagsAnswer::Tags(tag_map(&[("Name", "web")])),
        TagsAnswer::Tags(tag_map(&[CLUSTER_TAG])),
    ]);
    let (out, known) = h.prepare("", &instance).await;
    let p = out.unwrap();
    assert_eq!(instance.count("IMDS tags"), 3);
    assert_eq!(p.tags.cluster.as_deref(), Some("web"));
    assert_eq!(p.env.cluster(), "web");
    assert_eq!(known.tags.unwrap().cluster.as_deref(), Some("web"));
    assert_eq!(
        h.phases(),
        phases(&[
            ("identity", OK),
            ("tags", OK),
            ("credentials", OK),
            ("ecs-config-render", OK),
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn tags_disabled_with_a_required_tag_is_tags_disabled() {
    let h = host();
    let instance = FakeInstance::with_tags(&[]).tag_answers(&[TagsAnswer::Disabled]);
    let (out, known) = h.prepare("", &instance).await;
    match refused(out) {
        Error::TagsDisabled { missing } => assert_eq!(missing, ["ecs-boot:cluster"]),
        e => panic!("{e}"),
    }
    assert!(known.tags.is_none());
    assert_eq!(h.phases(), phases(&[("identity", OK), ("tags", FAILED)]));
    assert!(
        h.state()
            .error
            .unwrap()
            .hint
            .contains("instance_metadata_tags")
    );
}

#[tokio::test(start_paused = true)]
async fn tags_disabled_without_a_required_tag_boots_on_the_trusted_config() {
    let h = host();
    let instance = FakeInstance::with_tags(&[]).tag_answers(&[TagsAnswer::Disabled]);
    let (out, _) = h.prepare("[ecs]\ncluster = \"baked\"\n", &instance).await;
    let p = out.unwrap();
    assert_eq!(p.env.cluster(), "baked");
    assert_eq!(instance.count("IMDS tags"), 1, "nothing to wait for");
}

#[tokio::test(start_paused = true)]
async fn a_required_tag_that_never_appears_is_named() {
    let h = host();
    let instance = FakeInstance::with_tags(&[CLUSTER_TAG]);
    let config = "[ecs]\ncluster = \"baked\"\n[tags]\nwait = \"4s\"\nrequired = [\"team\"]\n";
    let (out, _) = h.prepare(config, &instance).await;
    match refused(out) {
        Error::TagsMissing { missing, .. } => assert_eq!(missing, ["team"]),
        e => panic!("{e}"),
    }
    assert!(
        instance.count("IMDS tags") > 1,
        "read again until the wait ends"
    );
    assert_eq!(h.phases(), phases(&[("identity", OK), ("tags", FAILED)]));
}

#[tokio::test(start_paused = true)]
async fn no_tag_read_answered_in_the_wait_is_an_imds_error_not_a_missing_tag() {
    let h = host();
    let instance = FakeInstance::with_tags(&[]).tag_answers(&[TagsAnswer::Hangs]);
    let (out, _) = h.prepare("", &instance).await;
    match refused(out) {
        Error::Imds(f) => {
            assert_eq!(f.path, "/latest/meta-data/tags/instance");
            assert!(f.message.contains("no answer within"), "{}", f.message);
            assert!(f.message.contains("ecs-boot:cluster"), "{}", f.message);
        }
        e => panic!("{e}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_unknown_ecs_boot_tag_is_warned_about() {
    let h = host();
    let instance = FakeInstance::with_tags(&[CLUSTER_TAG, ("ecs-boot:clustr", "web")]);
    let (out, _) = h.prepare("", &instance).await;
    out.unwrap();
    let warnings = h.state().warnings;
    assert!(
        warnings.iter().any(|w| w.contains("ecs-boot:clustr")),
        "{warnings:?}"
    );
}

// the config fragment a tag names

/// Fragments may come from under this prefix: the trusted config's placeholder, substituted.
const FRAGMENT_PREFIXES: &str = "fragment_prefixes = [\"s3://cfg-${account_id}/fragments/\"]\n";

fn fragment_at() -> String {
    format!("s3://cfg-{ACCOUNT_ID}/fragments/web.toml")
}

const FRAGMENT: &str = "[ecs.attributes]\nteam = \"blue\"\n";

#[tokio::test(start_paused = true)]
async fn a_fragment_tag_under_the_allowed_prefix_is_fetched_and_merged() {
    let h = host();
    let instance = FakeInstance::with_tags(&[CLUSTER_TAG, ("ecs-boot:config", &fragment_at())])
        .object(&fragment_at(), FRAGMENT.as_bytes(), false);
    let (out, _) = h.prepare(&trust(&[FRAGMENT_PREFIXES]), &instance).await;
    let p = out.unwrap();
    assert_eq!(
        p.config.ecs.attributes.get("team").map(String::as_str),
        Some("blue")
    );
    assert_eq!(
        fetches(&instance),
        [format!(
            "fetch {} max {}",
            fragment_at(),
            registry_auth::MAX_BYTES
        )]
    );
    assert_eq!(
        h.phases(),
        phases(&[
            ("identity", OK),
            ("tags", OK),
            ("config-fragment", OK),
            ("credentials", OK),
            ("ecs-config-render", OK),
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn a_fragment_tag_outside_the_allowed_prefixes_is_refused_without_a_fetch() {
    let h = host();
    let elsewhere = "s3://someone-elses-bucket/web.toml";
    let instance = FakeInstance::with_tags(&[CLUSTER_TAG, ("ecs-boot:config", elsewhere)]).object(
        elsewhere,
        FRAGMENT.as_bytes(),
        false,
    );
    let (out, known) = h.prepare(&trust(&[FRAGMENT_PREFIXES]), &instance).await;
    let e = refused(out);
    assert!(matches!(e, Error::Trust(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("tag ecs-boot:config") && msg.contains("fragment_prefixes"),
        "{msg}"
    );
    assert_eq!(fetches(&instance), Vec::<String>::new());
    assert!(known.tags.is_some());
    assert_eq!(
        h.phases(),
        phases(&[("identity", OK), ("tags", OK), ("config-fragment", FAILED)])
    );
}

#[tokio::test(start_paused = true)]
async fn a_fragment_tag_is_ignored_without_a_fetch_when_the_config_is_locked() {
    let h = host();
    let instance = FakeInstance::with_tags(&[CLUSTER_TAG, ("ecs-boot:config", &fragment_at())])
        .object(&fragment_at(), FRAGMENT.as_bytes(), false);
    let config = format!(
        "[ecs]\nlocked = [\"config\"]\n{}",
        trust(&[FRAGMENT_PREFIXES])
    );
    let (out, _) = h.prepare(&config, &instance).await;
    let p = out.unwrap();
    assert!(p.config.ecs.attributes.is_empty());
    assert_eq!(fetches(&instance), Vec::<String>::new());
    assert!(!h.phases().iter().any(|(n, _)| n == "config-fragment"));
}

#[tokio::test(start_paused = true)]
async fn a_fragment_that_is_not_utf8_is_refused_naming_its_location() {
    let h = host();
    let instance = FakeInstance::with_tags(&[CLUSTER_TAG, ("ecs-boot:config", &fragment_at())])
        .object(
            &fragment_at(),
            b"[ecs.attributes]\nteam = \"\xff\"\n",
            false,
        );
    let (out, _) = h.prepare(&trust(&[FRAGMENT_PREFIXES]), &instance).await;
    let msg = refused(out).to_string();
    assert!(
        msg.contains(&fragment_at()) && msg.contains("not UTF-8"),
        "{msg}"
    );
}

// registry credentials

/// Credentials a tag names may come from under this prefix.
const CREDS_PREFIXES: &str = "registry_auth_prefixes = [\"ssm:/ecs-boot/registry/\"]\n";

#[tokio::test(start_paused = true)]
async fn credentials_the_trusted_config_names_are_fetched_wherever_they_are() {
    let h = host();
    let at = "s3://any-bucket/hub.json";
    let instance = FakeInstance::with_tags(&[CLUSTER_TAG]).object(at, AUTH.as_bytes(), false);
    let config = format!(
        "[ecs]\nregistry_auth = \"{at}\"\n{}",
        trust(&[CREDS_PREFIXES])
    );
    let (out, _) = h.prepare(&config, &instance).await;
    let p = out.unwrap();
    assert_eq!(p.auth.unwrap().registries(), ["registry.example.com"]);
    assert_eq!(p.auth_location.as_deref(), Some(at));
    assert_eq!(
        fetches(&instance),
        [format!("fetch {at} max {}", registry_auth::MAX_BYTES)]
    );
    let state = h.state_text();
    assert!(!state.contains(SECRET), "the secret reached state.json");
    let credentials = h
        .state()
        .phases
        .into_iter()
        .find(|p| p.name == "credentials");
    assert_eq!(
        credentials.unwrap().detail.as_deref(),
        Some("1 registry from s3://any-bucket/hub.json")
    );
}

#[tokio::test(start_paused = true)]
async fn credentials_a_tag_names_outside_the_allowed_prefixes_are_refused_without_a_fetch() {
    let h = host();
    let at = "s3://attacker-bucket/hub.json";
    let instance = FakeInstance::with_tags(&[CLUSTER_TAG, ("ecs-boot:registry-auth", at)]).object(
        at,
        AUTH.as_bytes(),
        false,
    );
    let (out, _) = h.prepare(&trust(&[CREDS_PREFIXES]), &instance).await;
    let e = refused(out);
    assert!(matches!(e, Error::Trust(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("tag ecs-boot:registry-auth") && msg.contains("registry_auth_prefixes"),
        "{msg}"
    );
    assert_eq!(fetches(&instance), Vec::<String>::new());
    assert_eq!(
        h.phases(),
        phases(&[("identity", OK), ("tags", OK), ("credentials", FAILED)])
    );
}

#[tokio::test(start_paused = true)]
async fn credentials_a_tag_names_under_the_allowed_prefixes_are_fetched_if_a_secure_string() {
    for (secure, accepted) in [(true, true), (false, false)] {
        let h = host();
        let at = "ssm:/ecs-boot/registry/hub";
        let instance = FakeInstance::with_tags(&[CLUSTER_TAG, ("ecs-boot:registry-auth", at)])
            .object(at, AUTH.as_bytes(), secure);
        let (out, _) = h.prepare(&trust(&[CREDS_PREFIXES]), &instance).await;
        assert_eq!(fetches(&instance).len(), 1, "secure={secure}");
        match out {
            Ok(p) => {
                assert!(accepted, "a plain String parameter was accepted");
                assert_eq!(p.auth.unwrap().logins.len(), 1);
            }
            Err(e) => {
                assert!(!accepted, "{e}");
                assert!(matches!(e, Error::NotSecure { .. }), "{e}");
                assert!(e.to_string().contains(at), "{e}");
                assert!(!e.to_string().contains(SECRET));
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn credentials_a_fragment_names_are_fenced_like_a_tag() {
    let h = host();
    let at = "s3://attacker-bucket/hub.json";
    let fragment = format!("[ecs]\nregistry_auth = \"{at}\"\n");
    let instance = FakeInstance::with_tags(&[CLUSTER_TAG, ("ecs-boot:config", &fragment_at())])
        .object(&fragment_at(), fragment.as_bytes(), false)
        .object(at, AUTH.as_bytes(), false);
    let config = format!(
        "[trust]
{FRAGMENT_PREFIXES}{CREDS_PREFIXES}fragment_keys = [\"ecs.registry_auth\"]
"
    );
    let (out, _) = h.prepare(&config, &instance).await;
    let msg = refused(out).to_string();
    assert!(
        msg.contains("from the config fragment") && msg.contains("registry_auth_prefixes"),
        "{msg}"
    );
    assert_eq!(
        fetches(&instance),
        [format!(
            "fetch {} max {}",
            fragment_at(),
            registry_auth::MAX_BYTES
        )],
        "the fragment only"
    );
}

#[tokio::test(start_paused = true)]
async fn oversized_or_invalid_credentials_are_refused_naming_the_location_never_the_content() {
    let at = "ssm:/ecs-boot/registry/hub";
    let mut oversized = AUTH.as_bytes().to_vec();
    oversized.resize(registry_auth::MAX_BYTES + 1, b' ');
    let truncated = &AUTH.as_bytes()[..AUTH.len() - 2];
    for (name, bytes) in [("oversized", &oversized[..]), ("invalid JSON", truncated)] {
        let h = host();
        let instance = FakeInstance::with_tags(&[CLUSTER_TAG, ("ecs-boot:registry-auth", at)])
            .object(at, bytes, true);
        let (out, _) = h.prepare(&trust(&[CREDS_PREFIXES]), &instance).await;
        let e = refused(out);
        let msg = e.to_string();
        assert!(msg.contains(at), "{name}: {msg}");
        assert!(!msg.contains(SECRET), "{name}: {msg}");
        match name {
            // Refused by the capped fetch, not after reading it all.
            "oversized" => assert!(matches!(e, Error::Fetch { .. }), "{msg}"),
            _ => assert!(matches!(e, Error::Auth(_)), "{msg}"),
        }
        assert!(!h.state_text().contains(SECRET), "{name}");
        assert_eq!(
            fetches(&instance),
            [format!("fetch {at} max {}", registry_auth::MAX_BYTES)]
        );
    }
}

#[tokio::test(start_paused = true)]
async fn credentials_without_an_instance_role_fail_with_the_role_hint() {
    let h = host();
    let at = "s3://any-bucket/hub.json";
    let instance = FakeInstance::with_tags(&[CLUSTER_TAG])
        .object(at, AUTH.as_bytes(), false)
        .without_role();
    let (out, _) = h
        .prepare(&format!("[ecs]\nregistry_auth = \"{at}\"\n"), &instance)
        .await;
    let e = refused(out);
    assert!(matches!(e, Error::Fetch { .. }), "{e}");
    let error = h.state().error.unwrap();
    assert_eq!(error.phase, "credentials");
    assert!(error.hint.contains("instance profile"), "{}", error.hint);
}

// ecs.config rendered over the file on disk

fn existing_ecs_config(h: &Host, bytes: &[u8]) {
    let path = h.paths.ecs_config();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_render_keeps_user_datas_own_lines() {
    let h = host();
    existing_ecs_config(&h, b"ECS_FROM_USER_DATA=1\n");
    let instance = FakeInstance::with_tags(&[CLUSTER_TAG]);
    let (out, _) = h.prepare("", &instance).await;
    let text = out.unwrap().rendered.text;
    assert!(text.contains("ECS_FROM_USER_DATA=1\n"), "{text}");
    assert!(text.contains("ECS_CLUSTER=web\n"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn an_existing_ecs_config_that_cannot_be_read_fails_the_render_and_is_left_as_it_is() {
    let h = host();
    let unreadable = b"ECS_FROM_USER_DATA=1\nECS_BROKEN=\xff\xfe\n";
    existing_ecs_config(&h, unreadable);
    let instance = FakeInstance::with_tags(&[CLUSTER_TAG]);
    let (out, _) = h.prepare("", &instance).await;
    let e = refused(out);
    assert!(matches!(e, Error::ExistingEcsConfig(_)), "{e}");
    assert!(e.to_string().contains("line 2"), "{e}");
    assert_eq!(std::fs::read(h.paths.ecs_config()).unwrap(), unreadable);
    assert_eq!(
        h.phases(),
        phases(&[
            ("identity", OK),
            ("tags", OK),
            ("credentials", OK),
            ("ecs-config-render", FAILED),
        ])
    );
    assert_eq!(h.state().error.unwrap().phase, "ecs-config-render");
}

#[tokio::test(start_paused = true)]
async fn an_ecs_config_path_that_is_not_a_file_fails_the_render() {
    let h = host();
    std::fs::create_dir_all(h.paths.ecs_config()).unwrap();
    let instance = FakeInstance::with_tags(&[CLUSTER_TAG]);
    let (out, _) = h.prepare("", &instance).await;
    let e = refused(out);
    assert!(matches!(e, Error::ExistingEcsConfig(_)), "{e}");
}

// state.json

#[tokio::test(start_paused = true)]
async fn state_json_records_every_phase_and_the_instance_without_secrets() {
    let h = host();
    let creds = "ssm:/ecs-boot/registry/hub";
    let instance = FakeInstance::with_tags(&[
        CLUSTER_TAG,
        ("ecs-boot:config", &fragment_at()),
        ("ecs-boot:registry-auth", creds),
    ])
    .object(&fragment_at(), FRAGMENT.as_bytes(), false)
    .object(creds, AUTH.as_bytes(), true);
    let config = format!(
        "[trust]
{FRAGMENT_PREFIXES}{CREDS_PREFIXES}"
    );
    let (out, known) = h.prepare(&config, &instance).await;
    let p = out.unwrap();
    assert!(known.identity.is_some() && known.aws.is_some() && known.tags.is_some());
    assert_eq!(
        instance.calls(),
        [
            "IMDS identity".to_string(),
            format!("connect {REGION}"),
            "IMDS tags".to_string(),
            format!("fetch {} max {}", fragment_at(), registry_auth::MAX_BYTES),
            format!("fetch {creds} max {}", registry_auth::MAX_BYTES),
        ]
    );
    let state = h.state();
    assert_eq!(
        h.phases(),
        phases(&[
            ("identity", OK),
            ("tags", OK),
            ("config-fragment", OK),
            ("credentials", OK),
            ("ecs-config-render", OK),
        ])
    );
    assert!(state.phases.iter().all(|p| p.ended_at.is_some()));
    assert!(state.error.is_none());
    let recorded = state.instance.unwrap();
    assert_eq!(
        (recorded.instance_id.as_str(), recorded.region.as_str()),
        (INSTANCE_ID, REGION)
    );
    assert!(p.rendered.text.contains("ECS_ENGINE_AUTH_DATA"));
    assert!(!h.state_text().contains(SECRET));
}

#[tokio::test(start_paused = true)]
async fn without_a_recorder_nothing_is_recorded() {
    let h = host();
    let before = h.state_text();
    let instance = FakeInstance::with_tags(&[CLUSTER_TAG]);
    let config = Config::parse(WAIT, "config.toml").unwrap();
    let mut known = Known::default();
    prepare(&config, &h.paths, &instance, &instance, None, &mut known)
        .await
        .unwrap();
    assert_eq!(h.state_text(), before, "render must not touch state.json");
}
