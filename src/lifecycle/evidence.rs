//! The flight recorder's hooks into the life (src/evidence): before an ABANDON and when a drain
//! hit its deadline. Each is one call from run/ and never fails the action it precedes.

use crate::evidence::{Recording, Trigger};
use crate::lifecycle::run::Agent;
use crate::sources::aws::Aws;
use crate::sources::imds::Identity;
use crate::status::state::DrainState;

impl Agent {
    /// Records the evidence (if `[recorder]` is set) and shows where it went in the state.
    /// `[recorder]` is trusted-only, so the trusted config is used, with the identity's values.
    pub(crate) async fn record_evidence(&self, trigger: Trigger, aws: &Aws, identity: &Identity) {
        if self.config.recorder.location.is_none() {
            return;
        }
        let config = match self.config.with_identity(identity) {
            Ok(c) => c,
            Err(e) => {
                self.store
                    .warn(format!("evidence not recorded: the trusted config: {e}"));
                return;
            }
        };
        let recording = Recording {
            config: &config,
            paths: &self.paths,
            aws,
            instance_id: &identity.instance_id,
            container_scope: &self.container_scope,
        };
        if let Some(record) = recording.record(trigger).await {
            self.store.update(|s| s.evidence = Some(record));
        }
    }

    /// After a drain: a drain that ran out of time leaves its evidence.
    pub(crate) async fn record_if_drain_deadline(&self, aws: &Aws, identity: &Identity) {
        let hit = self
            .store
            .snapshot()
            .drain
            .is_some_and(|d| d.state == DrainState::Deadline);
        if hit {
            self.record_evidence(Trigger::DrainDeadline, aws, identity)
                .await;
        }
    }
}
