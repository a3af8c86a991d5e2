//! Stamps the git commit into the binary (`ecs-boot --version`, status JSON, AMI tags).
use std::process::Command;

fn main() {
    let commit = std::env::var("ECS_BOOT_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        });
    let commit = commit.unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=ECS_BOOT_GIT_COMMIT={commit}");
    println!(
        "cargo:rustc-env=ECS_BOOT_VERSION_LONG={} ({commit})",
        std::env::var("CARGO_PKG_VERSION").unwrap()
    );
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-env-changed=ECS_BOOT_GIT_COMMIT");
}
