//! Outbound proxies: the AWS SDK honours `HTTPS_PROXY`/`NO_PROXY` (behavior version ≥ 2025-08-07),
//! but instance-local endpoints must never go through a proxy: IMDS would answer the proxy, not
//! this instance, and the ECS agent and task credential endpoints are link-local.

/// Always direct, whatever NO_PROXY says.
const LOCAL: &[&str] = &[
    "169.254.169.254",
    "169.254.170.2",
    "fd00:ec2::254",
    "localhost",
    "127.0.0.1",
    "::1",
];

/// `existing` NO_PROXY with the local endpoints (and `extra` hosts) added, without duplicates.
pub fn merged_no_proxy(existing: Option<&str>, extra: &[String]) -> String {
    let mut hosts: Vec<String> = existing
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    for h in LOCAL
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().cloned())
    {
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    hosts.join(",")
}

/// The host of the IMDS endpoint override, if any (tests point it at loopback; it must stay direct).
fn imds_override_host() -> Option<String> {
    let url = std::env::var("AWS_EC2_METADATA_SERVICE_ENDPOINT").ok()?;
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(&url);
    let host = rest.split(['/', '?']).next()?;
    let host = if host.starts_with('[') {
        host.split(']').next()?.trim_start_matches('[')
    } else {
        host.split(':').next()?
    };
    Some(host.to_string())
}

/// Checks a proxy URL from the trusted config: `http://host:port` (or https), one line.
pub fn check_proxy_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("must start with http:// or https://")?;
    if rest.is_empty()
        || url.len() > 2048
        || url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == ',')
    {
        return Err("must be one URL such as http://proxy.internal:3128".into());
    }
    Ok(())
}

/// Whether a proxy URL carries credentials (`http://user:password@host:port`).
pub fn has_userinfo(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/')
        .next()
        .is_some_and(|authority| authority.contains('@'))
}

/// Checks one NO_PROXY entry: a host, domain, address or CIDR, without separators.
pub fn check_no_proxy_host(host: &str) -> Result<(), String> {
    if host.is_empty()
        || host.len() > 253
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:/[]*".contains(c))
    {
        return Err(format!(
            "{:?} is not a host, domain, address or CIDR",
            host.chars().take(64).collect::<String>()
        ));
    }
    Ok(())
}

/// The proxy variables for the ECS agent (ecs.config) and Docker: the local endpoints always
/// bypass the proxy — IMDS, the task metadata and credentials endpoint, the Docker socket.
pub fn agent_proxy_vars(
    http_proxy: Option<&str>,
    https_proxy: Option<&str>,
    no_proxy: &[String],
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(p) = http_proxy {
        out.push(("HTTP_PROXY", p.to_string()));
    }
    if let Some(p) = https_proxy {
        out.push(("HTTPS_PROXY", p.to_string()));
    }
    if !out.is_empty() {
        let mut extra = no_proxy.to_vec();
        extra.push("/var/run/docker.sock".into());
        out.push(("NO_PROXY", merged_no_proxy(None, &extra)));
    }
    out
}

/// Makes local endpoints bypass any configured proxy. Call before any thread starts: it edits the
/// process environment.
pub fn keep_local_endpoints_direct() {
    let proxied = [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .any(|k| std::env::var_os(k).is_some());
    if !proxied {
        return;
    }
    let extra: Vec<String> = imds_override_host().into_iter().collect();
    for key in ["NO_PROXY", "no_proxy"] {
        let value = merged_no_proxy(std::env::var(key).ok().as_deref(), &extra);
        // SAFETY: called from `main` before the async runtime or any other thread exists.
        unsafe { std::env::set_var(key, value) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_credentials_are_recognised() {
        assert!(has_userinfo("http://u:p@proxy:3128"));
        assert!(!has_userinfo("http://proxy:3128/a@b"));
    }

    #[test]
    fn local_endpoints_are_added_once() {
        let v = merged_no_proxy(Some("example.com, 169.254.169.254"), &["10.0.0.5".into()]);
        assert_eq!(
            v,
            "example.com,169.254.169.254,169.254.170.2,fd00:ec2::254,localhost,127.0.0.1,::1,10.0.0.5"
        );
        assert!(merged_no_proxy(None, &[]).starts_with("169.254.169.254,"));
    }
}
