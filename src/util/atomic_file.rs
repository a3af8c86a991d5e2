//! Atomic file replacement: a temp file in the same directory, renamed over the target, so a
//! reader (ecs-init, `gate`, `status`) sees the old bytes or the new ones, never a mix.

use crate::util::paths::parent_dir;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
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
    if already_written(path, content) {
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

/// Whether `path` is already exactly what a write would leave: a regular file (not a symlink:
/// never followed, it is replaced by the rename), mode 0600, owned by root:root when we run as
/// root (else by us), holding `content`. Anything else is rewritten through the atomic path;
/// chmod or chown in place would act on a link's target.
fn already_written(path: &Path, content: &[u8]) -> bool {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    let euid = nix::unistd::geteuid();
    let owner_ok = if euid.is_root() {
        meta.uid() == 0 && meta.gid() == 0
    } else {
        meta.uid() == euid.as_raw()
    };
    if !meta.file_type().is_file()
        || meta.mode() & 0o7777 != 0o600
        || !owner_ok
        || meta.len() != content.len() as u64
    {
        return false;
    }
    // O_NOFOLLOW: if a link replaced the file since the lstat, the open fails instead.
    let Ok(f) = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
    else {
        return false;
    };
    let mut current = Vec::with_capacity(content.len());
    f.take(content.len() as u64 + 1)
        .read_to_end(&mut current)
        .is_ok()
        && current == content
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn a_symlink_with_the_same_content_is_replaced_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        fs::write(&target, b"A=1\n").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        let path = dir.path().join("ecs.config");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert_eq!(
            write_atomic(&path, b"A=1\n").unwrap(),
            WriteOutcome::Written
        );
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(
            meta.file_type().is_file(),
            "the link is gone, a regular file is in its place"
        );
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"A=1\n");
        assert_eq!(
            fs::metadata(&target).unwrap().mode() & 0o7777,
            0o644,
            "target not chmodded"
        );
        assert_eq!(
            write_atomic(&path, b"A=1\n").unwrap(),
            WriteOutcome::Unchanged
        );
    }

    #[test]
    fn a_loosened_mode_or_foreign_owner_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ecs.config");
        write_atomic(&path, b"A=1\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o4644)).unwrap();
        let inode = fs::metadata(&path).unwrap().ino();
        assert_eq!(
            write_atomic(&path, b"A=1\n").unwrap(),
            WriteOutcome::Written
        );
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_ne!(
            meta.ino(),
            inode,
            "replaced by rename, not chmodded in place"
        );
        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(&path, Some(1000.into()), Some(1000.into())).unwrap();
            assert_eq!(
                write_atomic(&path, b"A=1\n").unwrap(),
                WriteOutcome::Written
            );
            let meta = fs::metadata(&path).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid(), meta.mode() & 0o7777),
                (0, 0, 0o600)
            );
        }
    }
}
