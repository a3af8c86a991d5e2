//! System containers on the local Docker engine (being written: see issue 3).

use crate::aws::Aws;
use crate::config::Config;
use crate::error::Result;
use crate::registry_auth::RegistryAuth;
use crate::state::ContainerRecord;

/// Brings the engine's containers labelled as ours to the configured state. `Err` only when an
/// essential container cannot run; non-essential failures are in the records.
pub async fn reconcile(
    config: &Config,
    _auth: Option<&RegistryAuth>,
    _aws: &Aws,
) -> Result<Vec<ContainerRecord>> {
    let _ = config;
    Ok(Vec::new())
}

/// Stops our containers gracefully (end of a drain, so their last logs flush).
pub async fn stop_all(_config: &Config) -> Result<()> {
    Ok(())
}
