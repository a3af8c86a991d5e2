//! An in-memory instance for the config phase: its identity document (or an IMDS failure), a
//! script of tag answers, the S3 objects and SSM parameters locations may name, and a log of
//! every call (IMDS reads, connects, fetches with their size cap), answered as the real services
//! answer.

use super::ports::{Connect, Fetch, InstanceMetadata};
use crate::sources::aws::{FetchError, Fetched};
use crate::sources::imds::{Identity, ImdsFailure};
use crate::sources::location::Location;
use crate::util::call_log::CallLog;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

pub const INSTANCE_ID: &str = "i-0123456789abcdef0";
pub const REGION: &str = "eu-west-1";
pub const ACCOUNT_ID: &str = "123456789012";

/// One answer to the tag list.
#[derive(Debug, Clone)]
pub enum TagsAnswer {
    Tags(BTreeMap<String, String>),
    /// 404 on the list: tags in instance metadata are not enabled.
    Disabled,
    /// IMDS answers with an error (HTTP 500).
    Fails,
    /// IMDS never answers.
    Hangs,
}

/// An S3 object or SSM parameter; `secure`: an SSM SecureString.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub secure: bool,
}

pub struct Instance {
    /// `None`: the identity document cannot be read.
    pub identity: Option<Identity>,
    /// The next answers to the tag list; the last one is repeated once the others are spent.
    pub tags: VecDeque<TagsAnswer>,
    /// By location (`s3://bucket/key`, `ssm:/name`).
    pub objects: BTreeMap<String, Object>,
    /// No instance role: every fetch fails before it is sent, for want of credentials.
    pub no_role: bool,
    pub calls: CallLog,
}

#[derive(Clone)]
pub struct FakeInstance {
    pub inner: Arc<Mutex<Instance>>,
}

impl FakeInstance {
    /// An instance whose tag list answers `tags`.
    pub fn with_tags(tags: &[(&str, &str)]) -> FakeInstance {
        FakeInstance {
            inner: Arc::new(Mutex::new(Instance {
                identity: Some(Identity {
                    instance_id: INSTANCE_ID.into(),
                    region: REGION.into(),
                    account_id: ACCOUNT_ID.into(),
                    availability_zone: format!("{REGION}a"),
                    instance_type: "m7g.large".into(),
                }),
                tags: VecDeque::from([TagsAnswer::Tags(tag_map(tags))]),
                objects: BTreeMap::new(),
                no_role: false,
                calls: CallLog::default(),
            })),
        }
    }

    /// The tag list answers these, in order (the last one from then on).
    pub fn tag_answers(self, answers: &[TagsAnswer]) -> FakeInstance {
        self.inner.lock().unwrap().tags = answers.iter().cloned().collect();
        self
    }

    pub fn without_identity(self) -> FakeInstance {
        self.inner.lock().unwrap().identity = None;
        self
    }

    pub fn without_role(self) -> FakeInstance {
        self.inner.lock().unwrap().no_role = true;
        self
    }

    pub fn object(self, location: &str, bytes: &[u8], secure: bool) -> FakeInstance {
        self.inner.lock().unwrap().objects.insert(
            location.into(),
            Object {
                bytes: bytes.to_vec(),
                secure,
            },
        );
        self
    }

    pub fn calls(&self) -> Vec<String> {
        self.inner.lock().unwrap().calls.all()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.inner.lock().unwrap().calls.count(prefix)
    }
}

pub fn tag_map(tags: &[(&str, &str)]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl InstanceMetadata for FakeInstance {
    async fn identity(&self) -> Result<Identity, ImdsFailure> {
        let mut i = self.inner.lock().unwrap();
        i.calls.push("IMDS identity");
        i.identity.clone().ok_or_else(|| ImdsFailure {
            path: "/latest/dynamic/instance-identity/document".into(),
            message: "HTTP 500".into(),
            status: Some(500),
        })
    }

    async fn tags(&self) -> Result<Option<BTreeMap<String, String>>, ImdsFailure> {
        let answer = {
            let mut i = self.inner.lock().unwrap();
            i.calls.push("IMDS tags");
            let next = if i.tags.len() > 1 {
                i.tags.pop_front()
            } else {
                i.tags.front().cloned()
            };
            next.unwrap_or(TagsAnswer::Disabled)
        };
        match answer {
            TagsAnswer::Tags(t) => Ok(Some(t)),
            TagsAnswer::Disabled => Ok(None),
            TagsAnswer::Fails => Err(ImdsFailure {
                path: "/latest/meta-data/tags/instance".into(),
                message: "HTTP 500".into(),
                status: Some(500),
            }),
            TagsAnswer::Hangs => std::future::pending().await,
        }
    }
}

impl Connect for FakeInstance {
    type Clients = FakeInstance;

    async fn connect(&self, region: &str) -> FakeInstance {
        self.inner
            .lock()
            .unwrap()
            .calls
            .push(format!("connect {region}"));
        self.clone()
    }
}

impl Fetch for FakeInstance {
    async fn fetch(&self, location: &Location, max_bytes: usize) -> Result<Fetched, FetchError> {
        let mut i = self.inner.lock().unwrap();
        let name = location.to_string();
        i.calls.push(format!("fetch {name} max {max_bytes}"));
        let fail = |problem: String| FetchError {
            location: name.clone(),
            problem,
            no_credentials: false,
        };
        if i.no_role {
            return Err(FetchError {
                no_credentials: true,
                ..fail("no AWS credentials".into())
            });
        }
        let object = i.objects.get(&name).ok_or_else(|| match location {
            Location::S3 { .. } => fail("NoSuchKey: The specified key does not exist.".into()),
            Location::Ssm { .. } => fail("ParameterNotFound".into()),
        })?;
        // As the real clients do: the cap holds whatever the object's size.
        if object.bytes.len() > max_bytes {
            return Err(fail(format!(
                "{} bytes, over the {max_bytes}-byte limit",
                object.bytes.len()
            )));
        }
        Ok(Fetched {
            bytes: object.bytes.clone(),
            secure: object.secure,
        })
    }
}
