//! Registry credentials: accepted in the three forms people have (Docker's config.json, the legacy
//! dockercfg map, a plain username/password), rendered as the one form the ECS agent reads
//! (`ECS_ENGINE_AUTH_TYPE=dockercfg`). Errors name the source and the problem, never the secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;

/// The only key the ECS agent matches for Docker Hub images (dockerauth.go:59,158-160).
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
pub const MAX_BYTES: usize = 64 * 1024;

/// A string that never prints: Debug and Display are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    #[error(
        "registry credentials from {source_name}: object is {size} bytes, over the {MAX_BYTES}-byte limit"
    )]
    TooLarge { source_name: String, size: usize },
    #[error("registry credentials from {source_name}: not valid JSON ({problem})")]
    NotJson {
        source_name: String,
        problem: String,
    },
    #[error("registry credentials from {source_name}: {problem}")]
    Shape {
        source_name: String,
        problem: String,
    },
}

/// One registry's login, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: Secret,
    pub email: Option<String>,
}

/// Credentials by registry key as the agent expects it (`https://index.docker.io/v1/` for Hub).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistryAuth {
    pub logins: BTreeMap<String, Login>,
}

impl RegistryAuth {
    /// Parses any accepted form. `source_name` (an S3 URL or SSM name) is used in errors only.
    pub fn parse(bytes: &[u8], source_name: &str) -> Result<RegistryAuth, AuthError> {
        let shape = |problem: &str| AuthError::Shape {
            source_name: source_name.to_string(),
            problem: problem.to_string(),
        };
        if bytes.len() > MAX_BYTES {
            return Err(AuthError::TooLarge {
                source_name: source_name.to_string(),
                size: bytes.len(),
            });
        }
        // Parse to a Value first: serde_json's syntax errors carry positions, never content.
        let value: Value = serde_json::from_slice(bytes).map_err(|e| AuthError::NotJson {
            source_name: source_name.to_string(),
            problem: format!(
                "{:?} at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ),
        })?;
        let Value::Object(top) = value else {
            return Err(shape("expected a JSON object"));
        };
        let mut logins = BTreeMap::new();
        if top.contains_key("username") || top.contains_key("password") {
            let login = login_from_fields(&top).map_err(|p| shape(&p))?;
            let registry = match top.get("registry") {
                None => DOCKER_HUB_KEY.to_string(),
                Some(Value::String(r)) => normalize_registry(r).map_err(|p| shape(&p))?,
                Some(_) => return Err(shape("\"registry\" must be a string")),
            };
            logins.insert(registry, login);
        } else {
            let entries = match top.get("auths") {
                Some(Value::Object(auths)) => auths,
                Some(_) => return Err(shape("\"auths\" must be an object of registries")),
                None if top.contains_key("credsStore") || top.contains_key("credHelpers") => {
                    return Err(shape(
                        "credential helpers (credsStore/credHelpers) cannot be used on an instance; store the auth itself",
                    ));
                }
                None => &top,
            };
            // Entries are named by position, never by key: the object may be anything a tag
            // pointed at, and an error must not quote it.
            for (n, (registry, entry)) in entries.iter().enumerate() {
                let Value::Object(fields) = entry else {
                    return Err(shape(&format!(
                        "registry entry {} must be an object",
                        n + 1
                    )));
                };
                let login = login_from_fields(fields)
                    .map_err(|p| shape(&format!("registry entry {}: {p}", n + 1)))?;
                logins.insert(normalize_registry(registry).map_err(|p| shape(&p))?, login);
            }
        }
        if logins.is_empty() {
            return Err(shape("no registry in the credentials"));
        }
        Ok(RegistryAuth { logins })
    }

    /// `ECS_ENGINE_AUTH_DATA` for `ECS_ENGINE_AUTH_TYPE=dockercfg`, on one line.
    pub fn render_dockercfg(&self) -> Secret {
        let mut map = Map::new();
        for (registry, login) in &self.logins {
            let mut entry = Map::new();
            let pair = format!("{}:{}", login.username, login.password.expose());
            entry.insert("auth".into(), Value::String(B64.encode(pair)));
            if let Some(email) = &login.email {
                entry.insert("email".into(), Value::String(email.clone()));
            }
            map.insert(registry.clone(), Value::Object(entry));
        }
        Secret(Value::Object(map).to_string())
    }

    pub fn registries(&self) -> Vec<String> {
        self.logins.keys().cloned().collect()
    }
}

fn login_from_fields(fields: &Map<String, Value>) -> Result<Login, String> {
    let text = |k: &str| match fields.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("\"{k}\" must be a string")),
    };
    let email = text("email")?.filter(|e| !e.is_empty());
    let (username, password) = match (text("auth")?, text("username")?, text("password")?) {
        (Some(auth), _, _) => {
            let decoded = B64
                .decode(auth.trim())
                .map_err(|_| "\"auth\" is not valid base64".to_string())?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| "\"auth\" does not decode to text".to_string())?;
            let (u, p) = decoded
                .split_once(':')
                .ok_or("\"auth\" must decode to user:password (no ':' found)")?;
            (u.to_string(), p.to_string())
        }
        (None, Some(u), Some(p)) => (u, p),
        (None, Some(_), None) => return Err("\"password\" is missing".into()),
        _ => {
            return Err(
                "needs \"auth\" (base64 of user:password) or \"username\" and \"password\"".into(),
            );
        }
    };
    if username.is_empty() || password.is_empty() {
        return Err("user name and password must not be empty".into());
    }
    if username
        .chars()
        .chain(password.chars())
        .any(char::is_control)
    {
        return Err("user name or password contains a control character".into());
    }
    Ok(Login {
        username,
        password: Secret(password),
        email,
    })
}

