//! `ecs-boot status --upload`: an operator records the evidence now, from another process than
//! the daemon (which may be dead). The identity comes from IMDS, else the state file.

use crate::config::Config;
use crate::evidence::{Recording, Trigger};
use crate::sources::aws::Aws;
use crate::sources::imds::{Identity, Imds};
use crate::status::state::State;
use crate::util::paths::Paths;

/// Records and says where to on stderr (stdout stays the status document). False when nothing or
/// not everything went up.
pub async fn now(config: &Config, paths: &Paths) -> bool {
    if config.recorder.location.is_none() {
        eprintln!(
            "ecs-boot: --upload: no [recorder] location in the trusted config ({})",
            config.origin
        );
        return false;
    }
    let identity = match identity(config, paths).await {
        Ok(i) => i,
        Err(e) => {
            eprintln!("ecs-boot: --upload: {e}");
            return false;
        }
    };
    let config = match config.with_identity(&identity) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ecs-boot: --upload: {e}");
            return false;
        }
    };
    let aws = Aws::load(&identity.region).await;
    let scope = crate::containers::Scope::new(paths, crate::containers::DEFAULT_SCOPE);
    let recording = Recording {
        config: &config,
        paths,
        aws: &aws,
        instance_id: &identity.instance_id,
        container_scope: &scope,
    };
    match recording.record(Trigger::Operator).await {
        Some(r) if r.error.is_none() => {
            eprintln!(
                "ecs-boot: evidence uploaded to {} ({} files, {} bytes)",
                r.location, r.files, r.bytes
            );
            true
        }
        Some(r) => {
            eprintln!(
                "ecs-boot: evidence incomplete at {}: {}",
                r.location,
                r.error.unwrap_or_default()
            );
            false
        }
        None => false,
    }
}

/// IMDS's identity document (it has the account id `${account_id}` needs); the state file's
/// record when IMDS does not answer.
async fn identity(config: &Config, paths: &Paths) -> Result<Identity, String> {
    let imds_err = match Imds::new(config.imds.timeout).identity().await {
        Ok(i) => return Ok(i),
        Err(e) => e,
    };
    let i = State::read(&paths.state_file())
        .ok()
        .and_then(|s| s.instance)
        .ok_or_else(|| format!("the instance identity: {imds_err}, and no state file names it"))?;
    Ok(Identity {
        instance_id: i.instance_id,
        region: i.region,
        account_id: String::new(),
        availability_zone: i.availability_zone,
        instance_type: i.instance_type,
    })
}
