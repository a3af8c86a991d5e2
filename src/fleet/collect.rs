//! Runs `ecs-boot status --json` on many instances over SSM Run Command and gathers the answers.
//!
//! 1. DescribeInstanceInformation: instances SSM does not know are `no_ssm`, those whose agent is
//!    not `Online` are `offline`; neither is sent anything, so nothing waits on them.
//! 2. SendCommand (AWS-RunShellScript) in batches of at most 50 ids, a few batches at a time.
//!    `InvalidInstanceId` (an instance went away since step 1) drops the named ids and resends.
//! 3. ListCommandInvocations with Details per batch (one call answers for 50 instances) until
//!    each instance is terminal or the deadline passes. Its output (cut at 2,500 characters) holds
//!    a whole status document (~1.7 KB), so most instances need no other call.
//! 4. GetCommandInvocation only where the listed output is not a whole document (cut, or an
//!    error for which stderr matters): the 24,000-character output, at most `concurrency` requests
//!    in flight, retrying `InvocationDoesNotExist`. Without ssm:ListCommandInvocations, step 4
//!    alone polls each instance.
//!
//! Every SSM call goes at its API's adaptive pace (`pace.rs`) and is retried here, not by the SDK,
//! while throttled or unanswered, with jittered backoff, until the deadline: the pace has to see
//! each throttle to slow down. Memory is bounded by the fleet, not by the wait: one result per
//! instance (its status document, ≤ 24,000 characters inline) plus at most one page of 50 listed
//! invocations per batch in flight.

use super::output::{self, InstanceResult, Invocation, Parsed, Reach};
use super::pace::Pace;
use super::progress::Progress;
use crate::sources::aws::{Aws, describe, error_code};
use crate::sources::location::Location;
use crate::util::retry::{Backoff, Poll, WaitError, jitter, poll_until};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// SendCommand takes at most 50 instance ids.
pub const BATCH: usize = 50;
/// Batches being sent at once: SendCommand is a heavier call than the polls.
const SEND_CONCURRENCY: usize = 4;
/// Status JSON is one compact line, well under SSM's 24,000-character inline limit.
pub const COMMAND: &str = "ecs-boot status --json";
const DOCUMENT: &str = "AWS-RunShellScript";
/// The largest output we read back from S3.
const MAX_S3_OUTPUT: usize = 4 << 20;

#[derive(Clone)]
pub struct Options {
    pub timeout: Duration,
    pub concurrency: usize,
    /// (bucket, key prefix) for SSM's full output.
    pub s3_output: Option<(String, String)>,
}

/// One pace per SSM API: AWS throttles each on its own. Starting rates are guesses well below
/// what accounts are usually granted; the pace climbs from there.
struct Paces {
    describe: Pace,
    send: Pace,
    list: Pace,
    get: Pace,
}

impl Paces {
    fn new() -> Paces {
        Paces {
            describe: Pace::new(5.0, 0.5, 50.0),
            send: Pace::new(3.0, 0.5, 50.0),
            list: Pace::new(5.0, 0.5, 100.0),
            get: Pace::new(5.0, 0.5, 100.0),
        }
    }

