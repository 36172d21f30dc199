//! File-system helpers every writer and reader of the crate goes through: atomic writes that
//! never leave a half-written file under the target name, and whole-file reads whose errors
//! name the file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, "read", e))
}

/// Writes `bytes` to `path` so that `path` holds either its old contents or all of `bytes`,
/// even across a crash: write a temporary file in the same folder, fsync it, rename it over
/// `path`, fsync the folder (so the rename itself is durable).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let file_name = path.file_name().ok_or_else(|| {
        Error::invalid("write_atomic", format!("{} names no file", path.display()))
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, "create", e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io(&tmp, "write", e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, "fsync", e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, "rename", e))
    })();
    if result.is_err() {
        // Best effort: the temporary file is useless now; the original error is what matters.
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    sync_dir(&dir)
}

/// Makes a rename inside `dir` durable (directories can be fsynced on Unix only).
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, "fsync", e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
