//! What the config phase reaches outside ecs-boot, as small traits: the instance metadata
//! (identity and tags), the clients for the instance's region, and through them an S3 object or
//! SSM parameter. The real ones are `Imds`, `ConnectAws` and `Aws`; the phase's tests use an
//! in-memory instance (fake.rs).

use crate::sources::aws::{Aws, FetchError, Fetched};
use crate::sources::imds::{Identity, Imds, ImdsFailure};
use crate::sources::location::Location;
use std::collections::BTreeMap;

/// Instance metadata, as the config phase reads it.
#[allow(async_fn_in_trait)]
pub trait InstanceMetadata {
    /// The instance identity document.
    async fn identity(&self) -> Result<Identity, ImdsFailure>;
    /// All instance tags; `Ok(None)` when tags in instance metadata are not enabled.
    async fn tags(&self) -> Result<Option<BTreeMap<String, String>>, ImdsFailure>;
}

/// Reads what a `Location` names: an S3 object or an SSM parameter (decrypted).
#[allow(async_fn_in_trait)]
pub trait Fetch {
    /// Refuses anything over `max_bytes`; `Fetched::secure` says whether SSM stored it encrypted.
    async fn fetch(&self, location: &Location, max_bytes: usize) -> Result<Fetched, FetchError>;
}

/// Makes the clients for a region. A factory because the region is known only once the
/// identity document has been read; the clients outlive the config phase (`Prepared::aws`).
#[allow(async_fn_in_trait)]
pub trait Connect {
    type Clients: Fetch + Clone;
    async fn connect(&self, region: &str) -> Self::Clients;
}

impl InstanceMetadata for Imds {
    async fn identity(&self) -> Result<Identity, ImdsFailure> {
        Imds::identity(self).await
    }

    async fn tags(&self) -> Result<Option<BTreeMap<String, String>>, ImdsFailure> {
        Imds::tags(self).await
    }
}

impl Fetch for Aws {
    async fn fetch(&self, location: &Location, max_bytes: usize) -> Result<Fetched, FetchError> {
        Aws::fetch(self, location, max_bytes).await
    }
}

/// The AWS SDK clients, with the SDK's endpoint and credential resolution.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectAws;

impl Connect for ConnectAws {
    type Clients = Aws;

    async fn connect(&self, region: &str) -> Aws {
        Aws::load(region).await
    }
}