    fn summary(&self) -> String {
        [
            ("DescribeInstanceInformation", &self.describe),
            ("SendCommand", &self.send),
            ("ListCommandInvocations", &self.list),
            ("GetCommandInvocation", &self.get),
        ]
        .iter()
        .map(|(name, pace)| {
            let s = pace.stats();
            format!(
                "{name} {} ({} throttled, last pace {:.1}/s)",
                s.calls, s.throttled, s.rate
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
    }
}

struct Ctx {
    aws: Aws,
    ssm: aws_sdk_ssm::Client,
    paces: Arc<Paces>,
    opts: Options,
    deadline: Instant,
    polls: Semaphore,
    sends: Semaphore,
    tx: mpsc::UnboundedSender<InstanceResult>,
}

impl Ctx {
    fn report(&self, instance_id: &str, reach: Reach) {
        let _ = self.tx.send(InstanceResult {
            instance_id: instance_id.to_string(),
            reach,
        });
    }
}

/// One result per id, in the order they arrived.
pub async fn collect(
    aws: &Aws,
    ids: Vec<String>,
    opts: &Options,
    progress: &mut Progress,
) -> Vec<InstanceResult> {
    let deadline = Instant::now() + opts.timeout;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let paces = Arc::new(Paces::new());
    let ctx = Arc::new(Ctx {
        aws: aws.clone(),
        ssm: aws.ssm_retried_by_caller(),
        paces: paces.clone(),
        opts: opts.clone(),
        deadline,
        polls: Semaphore::new(opts.concurrency.max(1)),
        sends: Semaphore::new(SEND_CONCURRENCY),
        tx,
    });
    let total = ids.len();
    let to_send = match agent_pings(&ctx, &ids).await {
        Ok(pings) => {
            let mut online = Vec::new();
            for id in ids {
                match pings.get(&id) {
                    None => ctx.report(&id, Reach::NoSsm),
                    Some((ping, last_ping)) if ping != "Online" => ctx.report(
                        &id,
                        Reach::Offline {
                            ping: ping.clone(),
                            last_ping: last_ping.clone(),
                        },
                    ),
                    Some(_) => online.push(id),
                }
            }
            online
        }
        Err(problem) => {
            progress.note(&format!(
                "cannot list SSM agents ({problem}); sending to every instance"
            ));
            ids
        }
    };
    progress.note(&format!(
        "{total} instances, {} reachable over SSM; sending in {} batch(es) of ≤{BATCH}",
        to_send.len(),
        to_send.len().div_ceil(BATCH)
    ));
    let mut batches = JoinSet::new();
    for chunk in to_send.chunks(BATCH) {
        batches.spawn(batch(ctx.clone(), chunk.to_vec()));
    }
    drop(ctx); // the last sender goes with the last batch: then `rx` ends
    let mut results = Vec::with_capacity(total);
    while let Some(r) = rx.recv().await {
        progress.tick(!is_healthy(&r));
        results.push(r);
    }
    while batches.join_next().await.is_some() {}
    progress.note(&format!("SSM calls: {}", paces.summary()));
    results
}

/// One SSM call at `pace`, retried while throttled or unanswered with jittered backoff until the
/// deadline. Any other error is the caller's.
async fn paced<T, E, F, Fut>(
    ctx: &Ctx,
    pace: &Pace,
    mut call: F,
) -> Result<T, SdkError<E, Response>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, Response>>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(8));
    loop {
        pace.slot().await;
        let err = match call().await {
            Ok(out) => {
                pace.ok();
                return Ok(out);
            }
            Err(e) => e,
        };
        match error_code(&err).as_deref() {
            Some(c) if is_throttling(c) => pace.throttled(),
            Some(_) => return Err(err),
            None => {} // no answer (reset, timeout): the next attempt may get one
        }
        let wait = backoff.next_delay();
        if Instant::now() + wait >= ctx.deadline {
            return Err(err);
        }
        tokio::time::sleep(wait).await;
    }
}

fn is_healthy(r: &InstanceResult) -> bool {
    use crate::status::health::Health;
    matches!(&r.reach, Reach::Report { doc, .. } if Health::from_instance(doc.get("health")) == Health::Healthy)
}

/// PingStatus and last ping time of every id SSM manages (absent: not managed).
async fn agent_pings(
    ctx: &Ctx,
    ids: &[String],
) -> Result<HashMap<String, (String, Option<String>)>, String> {
    use aws_sdk_ssm::types::InstanceInformationStringFilter;
    let mut found = HashMap::new();
    for chunk in ids.chunks(BATCH) {
        let filter = InstanceInformationStringFilter::builder()
            .key("InstanceIds")
            .set_values(Some(chunk.to_vec()))
            .build()
            .map_err(|e| e.to_string())?;
        let mut token = None;
        loop {
            let out = paced(ctx, &ctx.paces.describe, || {
                ctx.ssm
                    .describe_instance_information()
                    .filters(filter.clone())
                    .max_results(50)
                    .set_next_token(token.clone())
                    .send()
            })
            .await
            .map_err(|e| describe(&e))?;
            for info in out.instance_information_list() {
                if let Some(id) = info.instance_id() {
                    let ping = info.ping_status().map_or("Unknown", |p| p.as_str());
                    let last = info
                        .last_ping_date_time()
                        .map(|t| aws_smithy_types::DateTime::from_secs(t.secs()))
                        .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok());
                    found.insert(id.to_string(), (ping.to_string(), last));
                }
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(found)
}

/// Sends one batch, then watches each command it became.
async fn batch(ctx: Arc<Ctx>, ids: Vec<String>) {
    let sent = {
        let _permit = ctx.sends.acquire().await.expect("semaphore open");
        send(&ctx, ids).await
    };
    let mut watches = JoinSet::new();
    for (command_id, ids) in sent {
        watches.spawn(watch(ctx.clone(), command_id, ids));
    }
    while watches.join_next().await.is_some() {}
}

enum ListError {
    /// Throttled, or no answer: try again after a longer pause.
    Retry(String),
    /// Not allowed or not supported: poll each instance instead.
    Unusable(String),
}

/// A finished invocation's output is read even if the deadline passes meanwhile.
const READ_GRACE: Duration = Duration::from_secs(10);

/// Waits for one command's invocations with ListCommandInvocations, and reads each as it ends.
async fn watch(ctx: Arc<Ctx>, command_id: String, ids: Vec<String>) {
    let mut waiting: HashMap<String, String> = ids
        .into_iter()
        .map(|id| (id, "no answer from SSM yet".to_string()))
        .collect();
    let mut reads = JoinSet::new();
    let mut backoff = Backoff::new(Duration::from_millis(400), Duration::from_secs(2));
    let mut throttled = Backoff::new(Duration::from_secs(1), Duration::from_secs(20));
    // Nothing is terminal the instant it is sent; spread the batches' first looks.
    let mut pause = jitter(Duration::from_millis(500));
    loop {
        let left = ctx.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = backoff.next_delay();
        match list_statuses(&ctx, &command_id).await {
            Ok(listed) => {
                for (id, inv) in listed {
                    if output::is_terminal(&inv.status) {
                        if waiting.remove(&id).is_none() {
                        } else if output::settled_by_list(&inv) {
                            ctx.report(&id, output::reach_of(inv));
                        } else {
                            let grace = Instant::now() + READ_GRACE;
                            reads.spawn(read(ctx.clone(), command_id.clone(), id, grace));
                        }
                    } else if let Some(last) = waiting.get_mut(&id) {
                        *last = format!("last status {}", inv.status);
                    }
                }
            }
            Err(ListError::Retry(reason)) => {
                tracing::debug!(command_id, reason, "ListCommandInvocations: retrying");
                pause = throttled.next_delay();
            }
            Err(ListError::Unusable(reason)) => {
                tracing::debug!(
                    command_id,
                    reason,
                    "ListCommandInvocations unusable: polling each instance"
                );
                for (id, _) in waiting.drain() {
                    reads.spawn(read(ctx.clone(), command_id.clone(), id, ctx.deadline));
                }
            }
        }
        if waiting.is_empty() {
            break;
        }
    }
    for (id, last) in waiting {
        ctx.report(&id, Reach::TimedOut { last });
    }
    while reads.join_next().await.is_some() {}
}

/// (instance id, what SSM lists) of every invocation of the command so far, with the plugin's
/// output as stdout (cut at 2,500 characters).
async fn list_statuses(
    ctx: &Ctx,
    command_id: &str,
) -> Result<Vec<(String, Invocation)>, ListError> {
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let answer = {
            let _permit = ctx.polls.acquire().await.expect("semaphore open");
            paced(ctx, &ctx.paces.list, || {
                ctx.ssm
                    .list_command_invocations()
                    .command_id(command_id)
                    .details(true)
                    .max_results(50)
                    .set_next_token(token.clone())
                    .send()
            })
            .await
        };
        let out = match answer {
            Ok(out) => out,
            Err(e) => {
                return Err(match error_code(&e).as_deref() {
                    Some(c) if !is_throttling(c) => ListError::Unusable(describe(&e)),
                    _ => ListError::Retry(describe(&e)),
                });
            }
        };
        for inv in out.command_invocations() {
            let (Some(id), Some(status)) = (inv.instance_id(), inv.status()) else {
                continue;
            };
            let plugin = inv.command_plugins().first();
            found.push((
                id.to_string(),
                Invocation {
                    command_id: command_id.to_string(),
                    status: status.as_str().to_string(),
                    status_details: inv.status_details().unwrap_or_default().to_string(),
                    response_code: plugin.map_or(-1, |p| p.response_code()),
                    stdout: plugin
                        .and_then(|p| p.output())
                        .unwrap_or_default()
                        .to_string(),
                    stderr: String::new(),
                    stdout_url: None,
                },
            ));
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(found);
        }
    }
}

fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded"
    )
}

