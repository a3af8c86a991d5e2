//! The publication the lifecycle calls at a few moments of the life: bounded by `[metrics]
//! timeout` (3 s by default, at most 10 s) because it runs before the ABANDON and before the
//! terminate hook's completion, which must not wait on CloudWatch; a failure is logged, kept in
//! the state (`status` shows it) and never fails anything.

use super::{Datum, Dimensions, Sink, catalog};
use crate::config::MetricsSection;
use crate::status::state::{MetricsRecord, State};
use time::OffsetDateTime;

/// When the lifecycle publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// Before the launch hook's ABANDON.
    Abandon,
    /// After the launch hook's CONTINUE (its latency is known then).
    InService,
    /// After a drain, before the terminate hook's completion.
    Drained,
    /// When essential system containers died for good (the health watch): how many, this time.
    EssentialFailures(u64),
}

impl Moment {
    pub fn as_str(self) -> &'static str {
        match self {
            Moment::Abandon => "abandon",
            Moment::InService => "in-service",
            Moment::Drained => "drained",
            Moment::EssentialFailures(_) => "essential-failures",
        }
    }

    /// The data points for this moment, from the state.
    pub fn data(self, state: &State, dims: &Dimensions, now: OffsetDateTime) -> Vec<Datum> {
        match self {
            Moment::Abandon => catalog::abandon(state, dims),
            Moment::InService => catalog::in_service(state, dims, now),
            Moment::Drained => catalog::drain(state, dims, now),
            Moment::EssentialFailures(n) => vec![catalog::essential_failures(dims, n)],
        }
    }
}

pub struct Publisher<'a> {
    pub sink: &'a dyn Sink,
    pub config: &'a MetricsSection,
}

impl Publisher<'_> {
    /// Publishes `moment`'s data; `None` when metrics are off or there is nothing to send.
    pub async fn publish(
        &self,
        moment: Moment,
        state: &State,
        dims: &Dimensions,
    ) -> Option<MetricsRecord> {
        if !self.config.enabled {
            return None;
        }
        let at = OffsetDateTime::now_utc();
        let data = moment.data(state, dims, at);
        if data.is_empty() {
            return None;
        }
        let limit = self.config.timeout;
        let put = self.sink.put(&self.config.namespace, &data);
        let error = match tokio::time::timeout(limit, put).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(format!(
                "gave up after [metrics] timeout = {}s",
                limit.as_secs()
            )),
        };
        let mut record = MetricsRecord {
            moment: moment.as_str().into(),
            namespace: self.config.namespace.clone(),
            at,
            data: data.len(),
            error,
        };
        match &mut record.error {
            Some(e) => {
                crate::status::bounds::cap_text(e, crate::status::bounds::WARNING);
                tracing::warn!(moment = moment.as_str(), namespace = %record.namespace, error = %e, "metrics not published")
            }
            None => {
                tracing::info!(moment = moment.as_str(), namespace = %record.namespace, data = record.data, "metrics published")
            }
        }
        Some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Records what it was given; answers with `answer`, or never when `stuck`.
    struct Fake {
        calls: Mutex<Vec<(String, Vec<Datum>)>>,
        answer: Result<(), String>,
        stuck: bool,
    }

    impl Fake {
        fn new(answer: Result<(), String>, stuck: bool) -> Fake {
            Fake {
                calls: Mutex::new(Vec::new()),
                answer,
                stuck,
            }
        }
    }

    impl Sink for Fake {
        fn put<'a>(
            &'a self,
            namespace: &'a str,
            data: &'a [Datum],
        ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
            self.calls
                .lock()
                .unwrap()
                .push((namespace.into(), data.to_vec()));
            let answer = self.answer.clone();
            let stuck = self.stuck;
            Box::pin(async move {
                if stuck {
                    std::future::pending::<()>().await;
                }
                answer
            })
        }
    }

    fn dims() -> Dimensions {
        Dimensions {
            asg: "g".into(),
            cluster: "c".into(),
        }
    }

    #[tokio::test]
    async fn publishes_into_the_configured_namespace_and_records_it() {
        let sink = Fake::new(Ok(()), false);
        let config = MetricsSection {
            namespace: "Team/Boot".into(),
            ..Default::default()
        };
        let p = Publisher {
            sink: &sink,
            config: &config,
        };
        let r = p
            .publish(Moment::Abandon, &State::new(), &dims())
            .await
            .unwrap();
        assert_eq!((r.moment.as_str(), r.data, r.error), ("abandon", 1, None));
        let calls = sink.calls.lock().unwrap();
        assert_eq!(calls[0].0, "Team/Boot");
        assert_eq!(calls[0].1[0].name, catalog::ABANDONS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_sink_is_given_up_after_the_timeout() {
        let sink = Fake::new(Ok(()), true);
        let config = MetricsSection {
            timeout: Duration::from_secs(2),
            ..Default::default()
        };
        let p = Publisher {
            sink: &sink,
            config: &config,
        };
        let started = tokio::time::Instant::now();
        let r = p
            .publish(Moment::Abandon, &State::new(), &dims())
            .await
            .unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert!(r.error.unwrap().contains("timeout = 2s"));
    }

    #[tokio::test]
    async fn a_failure_is_recorded_and_disabled_metrics_send_nothing() {
        let sink = Fake::new(Err("AccessDenied: no".into()), false);
        let config = MetricsSection::default();
        let p = Publisher {
            sink: &sink,
            config: &config,
        };
        let r = p.publish(Moment::Abandon, &State::new(), &dims()).await;
        assert_eq!(r.unwrap().error.as_deref(), Some("AccessDenied: no"));
        let off = MetricsSection {
            enabled: false,
            ..Default::default()
        };
        let p = Publisher {
            sink: &sink,
            config: &off,
        };
        assert!(
            p.publish(Moment::Abandon, &State::new(), &dims())
                .await
                .is_none()
        );
        // No drain, nothing to say about one.
        let p = Publisher {
            sink: &sink,
            config: &config,
        };
        assert!(
            p.publish(Moment::Drained, &State::new(), &dims())
                .await
                .is_none()
        );
        let r = p
            .publish(Moment::EssentialFailures(2), &State::new(), &dims())
            .await
            .unwrap();
        assert_eq!(r.moment, "essential-failures");
        let calls = sink.calls.lock().unwrap().clone();
        let last = &calls.last().unwrap().1;
        assert_eq!(
            (last[0].name, last[0].value),
            (catalog::ESSENTIAL_CONTAINER_FAILURES, 2.0)
        );
        assert_eq!(sink.calls.lock().unwrap().len(), 2);
    }
}
