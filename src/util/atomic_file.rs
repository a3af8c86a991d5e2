//! Atomic file replacement: a temp file in the same directory, renamed over the target, so a
//! reader (ecs-init, `gate`, `status`) sees the old bytes or the new ones, never a mix.

use crate::util::paths::parent_dir;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum WriteError {
    #[error("cannot write {path}: {source} (the previous file is left as it was)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// Same bytes already on disk: the file (and its mtime) is left untouched.
    Unchanged,
}

/// Writes `content` to `path` atomically with mode 0600: temp file in the same directory, fsync,
/// rename, fsync of the directory. On any error the old file is intact.
pub fn write_atomic(path: &Path, content: &[u8]) -> Result<WriteOutcome, WriteError> {
    write_file(path, content, Durability::Fsync)
}

/// How far a write must go before it counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Survives power loss: fsync of the file and of its directory (ecs.config).
    Fsync,
    /// Survives a crash of the process (rename is atomic), not power loss: for records that are
    /// only meaningful within the current boot anyway (the state file).
    RenameOnly,
}

pub fn write_file(
    path: &Path,
    content: &[u8],
    durability: Durability,
) -> Result<WriteOutcome, WriteError> {
    let io = |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(current) = fs::read(path)
        && current == content
    {
        // Tighten a loosened mode without touching content or mtime.
        let perms = fs::metadata(path).map_err(io)?.permissions();
        if perms.mode() & 0o777 != 0o600 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        return Ok(WriteOutcome::Unchanged);
    }
    let dir = parent_dir(path);
    fs::create_dir_all(dir).map_err(io)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale_temps(dir, &file_name);
    let tmp = dir.join(format!(".{file_name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(content)?;
        if nix::unistd::geteuid().is_root() {
            nix::unistd::fchown(&f, Some(0.into()), Some(0.into()))
                .map_err(std::io::Error::from)?;
        }
        if durability == Durability::Fsync {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        match durability {
            Durability::Fsync => File::open(dir)?.sync_all(),
            Durability::RenameOnly => Ok(()),
        }
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(WriteOutcome::Written)
}

/// A crash between create and rename leaves a temp file behind; the next write clears it.
fn remove_stale_temps(dir: &Path, file_name: &str) {
    let prefix = format!(".{file_name}.tmp.");
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}