/// (command id, its instances). Ids SSM refuses are reported `no_ssm` and the rest resent.
async fn send(ctx: &Ctx, ids: Vec<String>) -> Vec<(String, Vec<String>)> {
    let mut queue = vec![ids];
    let mut sent = Vec::new();
    while let Some(ids) = queue.pop() {
        if ids.is_empty() {
            continue;
        }
        match send_command(ctx, &ids).await {
            Ok(command_id) => sent.push((command_id, ids)),
            Err(SendError::InvalidInstances(message)) => {
                // "Instances [[i-0abc, i-0def]] not in a valid state for account 123456789012"
                let named: Vec<&str> = message
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                    .collect();
                let (bad, rest): (Vec<String>, Vec<String>) =
                    ids.into_iter().partition(|id| named.contains(&id.as_str()));
                if !bad.is_empty() {
                    bad.iter().for_each(|id| ctx.report(id, Reach::NoSsm));
                    queue.push(rest);
                } else if rest.len() == 1 {
                    ctx.report(&rest[0], Reach::NoSsm);
                } else {
                    // The message named no id we sent: halve until the culprits stand alone.
                    let mut rest = rest;
                    let second = rest.split_off(rest.len() / 2);
                    queue.push(rest);
                    queue.push(second);
                }
            }
            Err(SendError::Other(problem)) => {
                let problem = format!("SendCommand: {problem}");
                ids.iter().for_each(|id| {
                    ctx.report(
                        id,
                        Reach::ApiError {
                            problem: problem.clone(),
                        },
                    )
                });
            }
        }
    }
    sent
}

