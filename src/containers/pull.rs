//! Images: the pull policy, the credentials for the image's registry (the boot path's registry
//! auth for Docker Hub and private registries, an ECR token for ECR), and bounded, jittered
//! retries. Reference parsing and the choice of credentials are pure and tested.

use crate::config::{ContainerSpec, PullPolicy};
use crate::sources::aws::Aws;
use crate::sources::registry_auth::RegistryAuth;
use crate::util::retry::Backoff;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;
use std::time::Duration;

use super::engine::{is_not_found, one_line};

/// Attempts per pull: a registry blip is retried, a dead registry fails the container in
/// seconds, not minutes.
pub const PULL_ATTEMPTS: u32 = 4;
const PULL_BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(4));

/// An image reference split the way the engine's pull API wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The repository, with its registry host if it has one (`public.ecr.aws/x/y`, `busybox`).
    pub name: String,
    /// The tag (`latest` when none is given: an empty tag would pull every tag) or the digest.
    pub reference: String,
    /// The registry host (`docker.io` for Docker Hub names).
    pub host: String,
}

impl ImageRef {
    pub fn parse(image: &str) -> ImageRef {
        let (name, reference) = match image.split_once('@') {
            Some((name, digest)) => (name.to_string(), digest.to_string()),
            None => {
                let last_slash = image.rfind('/').map_or(0, |i| i + 1);
                match image[last_slash..].rfind(':') {
                    Some(i) => (
                        image[..last_slash + i].to_string(),
                        image[last_slash + i + 1..].to_string(),
                    ),
                    None => (image.to_string(), "latest".to_string()),
                }
            }
        };
        // Docker's rule: the first component is a registry if it looks like a host.
        let host = match name.split_once('/') {
            Some((first, _))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                first.to_string()
            }
            _ => "docker.io".to_string(),
        };
        ImageRef {
            name,
            reference,
            host,
        }
    }

    pub fn is_digest(&self) -> bool {
        self.reference.contains(':')
    }

    /// `name:tag` or `name@digest`: what the container is created from.
    pub fn full(&self) -> String {
        if self.is_digest() {
            format!("{}@{}", self.name, self.reference)
        } else {
            format!("{}:{}", self.name, self.reference)
        }
    }
}

/// The region of a private ECR registry host
/// (`<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`), None for any other host.
pub fn ecr_region(host: &str) -> Option<String> {
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let mut parts = rest.split('.');
    let account = parts.next()?;
    let (dkr, ecr, region) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && dkr == "dkr"
        && (ecr == "ecr" || ecr == "ecr-fips")
        && !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && parts.next().is_none();
    valid.then(|| region.to_string())
}

/// Where a pull's credentials come from.
#[derive(Debug, PartialEq, Eq)]
pub enum CredentialSource<'a> {
    /// Anonymous (public registries, public.ecr.aws, registries without a login).
    None,
    /// A login from the registry credentials the boot path fetched.
    Login {
        server: &'a str,
        login: &'a crate::sources::registry_auth::Login,
    },
    /// An ECR authorization token for this region (the instance role's ecr:GetAuthorizationToken).
    Ecr { region: String },
}

pub fn credential_source<'a>(host: &str, auth: Option<&'a RegistryAuth>) -> CredentialSource<'a> {
    if let Some(region) = ecr_region(host) {
        return CredentialSource::Ecr { region };
    }
    let Some(auth) = auth else {
        return CredentialSource::None;
    };
    let Ok(key) = crate::sources::registry_auth::normalize_registry(host) else {
        return CredentialSource::None;
    };
    match auth.logins.get_key_value(&key) {
        Some((server, login)) => CredentialSource::Login { server, login },
        None => CredentialSource::None,
    }
}

/// The image a container runs, as status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    /// The registry digest (`name@sha256:...`) when the image came from a registry, else its id.
    pub digest: String,
}

/// The image ready on the engine, with a warning when a pull failed but a local copy is used.
#[derive(Debug)]
pub struct Ready {
    pub image: Image,
    pub warning: Option<String>,
}

