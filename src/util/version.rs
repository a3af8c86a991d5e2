//! The version and git commit (stamped by build.rs), for `--version`, status and AMI tags.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("ECS_BOOT_GIT_COMMIT");
/// `0.1.0 (abc1234def56)`.
pub const LONG: &str = env!("ECS_BOOT_VERSION_LONG");