enum SendError {
    InvalidInstances(String),
    Other(String),
}

async fn send_command(ctx: &Ctx, ids: &[String]) -> Result<String, SendError> {
    let secs = ctx.opts.timeout.as_secs().clamp(30, 172_800);
    let mut req = ctx
        .ssm
        .send_command()
        .document_name(DOCUMENT)
        .set_instance_ids(Some(ids.to_vec()))
        .parameters("commands", vec![COMMAND.to_string()])
        .parameters("executionTimeout", vec![secs.to_string()])
        // Delivery timeout: an instance that cannot start the command by then never will.
        .timeout_seconds(secs as i32)
        .comment("ecs-boot fleet status")
        // MaxErrors defaults to 0: the first failed instance would cancel the rest of the batch.
        .max_errors("100%")
        .max_concurrency("100%");
    if let Some((bucket, prefix)) = &ctx.opts.s3_output {
        req = req
            .output_s3_bucket_name(bucket)
            .output_s3_key_prefix(prefix);
    }
    match paced(ctx, &ctx.paces.send, || req.clone().send()).await {
        Ok(out) => out
            .command()
            .and_then(|c| c.command_id())
            .map(str::to_string)
            .ok_or_else(|| SendError::Other("no command id in the answer".into())),
        Err(e) if error_code(&e).as_deref() == Some("InvalidInstanceId") => {
            Err(SendError::InvalidInstances(describe(&e)))
        }
        Err(e) => Err(SendError::Other(describe(&e))),
    }
}

