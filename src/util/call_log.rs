//! The calls an in-memory fake received, in order, for tests to assert on (the Auto Scaling
//! group, the ECS cluster): an invariant is observable only if every call is logged.

#[derive(Debug, Clone, Default)]
pub struct CallLog(Vec<String>);

impl CallLog {
    pub fn push(&mut self, call: impl Into<String>) {
        self.0.push(call.into());
    }

    pub fn all(&self) -> Vec<String> {
        self.0.clone()
    }

    /// How many calls start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.0.iter().filter(|c| c.starts_with(prefix)).count()
    }
}
