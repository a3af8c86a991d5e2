//! One rollout, start to end, over the `Cloud` trait. Every step first looks at what exists, so a
//! rerun after a crash converges: the version holding the AMI is reused, the default and the
//! parameter are set only when they differ, and a refresh already running for this version is
//! resumed rather than started twice.
//!
//!   version   newest version above the group's holding the AMI, else a copy of the group's
//!             version with the new ImageId (CreateLaunchTemplateVersion, SourceVersion)
//!   default   ModifyLaunchTemplate DefaultVersion = that version
//!   publish   PutParameter (the parameter Terraform reads the AMI from)
//!   refresh   StartInstanceRefresh: DesiredConfiguration = the numbered version, checkpoints
//!             from plan.rs, AutoRollback, SkipMatching, BakeTime
//!   gates     per checkpoint: wait for its replacements in service (budget), collect their
//!             boot reports over SSM, judge them (gate.rs); the last gate runs while baking
//!   done      the refresh Successful: the group runs the version
//!   rollback  a failed gate: RollbackInstanceRefresh, the parameter and the default restored at
//!             once; once the rollback succeeded, a copy of the previous version becomes the
//!             default and the group's, so the template's latest version is what the group runs
//!             (Terraform's `version = latest_version` then plans nothing)

use super::cloud::{Cloud, Group, Preferences, Refresh, Version};
use super::gate::{self, Limits, Member};
use super::plan;
use super::report::{GateReport, Outcome, RefreshReport, Report, SCHEMA, Template};
use crate::fleet::render;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    pub group: String,
    pub environment: Option<String>,
    pub ami: String,
    /// None: /ecs-boot/ami/<the image's architecture>, the module's default.
    pub parameter: Option<String>,
    pub min_healthy: u32,
    pub max_healthy: u32,
    pub warmup: Option<u32>,
    /// How long the refresh waits at a checkpoint: the time a gate has to decide.
    pub checkpoint_delay: Duration,
    /// How long the finished refresh bakes: the time the last gate has to decide.
    pub bake_time: Duration,
    /// How long a step's replacements may take to be in service (plus the checkpoint delay).
    pub in_service_budget: Duration,
    pub collect_timeout: Duration,
    pub rollback_timeout: Duration,
    pub limits: Limits,
    /// The first pause between polls (doubling, jittered, at most 8x).
    pub poll: Duration,
}

/// Why nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("Auto Scaling group {0} does not exist in this region")]
    NoGroup(String),
    #[error("group {0} has no launch template (launch configurations are not rolled out)")]
    NoTemplate(String),
    #[error("group {0} uses a mixed instances policy, which `rollout` does not handle yet")]
    Mixed(String),
    #[error(
        "group {group} runs launch template version {version}: AWS refuses to roll back a refresh from $Latest/$Default; give the group a numbered version"
    )]
    Floating { group: String, version: String },
    #[error(
        "group {group} runs launch template version {version}, which the template does not have"
    )]
    MissingVersion { group: String, version: i64 },
    #[error("no AMI parameter: the image {0} has no architecture; pass --ami-parameter")]
    NoParameter(String),
    #[error("{0}")]
    Api(String),
}

/// One rollout under way: what it found before changing anything, and its report so far.
pub(super) struct Run<'a, C: Cloud> {
    pub(super) cloud: &'a C,
    pub(super) s: &'a Settings,
    pub(super) report: Report,
    pub(super) template_id: String,
    /// The version the group ran: the source of the new one, restored by a rollback.
    pub(super) previous: Version,
    pub(super) previous_default: i64,
    pub(super) previous_parameter: String,
}

pub(super) fn log(msg: impl AsRef<str>) {
    eprintln!("rollout: {}", msg.as_ref());
}

