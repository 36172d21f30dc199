//! File-system helpers every writer and reader of the crate goes through: atomic writes that
//! never leave a half-written file under the target name, whole-file reads bounded by
//! [`Limits`] whose errors name the file, and exclusive locks on outputs.
//!
//! # Limits
//!
//! Every input is bounded before it is allocated: a regular file larger than
//! [`Limits::max_file_bytes`] is refused from its size, any other input (a pipe, a device such
//! as `/dev/zero`) is read up to the limit and refused past it; a load whose decoded or resized
//! pixels would exceed [`Limits::max_pixels`] values is refused before the pixels are
//! allocated. The defaults (1 GiB per file, 2^30 pixel values) admit the full CIFAR-10 (60,000
//! images of 3x32x32: 184 MB) and folders of 50,000 images at the model's 3x28x28 (118 MB);
//! the CLI raises them with `--max-file-mb` and `--max-megapixels`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Bounds on what one process reads (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest input file, in bytes.
    pub max_file_bytes: u64,
    /// Most pixel values (8-bit, every channel counted) one load may decode or resize to.
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 1 << 30,
            max_pixels: 1 << 30,
        }
    }
}

static MAX_FILE_BYTES: AtomicU64 = AtomicU64::new(1 << 30);
static MAX_PIXELS: AtomicU64 = AtomicU64::new(1 << 30);

impl Limits {
    /// The limits in force in this process.
    pub fn current() -> Self {
        Self {
            max_file_bytes: MAX_FILE_BYTES.load(Ordering::Relaxed),
            max_pixels: MAX_PIXELS.load(Ordering::Relaxed),
        }
    }

    /// Puts these limits in force for the whole process (both must be at least 1).
    pub fn install(self) -> Result<()> {
        for (option, v) in [
            ("max-file-mb", self.max_file_bytes),
            ("max-megapixels", self.max_pixels),
        ] {
            if v == 0 {
                return Err(Error::InvalidOption {
                    option,
                    value: "0".into(),
                    expected: "at least 1",
                });
            }
        }
        MAX_FILE_BYTES.store(self.max_file_bytes, Ordering::Relaxed);
        MAX_PIXELS.store(self.max_pixels, Ordering::Relaxed);
        Ok(())
    }

    /// An error unless `values` pixel values fit in [`Limits::max_pixels`]; `what` names the
    /// input (a file, or the operation).
    pub fn check_pixels(what: &str, values: u128) -> Result<()> {
        let max = Self::current().max_pixels;
        if values > u128::from(max) {
            return Err(Error::format(
                what,
                format!(
                    "{values} pixel values exceed the limit of {max} \
                     (raise it with --max-megapixels)"
                ),
            ));
        }
        Ok(())
    }
}

fn too_big(path: &Path, size: String, max: u64) -> Error {
    Error::format(
        path.display().to_string(),
        format!("{size} exceeds the input limit of {max} bytes (raise it with --max-file-mb)"),
    )
}

/// Opens a file to read in parts, naming it in the error, within [`Limits::max_file_bytes`]:
/// a regular file larger than the limit is refused here, and any other stops being read one
/// byte past it (a reader of a fixed format then finds it too long or truncated). Returns the
/// reader and the file's size (`None` for a stream).
pub fn open_file(path: &Path) -> Result<(std::io::Take<File>, Option<u64>)> {
    let max = Limits::current().max_file_bytes;
    let file = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, "stat", e))?;
    if meta.is_dir() {
        // An I/O error, as opening it for reading is on other systems.
        let folder = std::io::Error::new(std::io::ErrorKind::IsADirectory, "a folder, not a file");
        return Err(Error::io(path, "open", folder));
    }
    if meta.is_file() && meta.len() > max {
        return Err(too_big(
            path,
            format!("its size of {} bytes", meta.len()),
            max,
        ));
    }
    let size = meta.is_file().then_some(meta.len());
    Ok((file.take(max.saturating_add(1)), size))
}

