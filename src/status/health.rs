//! How an instance is doing, in one word: what `ecs-boot status` computes on the instance (and
//! its exit code), and what `ecs-boot-fleet status` reads back from every instance's document,
//! adding the answers only the fleet can give (no answer, not reachable). One type for both, so
//! the word an instance prints is the word the fleet sorts and counts.

use serde::{Deserialize, Serialize};

/// In table order: what needs a human first. The JSON strings are part of both `--json`
/// documents (`status_schema`, `fleet_schema`): renaming one is an incompatible change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// ecs-boot reported a failed boot or drain, or stopped midway. Also what the fleet makes of
    /// a word it does not know (`from_instance`): a newer instance's health is never good news.
    Failed,
    /// Fleet only: the command ran but its output was not a status document.
    Error,
    /// Fleet only: asked, but no answer before the deadline.
    TimedOut,
    /// Fleet only: SSM agent not connected, or SSM could not deliver the command.
    Offline,
    /// Fleet only: not an SSM managed node.
    NoSsm,
    /// ecs-boot has never run there (no state file).
    NoState,
    InProgress,
    Healthy,
}

impl Health {
    pub const ALL: [Health; 8] = [
        Health::Failed,
        Health::Error,
        Health::TimedOut,
        Health::Offline,
        Health::NoSsm,
        Health::NoState,
        Health::InProgress,
        Health::Healthy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Failed => "failed",
            Health::Error => "error",
            Health::TimedOut => "timed_out",
            Health::Offline => "offline",
            Health::NoSsm => "no_ssm",
            Health::NoState => "no_state",
            Health::InProgress => "in_progress",
            Health::Healthy => "healthy",
        }
    }

    /// The words `ecs-boot status` itself prints; the others only the fleet can know.
    pub fn is_instance_word(self) -> bool {
        matches!(
            self,
            Health::Failed | Health::NoState | Health::InProgress | Health::Healthy
        )
    }

    /// An instance document's `health` value. Anything but a word an instance prints (a number,
    /// a misspelling, a newer word, or a fleet-only word an instance cannot know) is failed.
    pub fn from_instance(v: Option<&serde_json::Value>) -> Health {
        v.and_then(|v| Health::deserialize(v).ok())
            .filter(|h| h.is_instance_word())
            .unwrap_or(Health::Failed)
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_words_are_the_documented_ones() {
        let words: Vec<String> = Health::ALL
            .iter()
            .map(|h| serde_json::to_string(h).unwrap())
            .collect();
        assert_eq!(
            words,
            [
                "\"failed\"",
                "\"error\"",
                "\"timed_out\"",
                "\"offline\"",
                "\"no_ssm\"",
                "\"no_state\"",
                "\"in_progress\"",
                "\"healthy\""
            ]
        );
        for h in Health::ALL {
            assert_eq!(serde_json::to_string(&h).unwrap(), format!("\"{h}\""));
        }
        for h in [
            Health::Failed,
            Health::NoState,
            Health::InProgress,
            Health::Healthy,
        ] {
            assert_eq!(Health::from_instance(Some(&json!(h.as_str()))), h);
        }
    }

    #[test]
    fn anything_else_from_an_instance_reads_as_failed() {
        for v in [
            json!("sideways"),
            json!("Healthy"),
            json!(7),
            json!(null),
            json!({}),
            // Only the fleet can know these: an instance claiming one is not believed.
            json!("offline"),
            json!("no_ssm"),
            json!("timed_out"),
            json!("error"),
        ] {
            assert_eq!(Health::from_instance(Some(&v)), Health::Failed, "{v}");
        }
        assert_eq!(Health::from_instance(None), Health::Failed);
    }
}
