//! The error type of the detector crate: every variant names the file or operation and what was
//! wrong with it, so a message can be shown to a user as it is.

use std::fmt;
use std::path::PathBuf;

use core_tensor::TensorError;

/// What went wrong while reading data, checkpoints or weights, or while running the detector.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call on a file failed (open, read, write, rename, fsync, ...).
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// What was being done, e.g. `"open"`, `"rename"`.
        op: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A file's contents break its format: wrong magic, truncated, inconsistent sizes, a bad
    /// checksum, values out of range, ...
    Format {
        /// The file (or the name given to a byte slice).
        file: String,
        /// What is wrong, in words.
        problem: String,
    },
    /// A checkpoint lacks a key, or holds it with another kind of value.
    Missing {
        /// The checkpoint file.
        file: String,
        /// The key that was asked for.
        key: String,
        /// The kind that was asked for (`"f32 tensor"`, `"u64"`, ...).
        expected: &'static str,
        /// The kind found under that key, if any.
        found: Option<&'static str>,
    },
    /// No data folder was given: neither `--data-dir` nor the `GRADCON_DATA` variable.
    DataDirUnset,
    /// An argument that the operation cannot work with.
    InvalidArgument {
        /// The operation.
        op: &'static str,
        /// Why the argument is refused.
        reason: String,
    },
    /// An option (of training, scoring or the command line) out of its range; `option` is
    /// named as the command line spells it, without the dashes.
    InvalidOption {
        /// The option, e.g. `"val-fraction"`.
        option: &'static str,
        /// The value given.
        value: String,
        /// What is accepted, e.g. `"a number in [0, 1)"`.
        expected: &'static str,
    },
    /// A rerun whose options or data differ from what its checkpoint, model file or results
    /// record.
    Pinned {
        /// The file that records the earlier run.
        file: String,
        /// Each difference, in the command line's words (`--lr was 0.001, now 0.01`).
        differences: Vec<String>,
    },
    /// Another process holds the lock of an output.
    Locked {
        /// The output.
        output: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// The training loss became NaN or infinite and no restarts were left.
    Diverged {
        /// The attempt (0 for the first).
        attempt: usize,
        /// Epoch (from 1) and step (batch, from 1) where it happened.
        epoch: usize,
        step: usize,
    },
    /// A training run was stopped through its [`crate::train::Cancel`] flag.
    Cancelled {
        /// Epochs completed (and checkpointed) in the current attempt.
        epoch: usize,
    },
    /// A tensor operation failed.
    Tensor(TensorError),
    /// A differentiation failed (a shape or geometry error inside the model).
    Autograd(autograd::Error),
}

impl Error {
    /// A [`Error::Format`] for `file`.
    pub fn format(file: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Format {
            file: file.into(),
            problem: problem.into(),
        }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// Whether the error is a misuse by the caller (an option out of range, a missing
    /// argument) rather than a failure while running: the CLI exits with 2 for these.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::InvalidOption { .. } | Self::DataDirUnset | Self::Pinned { .. }
        )
    }

    /// An [`Error::InvalidArgument`].
    pub fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            op,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, op, source } => {
                write!(f, "{}: {op} failed: {source}", path.display())
            }
            Self::Format { file, problem } => write!(f, "{file}: {problem}"),
            Self::Missing {
                file,
                key,
                expected,
                found: None,
            } => write!(f, "{file}: no {expected} named `{key}`"),
            Self::Missing {
                file,
                key,
                expected,
                found: Some(found),
            } => write!(f, "{file}: `{key}` is a {found}, expected a {expected}"),
            Self::DataDirUnset => f.write_str(
                "no data folder given: pass --data-dir DIR or set the environment variable \
                 GRADCON_DATA=DIR (a folder holding mnist/, fashion-mnist/ or \
                 cifar-10-batches-bin/; data/fetch.sh downloads them)",
            ),
            Self::InvalidArgument { op, reason } => write!(f, "{op}: {reason}"),
            Self::InvalidOption {
                option,
                value,
                expected,
            } => write!(f, "--{option} {value}: expected {expected}"),
            Self::Pinned { file, differences } => write!(
                f,
                "{file} records an earlier run with other inputs: {}; rerun with the same \
                 options and data to resume it, or pass --fresh to start over",
                differences.join("; ")
            ),
            Self::Locked { output, lock } => write!(
                f,
                "{}: another gradcon process is writing it (it holds {}); wait for it to \
                 finish or stop it",
                output.display(),
                lock.display()
            ),
            Self::Diverged {
                attempt,
                epoch,
                step,
            } => write!(
                f,
                "the training loss became NaN or infinite at epoch {epoch}, step {step} of \
                 attempt {attempt}, with no restarts left (--restarts); try a smaller --lr"
            ),
            Self::Cancelled { epoch } => {
                write!(f, "training cancelled after {epoch} completed epochs")
            }
            Self::Tensor(e) => e.fmt(f),
            Self::Autograd(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Tensor(e) => Some(e),
            Self::Autograd(e) => Some(e),
            _ => None,
        }
    }
}

impl From<autograd::Error> for Error {
    fn from(e: autograd::Error) -> Self {
        Self::Autograd(e)
    }
}

impl From<TensorError> for Error {
    fn from(e: TensorError) -> Self {
        Self::Tensor(e)
    }
}

/// Result of a detector operation.
pub type Result<T> = std::result::Result<T, Error>;