/// Reads a whole file, naming it in the error, within [`Limits::max_file_bytes`].
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let (mut file, size) = open_file(path)?;
    let mut bytes = Vec::with_capacity(size.unwrap_or(0) as usize);
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, "read", e))?;
    let max = Limits::current().max_file_bytes;
    if bytes.len() as u64 > max {
        return Err(too_big(path, "the stream read from it".into(), max));
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` so that `path` holds either its old contents or all of `bytes`,
/// even across a crash: write a temporary file in the same folder, fsync it, rename it over
/// `path`, fsync the folder (so the rename itself is durable).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)
        .map_err(|e| Error::io(&file.tmp, "write", e))?;
    file.commit()
}

/// A file written in parts that appears at its path only when complete, as [`write_atomic`]
/// writes one: the parts go to a temporary file in the same folder (buffered), and
/// [`AtomicFile::commit`] fsyncs it, renames it over the path and fsyncs the folder. Dropped
/// without a commit (an error on the way), the temporary file is removed and the path keeps
/// its old contents.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: PathBuf,
    path: PathBuf,
    file: Option<std::io::BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `path`.
    pub fn create(path: &Path) -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let file_name = path.file_name().ok_or_else(|| {
            Error::invalid("write_atomic", format!("{} names no file", path.display()))
        })?;
        let tmp = parent_dir(path).join(format!(
            ".{}.tmp-{}-{}",
            file_name.to_string_lossy(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, "create", e))?;
        Ok(Self {
            tmp,
            path: path.to_path_buf(),
            file: Some(std::io::BufWriter::with_capacity(1 << 16, file)),
        })
    }

    /// The temporary file's path (for error messages about writing to it).
    pub fn temporary_path(&self) -> &Path {
        &self.tmp
    }

    /// Makes the file appear at its path, complete.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("not yet committed");
        let file = file
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, "write", e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io(&self.tmp, "fsync", e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, "rename", e))?;
        sync_dir(&parent_dir(&self.path))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().expect("not yet committed").write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("not yet committed").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Best effort: the temporary file is useless now; the error that stopped the
            // write is what the caller reports.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
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

/// An exclusive lock on an output, held until dropped: an OS file lock on a hidden file
/// `.NAME.lock` beside the output, which the OS releases when the process dies, so a killed
/// run never leaves a lock that blocks the next. The lock file itself is removed on drop.
///
/// Locks of network file systems may not hold (NFS without a lock daemon, some FUSE file
/// systems): there, run each output's writer on one machine.
#[derive(Debug)]
pub struct OutputLock {
    file: File,
    path: PathBuf,
}

impl OutputLock {
    /// Locks `output` (a file that may not exist yet), or says which process-held lock stops
    /// it. Stale temporary files of earlier atomic writes to `output` are removed once the
    /// lock is held (no other writer of it can exist then).
    pub fn acquire(output: &Path) -> Result<Self> {
        let path = sidecar(output, "lock")?;
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io(&path, "create", e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::Locked {
                        output: output.to_path_buf(),
                        lock: path,
                    })
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, "lock", e)),
            }
            // The holder before us removes the file before it unlocks: if ours was removed
            // meanwhile, lock the file now under the name instead.
            if same_file(&file, &path) {
                remove_stale_temporaries(output)?;
                return Ok(Self { file, path });
            }
        }
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Remove the file while the lock is still held, so no other process locks a file
        // that is about to vanish; then the lock goes with the handle.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Whether `path` still names the file open as `file`.
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// `DIR/.NAME.EXT` for `DIR/NAME`.
fn sidecar(output: &Path, ext: &str) -> Result<PathBuf> {
    let name = output
        .file_name()
        .ok_or_else(|| Error::invalid("lock", format!("{} names no file", output.display())))?;
    Ok(parent_dir(output).join(format!(".{}.{ext}", name.to_string_lossy())))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Removes `path` if it exists (a missing file is not an error).
pub fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, "remove", e)),
    }
}

/// Removes `.NAME.tmp-*` files that atomic writes to `path` left when killed mid-write.
pub fn remove_stale_temporaries(path: &Path) -> Result<()> {
    let Some(name) = path.file_name() else {
        return Ok(());
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let dir = parent_dir(path);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(()); // no folder yet: nothing left over
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let p = entry.path();
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, "remove", e))?;
        }
    }
    Ok(())
}
