//! The error type of the autograd engine.

use std::fmt;

use core_tensor::TensorError;

/// What went wrong while recording or differentiating, naming the operation involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A tensor operation rejected its operands (shapes, geometry).
    Tensor(TensorError),
    /// Variables from two different tapes were combined.
    ForeignTape { op: &'static str },
    /// An operation needs a one-value tensor (a scalar) and got another shape.
    NotScalar { op: &'static str, shape: Vec<usize> },
    /// The graph does not have the structure an analysis needs (for example a parameter given to
    /// [`fn@crate::per_example`] that is used by something other than a convolution).
    Unsupported { op: &'static str, reason: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tensor(e) => e.fmt(f),
            Self::ForeignTape { op } => {
                write!(f, "{op}: the variables belong to different tapes")
            }
            Self::NotScalar { op, shape } => {
                write!(f, "{op}: expected a one-value tensor, got shape {shape:?}")
            }
            Self::Unsupported { op, reason } => write!(f, "{op}: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Tensor(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TensorError> for Error {
    fn from(e: TensorError) -> Self {
        Self::Tensor(e)
    }
}

/// Result of an autograd operation.
pub type Result<T> = std::result::Result<T, Error>;
