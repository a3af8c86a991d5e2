//! Undoing a rollout: the refresh rolled back, the AMI parameter and the default version restored,
//! and, once the rollback succeeded, a copy of the previous version made the template's latest,
//! its default and the group's (the module's group follows the template's `latest_version`).

use super::cloud::Cloud;
use super::engine::{Run, log};
use super::report::{Outcome, Report};

impl<C: Cloud> Run<'_, C> {
    /// Restores the parameter and the default version (nothing was started yet, or the start failed).
    pub(super) async fn undo(mut self, parameter: &str, why: String) -> Report {
        self.restore(parameter).await;
        self.end(Outcome::NeedsAttention, Some(why))
    }

    pub(super) async fn restore(&mut self, parameter: &str) {
        if !self.previous_parameter.is_empty() {
            match self
                .cloud
                .put_parameter(parameter, &self.previous_parameter)
                .await
            {
                Ok(()) => self.report.restored.push(format!(
                    "parameter {parameter} = {}",
                    self.previous_parameter
                )),
                Err(e) => log(format!("cannot restore {parameter}: {e}")),
            }
        }
        if self.previous_default != 0 {
            match self
                .cloud
                .set_default_version(&self.template_id, self.previous_default)
                .await
            {
                Ok(()) => self
                    .report
                    .restored
                    .push(format!("default version {}", self.previous_default)),
                Err(e) => log(format!("cannot restore the default version: {e}")),
            }
        }
    }

    pub(super) async fn roll_back(
        mut self,
        refresh_id: &str,
        parameter: &str,
        why: String,
    ) -> Report {
        let current = self.refresh(refresh_id).await;
        match current {
            Ok(r) if r.can_roll_back() => {
                log(format!("rolling back instance refresh {refresh_id}"));
                if let Err(e) = self.cloud.rollback_refresh(&self.s.group).await {
                    self.restore(parameter).await;
                    return self.end(Outcome::NeedsAttention, Some(format!("{why}; {e}")));
                }
            }
            Ok(r) => log(format!("instance refresh {refresh_id} is {}", r.status)),
            Err(e) => log(e),
        }
        self.restore(parameter).await;
        let ended = self
            .wait_refresh(refresh_id, self.s.rollback_timeout, |r| !r.is_active())
            .await;
        match ended {
            Ok(r) if r.status == "RollbackSuccessful" => {}
            Ok(r) => {
                return self.end(
                    Outcome::NeedsAttention,
                    Some(format!(
                        "{why}; the rollback ended {}: {}",
                        r.status,
                        r.reason.unwrap_or_default()
                    )),
                );
            }
            Err(e) => return self.end(Outcome::NeedsAttention, Some(format!("{why}; {e}"))),
        }
        // The template's latest version is the failed one; make the previous one's copy the
        // latest, the default and the group's, so Terraform (version = latest_version) agrees.
        let restored = async {
            let v = self
                .cloud
                .create_version(&self.template_id, &self.previous, &self.previous.image_id)
                .await?;
            self.cloud.set_default_version(&self.template_id, v).await?;
            self.cloud
                .set_group_version(&self.s.group, &self.template_id, v)
                .await?;
            Ok::<_, String>(v)
        }
        .await;
        match restored {
            Ok(v) => {
                log(format!(
                    "launch template version {v} (a copy of {}) is the default and the group's",
                    self.previous.number
                ));
                self.report.launch_template.restored_version = Some(v);
                self.report.restored.push(format!("group version {v}"));
                self.end(Outcome::RolledBack, Some(why))
            }
            Err(e) => self.end(
                Outcome::NeedsAttention,
                Some(format!("{why}; after the rollback: {e}")),
            ),
        }
    }
}