/// The rollout; `Err` only when nothing was changed.
pub async fn rollout<C: Cloud>(cloud: &C, s: &Settings) -> Result<Report, SetupError> {
    let group = cloud
        .group(&s.group)
        .await
        .map_err(SetupError::Api)?
        .ok_or_else(|| SetupError::NoGroup(s.group.clone()))?;
    if group.mixed_instances {
        return Err(SetupError::Mixed(s.group.clone()));
    }
    let template_id = group
        .template_id
        .clone()
        .ok_or_else(|| SetupError::NoTemplate(s.group.clone()))?;
    let raw = group.template_version.clone().unwrap_or_default();
    let running: i64 = raw.parse().map_err(|_| SetupError::Floating {
        group: s.group.clone(),
        version: raw.clone(),
    })?;
    let versions = cloud
        .versions(&template_id)
        .await
        .map_err(SetupError::Api)?;
    let previous = versions
        .iter()
        .find(|v| v.number == running)
        .cloned()
        .ok_or(SetupError::MissingVersion {
            group: s.group.clone(),
            version: running,
        })?;
    let parameter = match &s.parameter {
        Some(p) => p.clone(),
        None => match cloud
            .image_architecture(&s.ami)
            .await
            .map_err(SetupError::Api)?
        {
            Some(arch) => format!("/ecs-boot/ami/{arch}"),
            None => return Err(SetupError::NoParameter(s.ami.clone())),
        },
    };
    let refreshes = cloud.refreshes(&s.group).await.map_err(SetupError::Api)?;
    let existing = versions
        .iter()
        .rev()
        .find(|v| v.number > running && v.image_id == s.ami)
        .map(|v| v.number);
    let mut report = Report {
        report_schema: SCHEMA,
        environment: s.environment.clone(),
        group: s.group.clone(),
        ami: s.ami.clone(),
        previous_ami: previous.image_id.clone(),
        ami_parameter: parameter.clone(),
        launch_template: Template {
            id: template_id.clone(),
            previous_version: running,
            version: existing.unwrap_or(0),
            created: false,
            restored_version: None,
        },
        refresh: None,
        gates: Vec::new(),
        outcome: Outcome::Busy,
        reason: None,
        restored: Vec::new(),
    };
    let active = refreshes.iter().find(|r| r.is_active()).cloned();
    if let Some(r) = &active
        && (existing.is_none()
            || r.version.as_deref() != existing.map(|v| v.to_string()).as_deref()
            || r.template_id.as_deref() != Some(&template_id))
    {
        report.reason = Some(format!(
            "instance refresh {} ({}) is running on {} for another configuration; nothing changed",
            r.id, r.status, s.group
        ));
        return Ok(report);
    }
    let run = Run {
        cloud,
        s,
        report,
        template_id,
        previous_default: 0,
        previous_parameter: String::new(),
        previous,
    };
    if previous_is_target(&run, &group) {
        return Ok(run.already_running(&parameter).await);
    }
    Ok(run.go(&group, existing, active, &parameter).await)
}

fn previous_is_target<C: Cloud>(run: &Run<C>, _group: &Group) -> bool {
    run.previous.image_id == run.s.ami
}

