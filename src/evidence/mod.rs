//! Node evidence: what survives a failed instance. The flight recorder (recorder.rs) uploads a
//! failed boot's state, logs and masked ecs.config to S3 before the instance is replaced.
//!
//! The last recording is kept in `evidence.json` beside the state file, whoever made it (the
//! daemon or `ecs-boot status --upload` in another process, which must not rewrite the daemon's
//! state file under it), and `status` shows it as `state.evidence`.

pub mod collect;
pub mod recorder;
pub mod redact;
pub mod upload;

use crate::status::state::{EvidenceRecord, State};
use crate::util::paths::Paths;

pub use recorder::{Recording, Trigger};

/// Largest evidence.json read back: a record is a few hundred bytes.
const RECORD_CAP: u64 = 16 << 10;

pub fn record_file(paths: &Paths) -> std::path::PathBuf {
    paths.state_dir().join("evidence.json")
}

/// Writes the record atomically; a failure is logged, never fatal.
pub fn save(paths: &Paths, record: &EvidenceRecord) {
    let json = serde_json::to_vec(record).expect("a record serializes");
    if let Err(e) = crate::util::atomic_file::write_file(
        &record_file(paths),
        &json,
        crate::util::atomic_file::Durability::RenameOnly,
    ) {
        tracing::warn!(error = %e, "cannot keep the evidence record");
    }
}

/// The last recording made on this instance, if any.
pub fn load(paths: &Paths) -> Option<EvidenceRecord> {
    let path = record_file(paths);
    let len = std::fs::metadata(&path).ok()?.len();
    if len > RECORD_CAP {
        return None;
    }
    serde_json::from_slice(&std::fs::read(&path).ok()?).ok()
}

/// Puts the newest recording into `state` (for status).
pub fn merge_latest(paths: &Paths, state: &mut State) {
    if let Some(r) = load(paths)
        && state.evidence.as_ref().is_none_or(|e| e.at < r.at)
    {
        state.evidence = Some(r);
    }
}
