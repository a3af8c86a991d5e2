//! Boot, hook and drain metrics that ecs-boot publishes itself (CloudWatch PutMetricData), since
//! the piece that failed may be the CloudWatch agent; and the CloudWatch agent's own
//! configuration (host logs, disk and memory) rendered from the trusted config.
//!
//! - `catalog`: which data points each moment of the life produces, computed from the state
//!   (pure, tested here); the metric names are the Terraform module's alarms' names.
//! - `query`: PutMetricData as a Query-protocol form (pure, golden-tested).
//! - `cloudwatch`: the signed HTTP call, through the SDK's own HTTP client and credentials.
//! - `publish`: the bounded publication the lifecycle calls: never longer than `[metrics]
//!   timeout`, never fatal, its outcome kept in the state for `status`.
//! - `agent_config`: the CloudWatch agent's JSON (`ecs-boot cloudwatch-agent`).
//!
//! Hand-rolled rather than aws-sdk-cloudwatch: one operation of a Query API over the signing and
//! HTTP crates the other SDK clients already pull in, so the binary grows by this module only.

pub mod agent_config;
pub mod catalog;
pub mod cloudwatch;
pub mod publish;
pub mod query;

use std::future::Future;
use std::pin::Pin;

pub use catalog::Dimensions;
pub use publish::{Moment, Publisher};

/// CloudWatch units ecs-boot uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Count,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Seconds => "Seconds",
            Unit::Count => "Count",
        }
    }
}

/// One data point: a metric name, its dimensions (name, value) in order, a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub name: &'static str,
    pub dimensions: Vec<(&'static str, String)>,
    pub value: f64,
    pub unit: Unit,
}

/// Where data points go: CloudWatch (`cloudwatch::CloudWatch`), or a fake in tests.
pub trait Sink: Send + Sync {
    /// Puts `data` into `namespace`; the error is one line naming what failed.
    fn put<'a>(
        &'a self,
        namespace: &'a str,
        data: &'a [Datum],
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}