impl<C: Cloud> Run<'_, C> {
    pub(super) fn end(mut self, outcome: Outcome, reason: Option<String>) -> Report {
        if let Some(r) = &reason {
            log(format!("{}: {r}", outcome_word(outcome)));
        } else {
            log(outcome_word(outcome));
        }
        self.report.outcome = outcome;
        self.report.reason = reason;
        self.report
    }

    /// The group already runs a version with this AMI: converge the default and the parameter.
    async fn already_running(mut self, parameter: &str) -> Report {
        let v = self.previous.number;
        self.report.launch_template.version = v;
        log(format!(
            "{} already runs {} (launch template version {v})",
            self.s.group, self.s.ami
        ));
        let converge = async {
            if self.cloud.default_version(&self.template_id).await? != v {
                self.cloud.set_default_version(&self.template_id, v).await?;
            }
            if self.cloud.parameter(parameter).await?.as_deref() != Some(&self.s.ami) {
                self.cloud.put_parameter(parameter, &self.s.ami).await?;
            }
            Ok::<_, String>(())
        };
        let converged = converge.await;
        match converged {
            Ok(()) => self.end(Outcome::Promoted, None),
            Err(e) => self.end(Outcome::NeedsAttention, Some(e)),
        }
    }

    async fn go(
        mut self,
        group: &Group,
        existing: Option<i64>,
        active: Option<Refresh>,
        parameter: &str,
    ) -> Report {
        // version, default, parameter
        let prepared = async {
            let version = match existing {
                Some(v) => {
                    log(format!(
                        "reusing launch template version {v} holding {}",
                        self.s.ami
                    ));
                    v
                }
                None => {
                    let v = self
                        .cloud
                        .create_version(&self.template_id, &self.previous, &self.s.ami)
                        .await?;
                    log(format!(
                        "created launch template version {v} ({} from version {})",
                        self.s.ami, self.previous.number
                    ));
                    self.report.launch_template.created = true;
                    v
                }
            };
            self.report.launch_template.version = version;
            let default = self.cloud.default_version(&self.template_id).await?;
            self.previous_default = if default == version {
                self.previous.number
            } else {
                default
            };
            if default != version {
                self.cloud
                    .set_default_version(&self.template_id, version)
                    .await?;
                log(format!("default version {default} -> {version}"));
            }
            let current = self.cloud.parameter(parameter).await?;
            self.previous_parameter = match current.as_deref() {
                Some(v) if v != self.s.ami => v.to_string(),
                _ => self.previous.image_id.clone(),
            };
            if current.as_deref() != Some(&self.s.ami) {
                self.cloud.put_parameter(parameter, &self.s.ami).await?;
                log(format!("published {} to {parameter}", self.s.ami));
            }
            Ok::<_, String>(version)
        }
        .await;
        let version = match prepared {
            Ok(v) => v,
            Err(e) => return self.undo(parameter, format!("preparing: {e}")).await,
        };
        // refresh
        let (refresh_id, steps, resumed) = match active {
            Some(r) => {
                log(format!("resuming instance refresh {} ({})", r.id, r.status));
                (r.id, plan::steps(group.desired), true)
            }
            None => {
                let ids: Vec<String> = live(group).map(|(id, _)| id.clone()).collect();
                let on = match self.cloud.instance_versions(&ids).await {
                    Ok(on) => on,
                    Err(e) => return self.undo(parameter, e).await,
                };
                let total = ids.iter().filter(|i| on.get(*i) != Some(&version)).count();
                let steps = plan::steps(total as u32);
                let prefs = Preferences {
                    min_healthy: self.s.min_healthy,
                    max_healthy: self.s.max_healthy,
                    warmup: self.s.warmup,
                    checkpoints: plan::checkpoints(&steps),
                    checkpoint_delay: self.s.checkpoint_delay.as_secs() as u32,
                    bake_time: self.s.bake_time.as_secs() as u32,
                };
                match self
                    .cloud
                    .start_refresh(&self.s.group, &self.template_id, version, &prefs)
                    .await
                {
                    Ok(id) => {
                        log(format!(
                            "started instance refresh {id}: {total} to replace, checkpoints {:?}",
                            prefs.checkpoints
                        ));
                        (id, steps, false)
                    }
                    Err(e) => return self.undo(parameter, e).await,
                }
            }
        };
        self.report.refresh = Some(RefreshReport {
            id: refresh_id.clone(),
            resumed,
            checkpoints: plan::checkpoints(&steps),
            status: String::new(),
            status_reason: None,
        });
        // gates
        let mut seen: BTreeMap<String, Option<String>> = BTreeMap::new();
        for step in &steps {
            let budget = self.s.in_service_budget + self.s.checkpoint_delay;
            let waited = self
                .wait_for_step(&refresh_id, version, step, budget, &mut seen)
                .await;
            let failure = waited.err();
            let all: Vec<Member> = seen
                .iter()
                .map(|(id, lc)| Member {
                    instance_id: id.clone(),
                    lifecycle: lc.clone(),
                })
                .collect();
            let members = gate::judged(&all, step.instances);
            let present: Vec<String> = members
                .iter()
                .filter(|m| m.lifecycle.is_some())
                .map(|m| m.instance_id.clone())
                .collect();
            log(format!(
                "gate {}: collecting boot reports of {} instance(s) over SSM",
                step.name,
                present.len()
            ));
            let results = if present.is_empty() {
                Vec::new()
            } else {
                self.cloud
                    .boot_reports(present, self.s.collect_timeout)
                    .await
            };
            let rows = render::rows(&results);
            let mut verdict = gate::judge(step.instances, &members, &rows, self.s.limits);
            if let Some(reason) = failure {
                verdict.passed = false;
                verdict.reasons.insert(0, reason);
            }
            let passed = verdict.passed;
            let first = verdict.reasons.first().cloned().unwrap_or_default();
            let more = verdict.reasons.len().saturating_sub(1);
            self.report.gates.push(GateReport {
                step: step.clone(),
                verdict,
            });
            if !passed {
                let why = if more > 0 {
                    format!("gate {} failed: {first} (and {more} more)", step.name)
                } else {
                    format!("gate {} failed: {first}", step.name)
                };
                log(&why);
                return self.roll_back(&refresh_id, parameter, why).await;
            }
            log(format!(
                "gate {} passed ({} instance(s))",
                step.name, step.instances
            ));
        }
        // done
        let deadline = self.s.in_service_budget + self.s.checkpoint_delay + self.s.bake_time;
        let ended = self
            .wait_refresh(&refresh_id, deadline, |r| {
                !r.is_active() || r.status == "RollbackInProgress"
            })
            .await;
        match ended {
            Ok(r) if r.status == "Successful" => self.end(Outcome::Promoted, None),
            Ok(r) => {
                let why = format!(
                    "instance refresh ended {}: {}",
                    r.status,
                    r.reason.unwrap_or_default()
                );
                self.roll_back(&refresh_id, parameter, why).await
            }
            Err(e) => self.end(Outcome::NeedsAttention, Some(e)),
        }
    }
}

fn live(group: &Group) -> impl Iterator<Item = &(String, String)> {
    group
        .instances
        .iter()
        .filter(|(_, s)| s == "InService" || s.starts_with("Pending"))
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Promoted => "promoted",
        Outcome::RolledBack => "rolled back",
        Outcome::NeedsAttention => "needs attention",
        Outcome::Busy => "busy",
    }
}