/// GetCommandInvocation until the invocation is terminal (at once, when `watch` saw it end) or
/// `deadline`, then reads its output.
async fn read(ctx: Arc<Ctx>, command_id: String, instance_id: String, deadline: Instant) {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(3));
    // What SSM said last: poll_until's own reason may be that the final attempt was cut short.
    let last = std::sync::Mutex::new("no answer from SSM yet".to_string());
    let waited = poll_until(remaining, backoff, || async {
        let p = get_invocation(&ctx, &command_id, &instance_id).await;
        if let Poll::Pending(reason) = &p {
            *last.lock().expect("last lock") = reason.clone();
        }
        p
    })
    .await;
    let reach = match waited {
        Ok(inv) => read_output(&ctx, inv).await,
        Err(WaitError::Deadline { .. }) => Reach::TimedOut {
            last: last.into_inner().expect("last lock"),
        },
        Err(WaitError::Fatal(problem)) => Reach::ApiError { problem },
    };
    ctx.report(&instance_id, reach);
}

async fn get_invocation(
    ctx: &Ctx,
    command_id: &str,
    instance_id: &str,
) -> Poll<Invocation, String> {
    let _permit = ctx.polls.acquire().await.expect("semaphore open");
    let answer = paced(ctx, &ctx.paces.get, || {
        ctx.ssm
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(instance_id)
            .send()
    })
    .await;
    match answer {
        Ok(out) => {
            let status = out.status().map_or("", |s| s.as_str()).to_string();
            if !output::is_terminal(&status) {
                return Poll::Pending(format!("last status {status}"));
            }
            Poll::Ready(Invocation {
                command_id: command_id.to_string(),
                status,
                status_details: out.status_details().unwrap_or_default().to_string(),
                response_code: out.response_code(),
                stdout: out
                    .standard_output_content()
                    .unwrap_or_default()
                    .to_string(),
                stderr: out.standard_error_content().unwrap_or_default().to_string(),
                stdout_url: out
                    .standard_output_url()
                    .filter(|u| !u.is_empty())
                    .map(str::to_string),
            })
        }
        Err(e) => match error_code(&e).as_deref() {
            // SSM registers invocations a moment after SendCommand returns.
            Some("InvocationDoesNotExist") => {
                Poll::Pending("the invocation is not registered yet".into())
            }
            Some(c) if is_throttling(c) => Poll::Pending("throttled by SSM".into()),
            Some(_) => Poll::Fatal(format!("GetCommandInvocation: {}", describe(&e))),
            // No answer at all (connection reset, timeout): the next attempt may get one.
            None => Poll::Pending(format!("GetCommandInvocation: {}", describe(&e))),
        },
    }
}

/// The Reach of a finished invocation, reading the full stdout from S3 when SSM cut it.
async fn read_output(ctx: &Ctx, mut inv: Invocation) -> Reach {
    if let Some((bucket, _)) = &ctx.opts.s3_output
        && output::parse_report(&inv.stdout) == Parsed::Truncated
    {
        let Some(key) = inv
            .stdout_url
            .as_deref()
            .and_then(|u| output::s3_key(u, bucket))
        else {
            return Reach::Unreadable {
                problem: "output truncated, and SSM gave no S3 URL for the rest".into(),
                ssm: inv,
            };
        };
        let location = Location::S3 {
            bucket: bucket.clone(),
            key,
        };
        match ctx.aws.fetch(&location, MAX_S3_OUTPUT).await {
            Ok(f) => inv.stdout = String::from_utf8_lossy(&f.bytes).into_owned(),
            Err(e) => {
                return Reach::Unreadable {
                    problem: format!("output truncated, and the S3 copy is not readable: {e}"),
                    ssm: inv,
                };
            }
        }
    }
    output::reach_of(inv)
}
