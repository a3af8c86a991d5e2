//! What must never leave the instance in a recording: the ecs.config secrets (registry
//! credentials, a proxy's user:password) are masked in ecs.config, and any spelling of them that
//! turns up in a log (raw, base64, JSON-escaped) is cut out of every other file too.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::collections::BTreeSet;

/// Shorter values are not searched for: they would cut ordinary words out of the logs, and no
/// credential ecs-boot writes is this short.
const MIN_NEEDLE: usize = 6;
pub const REDACTED: &str = "<redacted>";

#[derive(Default)]
pub struct Redactor {
    needles: BTreeSet<String>,
}

/// The agent variables whose values are credentials, as ecs.config holds them.
pub fn secret_line(key: &str, value: &str) -> bool {
    crate::ecs_config::vars::is_secret(key)
        || (matches!(key, "HTTP_PROXY" | "HTTPS_PROXY") && crate::util::proxy::has_userinfo(value))
}

impl Redactor {
    /// Learns the secrets of an ecs.config text (every line, ours or user data's).
    pub fn from_ecs_config(text: &str) -> Redactor {
        let mut r = Redactor::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if !secret_line(k, v) {
                continue;
            }
            r.add(v);
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(v) {
                r.add_json(&json);
            }
            if let Some(userinfo) = proxy_userinfo(v) {
                r.add_credential(userinfo);
            }
        }
        r
    }

    /// A proxy URL from the trusted config (it may not be in ecs.config yet).
    pub fn add_proxy_url(&mut self, url: &str) {
        if let Some(userinfo) = proxy_userinfo(url) {
            self.add_credential(userinfo);
        }
    }

    fn add(&mut self, needle: &str) {
        if needle.len() < MIN_NEEDLE {
            return;
        }
        self.needles.insert(needle.to_string());
        self.needles.insert(STANDARD.encode(needle));
        let escaped = serde_json::to_string(needle).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        if escaped != needle {
            self.needles.insert(escaped.to_string());
        }
    }

    /// `user:password`: both together, the password alone, and their base64 forms.
    fn add_credential(&mut self, userinfo: &str) {
        self.add(userinfo);
        if let Some((_, password)) = userinfo.split_once(':') {
            self.add(password);
        }
    }

    /// dockercfg JSON: every string under `auth`, `password`, `identitytoken`, `registrytoken`,
    /// and the `user:password` an `auth` decodes to.
    fn add_json(&mut self, v: &serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.to_ascii_lowercase().as_str(), v) {
                        ("auth", serde_json::Value::String(s)) => {
                            self.add(s);
                            if let Some(decoded) = STANDARD
                                .decode(s)
                                .ok()
                                .and_then(|b| String::from_utf8(b).ok())
                            {
                                self.add_credential(&decoded);
                            }
                        }
                        (
                            "password" | "identitytoken" | "registrytoken",
                            serde_json::Value::String(s),
                        ) => self.add(s),
                        _ => self.add_json(v),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| self.add_json(i)),
            _ => {}
        }
    }

    /// `text` with every known secret replaced; longest first, so a value containing another is
    /// cut whole.
    pub fn apply(&self, text: &str) -> String {
        let mut needles: Vec<&String> = self.needles.iter().collect();
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        let mut out = text.to_string();
        for n in needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), REDACTED);
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }
}

/// The `user:password` of `scheme://user:password@host`, if any.
fn proxy_userinfo(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    authority.rsplit_once('@').map(|(u, _)| u)
}

/// ecs.config with every secret line masked (its value replaced by a short fingerprint).
pub fn mask_ecs_config(text: &str) -> String {
    let mut env = crate::ecs_config::AgentEnv::default();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=')
            && secret_line(k.trim(), v.trim())
        {
            env.secret.insert(k.trim().to_string());
        }
    }
    crate::ecs_config::mask(text, &env)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "Vv9-corr3ct-h0rse-SECRET-77qZ";
    const PROXY_PASSWORD: &str = "pr0xy-Pa55word-X";

    fn ecs_config() -> String {
        let auth = STANDARD.encode(format!("ci-robot:{PASSWORD}"));
        format!(
            "ECS_CLUSTER=prod\nECS_ENGINE_AUTH_TYPE=dockercfg\n\
             ECS_ENGINE_AUTH_DATA={{\"https://index.docker.io/v1/\":{{\"auth\":\"{auth}\"}}}}\n\
             HTTPS_PROXY=http://squid:{PROXY_PASSWORD}@proxy.internal:3128\n\
             HTTP_PROXY=http://proxy.internal:3128\n"
        )
    }

    #[test]
    fn every_spelling_of_a_secret_is_cut_from_logs() {
        let r = Redactor::from_ecs_config(&ecs_config());
        let log = format!(
            "pull with ci-robot:{PASSWORD} auth={} pw={PASSWORD} b64pw={} proxy {PROXY_PASSWORD} \
             json \"{}\" ok",
            STANDARD.encode(format!("ci-robot:{PASSWORD}")),
            STANDARD.encode(PASSWORD),
            serde_json::to_string(PASSWORD).unwrap().trim_matches('"'),
        );
        let out = r.apply(&log);
        for needle in [PASSWORD, PROXY_PASSWORD, &STANDARD.encode(PASSWORD)] {
            assert!(!out.contains(needle), "{out}");
        }
        assert!(
            out.starts_with("pull with ") && out.ends_with(" ok"),
            "{out}"
        );
    }

    #[test]
    fn ecs_config_is_masked_but_keeps_its_shape() {
        let masked = mask_ecs_config(&ecs_config());
        assert!(
            !masked.contains(PASSWORD) && !masked.contains(PROXY_PASSWORD),
            "{masked}"
        );
        assert!(!masked.contains(&STANDARD.encode(format!("ci-robot:{PASSWORD}"))));
        assert!(masked.contains("ECS_CLUSTER=prod\n"), "{masked}");
        // A proxy without credentials is not a secret.
        assert!(
            masked.contains("HTTP_PROXY=http://proxy.internal:3128\n"),
            "{masked}"
        );
        assert!(masked.contains("HTTPS_PROXY=<secret sha256:"), "{masked}");
    }

    #[test]
    fn a_config_without_secrets_changes_nothing() {
        let r = Redactor::from_ecs_config("ECS_CLUSTER=prod\n");
        assert!(r.is_empty());
        assert_eq!(r.apply("ECS_CLUSTER=prod"), "ECS_CLUSTER=prod");
    }
}
