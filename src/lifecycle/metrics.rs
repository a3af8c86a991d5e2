//! The metrics' hooks into the life (src/metrics): after the launch hook's CONTINUE, before its
//! ABANDON, after a drain (before the terminate hook). Each is one call and never fails or holds
//! up the action beside it for longer than `[metrics] timeout`.

use crate::lifecycle::run::Agent;
use crate::metrics::cloudwatch::CloudWatch;
use crate::metrics::{Dimensions, Moment, Publisher};
use crate::sources::aws::Aws;

impl Agent {
    /// Publishes `moment`'s metrics; `asg` and `cluster` stand in for what the state does not
    /// know yet. `[metrics]` is trusted-only, so the trusted config decides.
    pub(crate) async fn publish_metrics(
        &self,
        moment: Moment,
        aws: &Aws,
        asg: Option<&str>,
        cluster: Option<&str>,
    ) {
        if !self.config.metrics.enabled {
            return;
        }
        let state = self.store.snapshot();
        let cluster = cluster.or(self.config.ecs.cluster.as_deref());
        let dims = Dimensions::from_state(&state, asg, cluster);
        let sink = CloudWatch::new(aws);
        let publisher = Publisher {
            sink: &sink,
            config: &self.config.metrics,
        };
        if let Some(record) = publisher.publish(moment, &state, &dims).await {
            self.store.update(|s| s.metrics = Some(record));
        }
    }
}
