//! `HookAction`: one lifecycle action from start to end — heartbeats while open, completion
//! exactly once (also across restarts), always recorded.

use super::heartbeats::Sent;
use super::{Completion, Heartbeats, Hook, LifecycleApi};
use crate::error::{Error, Result};
use crate::status::state::{HookIntent, HookRecord, HookResult, StateStore, Transition};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// One lifecycle action from start to end: heartbeats while open, completed exactly once (also
/// across restarts, through the intent recorded before the call), always recorded.
pub struct HookAction<A: LifecycleApi> {
    api: A,
    store: StateStore,
    transition: Transition,
    hook: Option<Hook>,
    beats: Option<Heartbeats>,
    /// When the action's timeout started, as far as is known (`begin`'s `age` before it was taken
    /// up), until a heartbeat restarts it.
    opened: tokio::time::Instant,
}

impl<A: LifecycleApi> HookAction<A> {
    /// Starts heartbeats for `hook` (none if there is no hook, or it is already completed).
    /// `age`: how long the action has likely been open already (Auto Scaling started its timeout
    /// before ecs-boot took it up: at launch, or before the termination was noticed, or before a
    /// restart); the first beat and the expiry estimate count from then.
    pub fn begin(
        api: A,
        store: StateStore,
        transition: Transition,
        hook: Option<Hook>,
        interval: Duration,
        age: Duration,
    ) -> HookAction<A> {
        let now = tokio::time::Instant::now();
        let opened = now.checked_sub(age).unwrap_or(now);
        let done = store.snapshot().hook_done(transition).is_some();
        let beats = hook
            .as_ref()
            .filter(|_| !done)
            .map(|h| Heartbeats::start(api.clone(), h.clone(), interval, opened));
        HookAction {
            api,
            store,
            transition,
            hook,
            beats,
            opened,
        }
    }

    pub fn hook(&self) -> Option<&Hook> {
        self.hook.as_ref()
    }

    /// Completes with `result` and records it; with no hook, records why there was nothing to
    /// complete. A record from before a restart means done: nothing is sent again.
    pub async fn complete(
        mut self,
        result: HookResult,
        cause: Option<String>,
        latency_from: Option<Instant>,
    ) -> Result<HookRecord> {
        // No heartbeat while completing: a beat would spend the same Auto Scaling budget as the
        // completion, which ends the action instead of prolonging it.
        let sent = self
            .beats
            .take()
            .map_or(Sent::none_since(self.opened), Heartbeats::stop);
        let heartbeats = sent.count;
        let snapshot = self.store.snapshot();
        if let Some(done) = snapshot.hook_done(self.transition) {
            tracing::info!(hook = %done.hook, result = %done.result, "lifecycle hook already completed before a restart; not completing again");
            return Ok(done.clone());
        }
        let Some(hook) = &self.hook else {
            let record = self.record(
                String::new(),
                String::new(),
                HookResult::Skipped,
                false,
                None,
                0,
                Some(format!(
                    "no {} lifecycle hook for this instance",
                    self.transition
                )),
            );
            return Ok(record);
        };
        // A previous run sent this completion and stopped before recording the answer: the
        // call may have taken effect. Ask Auto Scaling instead of guessing; record what is true.
        let mut cause = cause;
        if let Some(intent) = snapshot.hook_intent(self.transition) {
            match self.ended_in(hook).await {
                Ok(Some(state)) => {
                    let effective = effective_result(self.transition, &state, intent.result);
                    tracing::info!(hook = %hook.name, result = %intent.result, %state, "completion sent before a restart took effect; not completing again");
                    let note = format!(
                        "{} sent before a restart; Auto Scaling reports {state}",
                        intent.result
                    );
                    let cause = Some(cause.map_or(note.clone(), |c| format!("{c}; {note}")));
                    let record = self.record(
                        hook.asg.clone(),
                        hook.name.clone(),
                        effective,
                        true,
                        None,
                        heartbeats,
                        cause,
                    );
                    if effective != result {
                        return Err(Error::Lifecycle(format!(
                            "the {} action ended as {effective}: Auto Scaling reports {state}",
                            self.transition
                        )));
                    }
                    return Ok(record);
                }
                Ok(None) => {
                    tracing::info!(hook = %hook.name, "a completion sent before a restart did not take effect; completing again")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read this instance's lifecycle state; completing again");
                    cause = cause.or(Some(format!("completing again after a restart ({e})")));
                }
            }
        }
        let transition = self.transition;
        self.store.update_durable(|s| {
            s.hook_intents.retain(|i| i.transition != transition);
            s.hook_intents.push(HookIntent {
                transition,
                hook: hook.name.clone(),
                result,
                at: OffsetDateTime::now_utc(),
            });
        });
        let expires_at = sent.last + hook.expires_after();
        let answer = match self.complete_checked(hook, result, expires_at).await? {
            Checked::Answered(a) => a,
            Checked::TookEffect { state, last_error } => {
                let effective = effective_result(self.transition, &state, result);
                let note = if effective == result {
                    format!(
                        "{result} took effect though its answer was lost; Auto Scaling reports {state}"
                    )
                } else {
                    format!(
                        "the action ended without our {result} (Auto Scaling reports {state}: the hook's timeout and DefaultResult, or someone else); our last attempt: {last_error}"
                    )
                };
                let record = self.record(
                    hook.asg.clone(),
                    hook.name.clone(),
                    effective,
                    true,
                    latency_from.map(|t| t.elapsed().as_millis() as u64),
                    heartbeats,
                    Some(cause.map_or(note.clone(), |c| format!("{c}; {note}"))),
                );
                if effective != result {
                    return Err(Error::Lifecycle(note));
                }
                return Ok(record);
            }
        };
        let already_done = answer == Completion::NoActiveAction;
        let latency_ms = latency_from.map(|t| t.elapsed().as_millis() as u64);
        tracing::info!(hook = %hook.name, result = %result, already_done, latency_ms = latency_ms.unwrap_or(0), "lifecycle hook completed");
        Ok(self.record(
            hook.asg.clone(),
            hook.name.clone(),
            result,
            already_done,
            latency_ms,
            heartbeats,
            cause,
        ))
    }

