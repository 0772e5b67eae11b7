//! The run lock: one `missive run` at a time per ledger.
//!
//! The lock is an advisory OS file lock (`File::try_lock`, `flock` on Unix) on
//! `<ledger path>.lock`. The OS drops it when the process ends in any way, SIGKILL
//! included, so a crashed run never leaves a stale lock behind; the lock file itself stays
//! and holds the id of the last process that took it, for people.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{LedgerError, lock_path};

/// The exclusive run lock of a ledger; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of the ledger at `ledger`, or fails at once with
    /// [`LedgerError::Locked`] when another holder has it.
    pub fn acquire(ledger: &Path) -> Result<RunLock, LedgerError> {
        let path = lock_path(ledger);
        let io_failed = |source| LedgerError::LockFile {
            path: path.clone(),
            source,
        };
        // No truncation on open: the file may belong to a live holder.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_failed)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LedgerError::Locked {
                    path: ledger.to_owned(),
                });
            }
            Err(TryLockError::Error(source)) => return Err(io_failed(source)),
        }
        // Informational only: which process holds it.
        file.set_len(0).map_err(io_failed)?;
        writeln!(file, "{}", std::process::id()).map_err(io_failed)?;
        Ok(RunLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first makes it explicit.
        let _ = self.file.unlock();
    }
}