/// Makes the spec's image present according to its pull policy.
pub async fn ensure(
    docker: &Docker,
    spec: &ContainerSpec,
    auth: Option<&RegistryAuth>,
    aws: &Aws,
) -> Result<Ready, String> {
    let image = ImageRef::parse(&spec.image);
    let local = local_image(docker, &image).await?;
    let must_pull = match (spec.pull, &local) {
        (PullPolicy::Never, None) => {
            return Err(format!(
                "image {} is not on this instance and its pull policy is `never` (bake it into the AMI, or use pull = \"if-not-present\")",
                spec.image
            ));
        }
        (PullPolicy::Never, Some(_)) | (PullPolicy::IfNotPresent, Some(_)) => false,
        (PullPolicy::IfNotPresent, None) | (PullPolicy::Always, _) => true,
    };
    if !must_pull {
        let image = local.expect("checked above");
        return Ok(Ready {
            image,
            warning: None,
        });
    }
    match pull(docker, &image, auth, aws).await {
        Ok(()) => match local_image(docker, &image).await? {
            Some(image) => Ok(Ready {
                image,
                warning: None,
            }),
            None => Err(format!(
                "image {} was pulled but the engine does not list it",
                spec.image
            )),
        },
        // `always` with a local copy: run what we have rather than fail the node on a registry
        // outage; the warning reaches status.
        Err(e) => match local {
            Some(image) => Ok(Ready {
                image,
                warning: Some(format!("{e}; running the local copy")),
            }),
            None => Err(e),
        },
    }
}

async fn local_image(docker: &Docker, image: &ImageRef) -> Result<Option<Image>, String> {
    match docker.inspect_image(&image.full()).await {
        Ok(info) => Ok(Some(Image {
            id: info.id.clone().unwrap_or_default(),
            digest: digest_of(&info, &image.name),
        })),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(format!(
            "inspecting image {}: {}",
            image.full(),
            one_line(&e)
        )),
    }
}

/// The registry digest of an image for `name`, else its id (images built or imported locally
/// have no registry digest).
fn digest_of(info: &bollard::models::ImageInspect, name: &str) -> String {
    let id = info.id.clone().unwrap_or_default();
    info.repo_digests
        .iter()
        .flatten()
        .find(|d| d.starts_with(&format!("{name}@")))
        .or_else(|| info.repo_digests.iter().flatten().next())
        .cloned()
        .unwrap_or(id)
}

/// The digest of the image a container runs (`image_id`), for status.
pub async fn describe_image(docker: &Docker, image_id: &str, configured: &str) -> String {
    match docker.inspect_image(image_id).await {
        Ok(info) => digest_of(&info, &ImageRef::parse(configured).name),
        Err(_) => image_id.to_string(),
    }
}

/// Errors a retry cannot fix: the image or tag does not exist, or the registry refused us.
fn is_permanent(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "manifest unknown",
        "not found",
        "unauthorized",
        "denied",
        "invalid reference format",
        "no basic auth credentials",
    ]
    .iter()
    .any(|p| m.contains(p))
}

async fn pull(
    docker: &Docker,
    image: &ImageRef,
    auth: Option<&RegistryAuth>,
    aws: &Aws,
) -> Result<(), String> {
    let credentials = credentials(image, auth, aws).await?;
    let mut backoff = Backoff::new(PULL_BACKOFF.0, PULL_BACKOFF.1);
    let mut attempt = 1;
    loop {
        let options = CreateImageOptions {
            from_image: Some(image.name.clone()),
            tag: Some(image.reference.clone()),
            ..Default::default()
        };
        let mut stream = docker.create_image(Some(options), None, credentials.clone());
        let mut failure = None;
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                failure = Some(one_line(&e));
                break;
            }
        }
        let Some(problem) = failure else {
            tracing::info!(image = %image.full(), attempt, "image pulled");
            return Ok(());
        };
        if attempt >= PULL_ATTEMPTS || is_permanent(&problem) {
            return Err(format!(
                "pulling {} failed after {attempt} attempt{}: {problem}",
                image.full(),
                if attempt == 1 { "" } else { "s" }
            ));
        }
        let delay = backoff.next_delay();
        tracing::warn!(image = %image.full(), attempt, error = %problem, retry_in_ms = delay.as_millis() as u64, "pull failed; retrying");
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

