//! `ecs-boot docker-proxy`: the trusted config's `[proxy]` for the Docker engine. Run by
//! ecs-boot-docker-proxy.service before docker.service (after cloud-init has written config.d);
//! docker.service reads the file through the RPM's drop-in (`EnvironmentFile=-`), so a proxy
//! applies from the engine's first start, with no daemon-reload and no restart.

use crate::config::Config;
use crate::error::Result;
use crate::util::paths::Paths;

/// Where docker.service's drop-in reads the proxy variables.
pub const ENV_FILE: &str = "/run/ecs-boot/docker-proxy.env";

/// The environment file's text; `None` when no proxy is configured.
pub fn render(config: &Config) -> Option<String> {
    let vars = config.proxy.vars();
    if vars.is_empty() {
        return None;
    }
    let mut out =
        String::from("# Written by ecs-boot docker-proxy from [proxy] in the trusted config.\n");
    for (name, value) in vars {
        // Validated at load: one line, no spaces or quotes, so systemd reads it verbatim.
        out.push_str(&format!("{name}={value}\n"));
    }
    Some(out)
}

/// Writes (or removes) the file; exit 0 either way, 1 if the config is broken.
pub fn run(config: &Config, paths: &Paths) -> Result<i32> {
    let path = paths.host(ENV_FILE);
    match render(config) {
        Some(text) => {
            crate::util::atomic_file::write_atomic(&path, text.as_bytes())?;
            println!("{}: proxy for docker.service written", path.display());
        }
        None => {
            let _ = std::fs::remove_file(&path);
            println!("no [proxy] configured: docker.service runs without one");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_proxy_with_local_endpoints_direct() {
        let c = Config::parse(
            "[proxy]\nhttps_proxy = \"http://proxy.internal:3128\"\nno_proxy = [\".internal\"]\n",
            "t",
        )
        .unwrap();
        let text = render(&c).unwrap();
        assert!(
            text.contains("HTTPS_PROXY=http://proxy.internal:3128\n"),
            "{text}"
        );
        let no_proxy = text.lines().find(|l| l.starts_with("NO_PROXY=")).unwrap();
        for local in [
            "169.254.169.254",
            "169.254.170.2",
            "/var/run/docker.sock",
            ".internal",
        ] {
            assert!(no_proxy.contains(local), "{no_proxy}");
        }
        assert_eq!(render(&Config::default()), None);
    }
}
