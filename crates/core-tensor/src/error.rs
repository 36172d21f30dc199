//! The error type of every fallible tensor operation.

use std::fmt;

use crate::Isa;

/// What went wrong in a tensor operation, naming the operation and the shapes involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorError {
    /// Two operands whose shapes must agree do not.
    ShapeMismatch {
        op: &'static str,
        lhs: Vec<usize>,
        rhs: Vec<usize>,
    },
    /// A tensor does not have the rank or layout an operation needs.
    InvalidShape {
        op: &'static str,
        shape: Vec<usize>,
        expected: String,
    },
    /// A buffer's length disagrees with the shape it is given.
    LengthMismatch {
        op: &'static str,
        shape: Vec<usize>,
        len: usize,
    },
    /// Convolution geometry that describes no valid output (zero stride, kernel larger than the
    /// padded input, output padding not below the stride, ...).
    InvalidGeometry {
        op: &'static str,
        input: Vec<usize>,
        weight: Vec<usize>,
        reason: String,
    },
    /// A SIMD path was named that this CPU cannot run.
    IsaUnavailable(Isa),
}

impl fmt::Display for TensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShapeMismatch { op, lhs, rhs } => {
                write!(f, "{op}: shapes {lhs:?} and {rhs:?} do not match")
            }
            Self::InvalidShape {
                op,
                shape,
                expected,
            } => write!(f, "{op}: got shape {shape:?}, expected {expected}"),
            Self::LengthMismatch { op, shape, len } => write!(
                f,
                "{op}: shape {shape:?} holds {} values but {len} were given",
                shape.iter().product::<usize>()
            ),
            Self::InvalidGeometry {
                op,
                input,
                weight,
                reason,
            } => write!(f, "{op}: input {input:?}, weight {weight:?}: {reason}"),
            Self::IsaUnavailable(isa) => write!(f, "the {isa} kernels cannot run on this CPU"),
        }
    }
}

impl std::error::Error for TensorError {}

/// Result of a tensor operation.
pub type Result<T> = std::result::Result<T, TensorError>;

// Here rather than in `isa`, so that `isa` needs nothing of this module.
impl Isa {
    /// `self` if the CPU supports it, otherwise the error a caller can report.
    pub fn checked(self) -> Result<Isa> {
        if self.is_supported() {
            Ok(self)
        } else {
            Err(TensorError::IsaUnavailable(self))
        }
    }
}