async fn credentials(
    image: &ImageRef,
    auth: Option<&RegistryAuth>,
    aws: &Aws,
) -> Result<Option<DockerCredentials>, String> {
    match credential_source(&image.host, auth) {
        CredentialSource::None => Ok(None),
        CredentialSource::Login { server, login } => Ok(Some(DockerCredentials {
            username: Some(login.username.clone()),
            password: Some(login.password.expose().to_string()),
            serveraddress: Some(server.to_string()),
            ..Default::default()
        })),
        CredentialSource::Ecr { region } => ecr_token(aws, &image.host, &region)
            .await
            .map(Some)
            .map_err(|e| format!("ECR token for {}: {e}", image.host)),
    }
}

/// GetAuthorizationToken in the registry's region (it may differ from the instance's).
async fn ecr_token(aws: &Aws, host: &str, region: &str) -> Result<DockerCredentials, String> {
    let base = aws.ecr();
    let conf = base
        .config()
        .to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build();
    let out = aws_sdk_ecr::Client::from_conf(conf)
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| crate::sources::aws::describe(&e))?;
    let token = out
        .authorization_data()
        .first()
        .and_then(|d| d.authorization_token())
        .ok_or("no authorization data in the answer")?;
    let decoded = B64
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or("the token is not base64 text")?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or("the token is not user:password")?;
    Ok(DockerCredentials {
        username: Some(username.to_string()),
        password: Some(password.to_string()),
        serveraddress: Some(host.to_string()),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_like_docker() {
        let r = ImageRef::parse("busybox");
        assert_eq!(
            (r.name.as_str(), r.reference.as_str(), r.host.as_str()),
            ("busybox", "latest", "docker.io")
        );
        let r = ImageRef::parse("127.0.0.1:1/img");
        assert_eq!(
            (r.name.as_str(), r.reference.as_str(), r.host.as_str()),
            ("127.0.0.1:1/img", "latest", "127.0.0.1:1")
        );
        let r = ImageRef::parse("public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.3");
        assert_eq!(r.name, "public.ecr.aws/cloudwatch-agent/cloudwatch-agent");
        assert_eq!(r.reference, "1.3");
        assert_eq!(r.host, "public.ecr.aws");
        assert_eq!(
            r.full(),
            "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.3"
        );
        let r = ImageRef::parse("localhost:5000/a/b@sha256:abc");
        assert_eq!(r.name, "localhost:5000/a/b");
        assert!(r.is_digest());
        assert_eq!(r.full(), "localhost:5000/a/b@sha256:abc");
        assert_eq!(ImageRef::parse("grafana/agent:v1").host, "docker.io");
    }

    #[test]
    fn ecr_hosts() {
        assert_eq!(
            ecr_region("123456789012.dkr.ecr.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            ecr_region("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com").as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            ecr_region("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(ecr_region("public.ecr.aws"), None);
        assert_eq!(ecr_region("12345.dkr.ecr.us-east-1.amazonaws.com"), None);
        assert_eq!(ecr_region("registry.example.com"), None);
    }

    #[test]
    fn credentials_follow_the_registry() {
        let auth = RegistryAuth::parse(
            br#"{"auths":{"docker.io":{"auth":"Ym9iOnB3"},"registry.example.com":{"auth":"YW5uOnB3"}}}"#,
            "t",
        )
        .unwrap();
        match credential_source("docker.io", Some(&auth)) {
            CredentialSource::Login { server, login } => {
                assert_eq!(server, crate::sources::registry_auth::DOCKER_HUB_KEY);
                assert_eq!(login.username, "bob");
            }
            other => panic!("{other:?}"),
        }
        match credential_source("registry.example.com", Some(&auth)) {
            CredentialSource::Login { login, .. } => assert_eq!(login.username, "ann"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            credential_source("public.ecr.aws", Some(&auth)),
            CredentialSource::None
        );
        assert_eq!(credential_source("docker.io", None), CredentialSource::None);
        assert_eq!(
            credential_source("123456789012.dkr.ecr.eu-west-1.amazonaws.com", None),
            CredentialSource::Ecr {
                region: "eu-west-1".into()
            }
        );
    }

    #[test]
    fn permanent_pull_errors_are_not_retried() {
        assert!(is_permanent(
            "manifest for x:1 not found: manifest unknown: manifest unknown"
        ));
        assert!(is_permanent(
            "pull access denied for x, repository does not exist"
        ));
        assert!(!is_permanent(
            "Get \"https://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused"
        ));
    }
}