    /// Sends the completion. A throttled call was refused before Auto Scaling considered it, so
    /// it is sent again (jittered backoff, shorter as the timeout nears) until the action would
    /// expire, without asking first.
    /// Any other failure (a timeout whose answer was lost) is never resent blindly: Auto Scaling
    /// is asked first whether the action still waits.
    async fn complete_checked(
        &self,
        hook: &Hook,
        result: HookResult,
        expires_at: tokio::time::Instant,
    ) -> Result<Checked> {
        let mut backoff =
            crate::util::retry::Backoff::new(Duration::from_millis(500), Duration::from_secs(5));
        let mut throttled_backoff =
            crate::util::retry::Backoff::new(Duration::from_secs(1), Duration::from_secs(4));
        let mut throttled = 0u32;
        let mut attempt = 1;
        let resource = format!("{}/{} {result}", hook.asg, hook.name);
        loop {
            let err = match self.api.complete(hook, result).await {
                Ok(Completion::Throttled) if tokio::time::Instant::now() < expires_at => {
                    throttled += 1;
                    // Sooner as the action nears its timeout: of a fleet's throttled
                    // completions, the ones about to time out get most of the calls.
                    let left = expires_at.saturating_duration_since(tokio::time::Instant::now());
                    let delay = throttled_backoff.next_delay_before(left);
                    if throttled == 1 || throttled.is_power_of_two() {
                        tracing::warn!(hook = %hook.name, throttled, retry_in_ms = delay.as_millis() as u64, "CompleteLifecycleAction throttled; sending it again");
                    }
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Ok(Completion::Throttled) => Error::aws(
                    "CompleteLifecycleAction",
                    &resource,
                    format!(
                        "Throttling: refused {throttled} times by the rate limit, until the action's timeout"
                    ),
                ),
                Ok(Completion::NoActiveAction) if throttled > 0 => {
                    // The action ended while ours were refused: by its timeout (DefaultResult)
                    // or someone else. What Auto Scaling says happened is what gets recorded.
                    Error::aws(
                        "CompleteLifecycleAction",
                        &resource,
                        format!("Throttling: refused {throttled} times, then no active action"),
                    )
                }
                Ok(a) => {
                    if throttled > 0 {
                        tracing::info!(hook = %hook.name, throttled, "CompleteLifecycleAction accepted after throttling");
                    }
                    return Ok(Checked::Answered(a));
                }
                Err(e) => e,
            };
            match self.ended_in(hook).await {
                Ok(Some(state)) => {
                    return Ok(Checked::TookEffect {
                        state,
                        last_error: err.to_string(),
                    });
                }
                _ if attempt >= COMPLETE_ATTEMPTS => return Err(err),
                _ => {
                    tracing::warn!(error = %err, attempt, "CompleteLifecycleAction failed and the action still waits; retrying")
                }
            }
            attempt += 1;
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// Asks Auto Scaling where the instance is: `Some(state)` once the action no longer waits
    /// (it ended, by our call or otherwise), `None` while it still does.
    async fn ended_in(&self, hook: &Hook) -> Result<Option<String>> {
        let found = self.api.instance(&hook.instance_id).await?;
        if found
            .as_ref()
            .is_some_and(|(_, s)| self.transition.waiting_in(s))
        {
            return Ok(None);
        }
        Ok(Some(found.map_or("not in a group".to_string(), |(_, s)| s)))
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        asg: String,
        hook: String,
        result: HookResult,
        already_done: bool,
        latency_ms: Option<u64>,
        heartbeats: u32,
        cause: Option<String>,
    ) -> HookRecord {
        let record = HookRecord {
            transition: self.transition,
            asg,
            hook,
            result,
            completed_at: OffsetDateTime::now_utc(),
            already_done,
            latency_ms,
            heartbeats,
            cause,
        };
        let transition = self.transition;
        self.store.update_durable(|s| {
            s.hooks.push(record.clone());
            s.hook_intents.retain(|i| i.transition != transition);
        });
        record
    }
}

/// What an action that ended without our answer amounts to, from the state Auto Scaling reports:
/// a launch that left for termination was abandoned, whatever we meant to send.
fn effective_result(transition: Transition, state: &str, intended: HookResult) -> HookResult {
    let gone = state.contains("Terminat") || state == "Detached" || state == "not in a group";
    match transition {
        Transition::Launch | Transition::LaunchWarmed if gone => HookResult::Abandon,
        Transition::Launch | Transition::LaunchWarmed => HookResult::Continue,
        Transition::Terminate => intended,
    }
}

/// Completion attempts before giving up (each after checking the action still waits).
const COMPLETE_ATTEMPTS: u32 = 4;

enum Checked {
    Answered(Completion),
    /// The call failed, yet the action no longer waits: it ended (by our call or otherwise).
    TookEffect {
        state: String,
        last_error: String,
    },
}
