//! The local ECS agent's introspection API: the registration signal (no ECS control-plane
//! polling; the wait is in lifecycle/launch/stage.rs) and the instance's own view of its tasks.
//! The agent opens the port only after it registered, so "connection refused" means "not yet".

use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    #[serde(rename = "Cluster", default)]
    pub cluster: String,
    #[serde(rename = "ContainerInstanceArn", default)]
    pub container_instance_arn: Option<String>,
    #[serde(rename = "Version", default)]
    pub version: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Task {
    #[serde(rename = "Arn", default)]
    pub arn: String,
    #[serde(rename = "KnownStatus", default)]
    pub known_status: String,
}

impl Task {
    /// Judged by the task's own status: STOPPED tasks linger in the list until cleanup.
    pub fn is_live(&self) -> bool {
        self.known_status != "STOPPED"
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct TaskList {
    #[serde(rename = "Tasks", default)]
    pub(crate) tasks: Vec<Task>,
}

/// The largest `/v1/metadata` answer read: three short strings.
pub const MAX_METADATA: usize = 64 << 10;
/// The largest `/v1/tasks` answer read: about 1.5 KiB a task (more with many containers), so
/// thousands of tasks, far more than an instance runs; STOPPED ones linger until cleanup.
pub const MAX_TASKS: usize = 4 << 20;

#[derive(Clone)]
pub struct Introspection {
    base: String,
    http: reqwest::Client,
}

/// Why an introspection call gave no answer.
#[derive(Debug)]
pub enum Unavailable {
    /// Nothing listens: the agent has not registered yet, or is down.
    NotListening,
    Other(String),
}

impl Introspection {
    pub fn new(base: &str) -> Introspection {
        let http = reqwest::Client::builder()
            // The agent is on the host: never send this through HTTPS_PROXY.
            .no_proxy()
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(3))
            .build()
            .expect("a plain HTTP client builds");
        Introspection {
            base: base.trim_end_matches('/').to_string(),
            http,
        }
    }

    /// GETs `path` and parses at most `limit` bytes of answer, read as it streams in.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        limit: usize,
    ) -> Result<T, Unavailable> {
        let url = format!("{}{path}", self.base);
        let resp = self.http.get(&url).send().await.map_err(|e| {
            if e.is_connect() {
                Unavailable::NotListening
            } else {
                Unavailable::Other(format!("{url}: {e}"))
            }
        })?;
        if !resp.status().is_success() {
            return Err(Unavailable::Other(format!("{url}: HTTP {}", resp.status())));
        }
        let body = crate::sources::capped::read_reqwest(resp, limit)
            .await
            .map_err(|e| Unavailable::Other(format!("{url}: {e}")))?;
        serde_json::from_slice(&body)
            .map_err(|e| Unavailable::Other(format!("{url}: unexpected answer: {e}")))
    }

    pub async fn metadata(&self) -> Result<Metadata, Unavailable> {
        self.get("/v1/metadata", MAX_METADATA).await
    }

    pub async fn tasks(&self) -> Result<Vec<Task>, Unavailable> {
        self.get::<TaskList>("/v1/tasks", MAX_TASKS)
            .await
            .map(|l| l.tasks)
    }
}

/// The agent reports the cluster by name or ARN depending on how it was configured.
pub fn cluster_name(c: &str) -> &str {
    c.rsplit_once(":cluster/").map(|(_, n)| n).unwrap_or(c)
}

/// The agent did not register, or registered into another cluster.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RegistrationError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_agents_shapes() {
        let m: Metadata = serde_json::from_str(r#"{"Cluster":"prod","ContainerInstanceArn":"arn:aws:ecs:us-east-1:1:container-instance/prod/abc","Version":"Amazon ECS Agent - v1.90.0"}"#).unwrap();
        assert_eq!(m.cluster, "prod");
        let l: TaskList = serde_json::from_str(r#"{"Tasks":[{"Arn":"a","DesiredStatus":"RUNNING","KnownStatus":"RUNNING","Family":"web","Version":"1","Containers":[]},{"Arn":"b","DesiredStatus":"STOPPED","KnownStatus":"STOPPED","Family":"web","Version":"1"}]}"#).unwrap();
        assert_eq!(l.tasks.iter().filter(|t| t.is_live()).count(), 1);
    }

    #[test]
    fn cluster_arns_compare_by_name() {
        assert_eq!(
            cluster_name("arn:aws:ecs:us-east-1:123:cluster/prod"),
            "prod"
        );
        assert_eq!(cluster_name("prod"), "prod");
    }

    #[tokio::test]
    async fn oversized_answers_are_refused_as_they_stream() {
        use crate::sources::capped::test_server;
        let task = r#"{"Arn":"a","KnownStatus":"RUNNING","Containers":[]},"#;
        let mut tasks = br#"{"Tasks":["#.to_vec();
        while tasks.len() <= MAX_TASKS {
            tasks.extend_from_slice(task.as_bytes());
        }
        tasks.extend_from_slice(br#"{"Arn":"z"}]}"#);
        for content_length in [true, false] {
            let url = test_server::serve(tasks.clone(), content_length).await;
            let intro = Introspection::new(&url);
            match intro.tasks().await {
                Err(Unavailable::Other(e)) => assert!(e.contains("4 MiB limit"), "{e}"),
                other => panic!(
                    "content_length={content_length}: {:?}",
                    other.map(|t| t.len())
                ),
            }
            match intro.metadata().await {
                Err(Unavailable::Other(e)) => assert!(e.contains("64 KiB limit"), "{e}"),
                other => panic!("{other:?}"),
            }
        }
        let url = test_server::serve_unending(64 << 20).await;
        match Introspection::new(&url).tasks().await {
            Err(Unavailable::Other(e)) => assert!(e.contains("4 MiB limit"), "{e}"),
            other => panic!("{:?}", other.map(|t| t.len())),
        }
        let url = test_server::serve(
            br#"{"Tasks":[{"Arn":"a","KnownStatus":"RUNNING"}]}"#.to_vec(),
            false,
        )
        .await;
        assert_eq!(Introspection::new(&url).tasks().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn refused_connection_means_not_yet() {
        let intro = Introspection::new("http://127.0.0.1:1");
        assert!(matches!(
            intro.metadata().await,
            Err(Unavailable::NotListening)
        ));
    }
}