/// Maps every spelling of Docker Hub to the agent's one key; other registries keep their host
/// (with any scheme, which the agent strips).
pub fn normalize_registry(raw: &str) -> Result<String, String> {
    let host = raw
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let bare = host.trim_end_matches('/');
    if bare.is_empty() || bare.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "a registry key is not a registry address (empty, spaces or control characters)".into(),
        );
    }
    let hub = [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "index.docker.io/v1",
        "registry.hub.docker.com",
    ];
    if hub.contains(&bare) {
        return Ok(DOCKER_HUB_KEY.to_string());
    }
    Ok(bare.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-Pa55";

    fn b64(s: &str) -> String {
        B64.encode(s)
    }

    #[test]
    fn docker_config_json_form() {
        let json = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
            b64(&format!("bob:{SECRET}"))
        );
        let a = RegistryAuth::parse(json.as_bytes(), "s3://b/k").unwrap();
        assert_eq!(a.logins[DOCKER_HUB_KEY].username, "bob");
        assert_eq!(
            a.render_dockercfg().expose(),
            format!(
                r#"{{"{DOCKER_HUB_KEY}":{{"auth":"{}"}}}}"#,
                b64(&format!("bob:{SECRET}"))
            )
        );
    }

    #[test]
    fn legacy_dockercfg_form_keeps_email() {
        let json = format!(
            r#"{{"docker.io":{{"auth":"{}","email":"ops@example.com"}}}}"#,
            b64("bob:pw")
        );
        let a = RegistryAuth::parse(json.as_bytes(), "x").unwrap();
        let rendered = a.render_dockercfg();
        let v: Value = serde_json::from_str(rendered.expose()).unwrap();
        assert_eq!(v[DOCKER_HUB_KEY]["email"], "ops@example.com");
    }

    #[test]
    fn username_password_form_defaults_to_docker_hub() {
        let a = RegistryAuth::parse(br#"{"username":"bob","password":"pw"}"#, "x").unwrap();
        assert!(a.logins.contains_key(DOCKER_HUB_KEY));
        let a = RegistryAuth::parse(
            br#"{"username":"bob","password":"pw","registry":"https://registry.example.com"}"#,
            "x",
        )
        .unwrap();
        assert!(a.logins.contains_key("registry.example.com"));
    }

    #[test]
    fn errors_name_the_source_and_never_the_secret() {
        let cases: Vec<Vec<u8>> = vec![
            format!(
                r#"{{"auths":{{"docker.io":{{"auth":"{}"}}}}}}"#,
                b64(SECRET)
            )
            .into_bytes(), // no colon
            format!(r#"{{"username":"bob","password":"{SECRET}""#).into_bytes(), // truncated JSON
            format!(r#"{{"auths":{{"docker.io":{{"auth":"!{SECRET}!"}}}}}}"#).into_bytes(), // not base64
            format!(r#"{{"auths":"{SECRET}"}}"#).into_bytes(),
            br#"{"auths":{}}"#.to_vec(),
            br#"[1,2]"#.to_vec(),
            vec![b' '; MAX_BYTES + 1],
        ];
        for bytes in cases {
            let err = RegistryAuth::parse(&bytes, "s3://creds/hub.json")
                .unwrap_err()
                .to_string();
            assert!(err.contains("s3://creds/hub.json"), "{err}");
            assert!(!err.contains(SECRET), "{err}");
        }
    }

    #[test]
    fn debug_output_is_redacted() {
        let a = RegistryAuth::parse(
            format!(r#"{{"username":"bob","password":"{SECRET}"}}"#).as_bytes(),
            "x",
        )
        .unwrap();
        assert!(!format!("{a:?}").contains(SECRET));
        assert!(!format!("{:?}", a.render_dockercfg()).contains("Ym9i"));
    }
}
