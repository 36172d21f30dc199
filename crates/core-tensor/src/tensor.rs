//! [`Tensor<T>`]: owned, contiguous, row-major storage with a shape.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::element::{Binary, Unary};
use crate::{Element, Isa, Result, Rng, TensorError};

/// A dense row-major tensor that owns its values.
///
/// Reshaping consumes the tensor and keeps its buffer (no copy). Elementwise methods run on the
/// detected SIMD path ([`Isa::detect`]); the `crate::ops`-level functions take the path
/// explicitly.
///
/// ```
/// use core_tensor::Tensor;
/// let a = Tensor::<f32>::from_vec(vec![1.0, -2.0, 3.0, -4.0], &[2, 2]).unwrap();
/// let r = a.relu();
/// assert_eq!(r.data(), &[1.0, 0.0, 3.0, 0.0]);
/// assert_eq!(r.reshape(&[4]).unwrap().shape(), &[4]);
/// ```
pub struct Tensor<T: Element> {
    data: Vec<T>,
    shape: Vec<usize>,
    /// Names the values: a new id for every new tensor and after every mutable access, and the
    /// same id for a clone (whose values are the same). Kernels cache what they derive from a
    /// tensor's values (packed weight panels) under it; ids are never reused.
    id: u64,
}

/// A content id no tensor has had before.
fn fresh_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl<T: Element> PartialEq for Tensor<T> {
    /// Equal shapes and values (the content ids play no part).
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.data == other.data
    }
}

impl<T: Element> Clone for Tensor<T> {
    /// A copy of the values, under the same content id.
    fn clone(&self) -> Self {
        let mut data = crate::pool::for_overwrite(self.data.len());
        data.copy_from_slice(&self.data);
        Self {
            data,
            shape: self.shape.clone(),
            id: self.id,
        }
    }
}

impl<T: Element> Drop for Tensor<T> {
    /// Large buffers go back to this thread's [`pool`](crate::pool) for the next tensor.
    fn drop(&mut self) {
        crate::pool::recycle(std::mem::take(&mut self.data));
    }
}

impl<T: Element> std::fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 8;
        write!(f, "Tensor<{}>{:?} [", T::NAME, self.shape)?;
        for (i, v) in self.data.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{v}")?;
        }
        if self.data.len() > SHOWN {
            write!(f, ", ... ({} values)", self.data.len())?;
        }
        f.write_str("]")
    }
}

impl<T: Element> Tensor<T> {
    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, T::ZERO)
    }

    /// A tensor with every value `v`.
    pub fn full(shape: &[usize], v: T) -> Self {
        let mut data = crate::pool::zeroed(shape.iter().product());
        if bytemuck::bytes_of(&v).iter().any(|&b| b != 0) {
            data.fill(v);
        }
        Self {
            data,
            shape: shape.to_vec(),
            id: fresh_id(),
        }
    }

    /// A tensor whose values the caller overwrites, every one of them, before reading any: a
    /// recycled buffer keeps its previous values (no zeroing pass).
    pub(crate) fn for_overwrite(shape: &[usize]) -> Self {
        Self {
            data: crate::pool::for_overwrite(shape.iter().product()),
            shape: shape.to_vec(),
            id: fresh_id(),
        }
    }

    /// A rank-0 tensor holding one value.
    pub fn scalar(v: T) -> Self {
        Self {
            data: vec![v],
            shape: Vec::new(),
            id: fresh_id(),
        }
    }

    /// Wraps `data` (row-major) with `shape`; the lengths must agree.
    pub fn from_vec(data: Vec<T>, shape: &[usize]) -> Result<Self> {
        if data.len() != shape.iter().product::<usize>() {
            return Err(TensorError::LengthMismatch {
                op: "Tensor::from_vec",
                shape: shape.to_vec(),
                len: data.len(),
            });
        }
        Ok(Self {
            data,
            shape: shape.to_vec(),
            id: fresh_id(),
        })
    }

    /// Values drawn uniformly from `[low, high)`, in row-major order from `rng`.
    pub fn uniform(shape: &[usize], low: f64, high: f64, rng: &mut Rng) -> Self {
        let n = shape.iter().product();
        let data = (0..n)
            .map(|_| T::from_f64(low + (high - low) * rng.next_f64()))
            .collect();
        Self {
            data,
            shape: shape.to_vec(),
            id: fresh_id(),
        }
    }

    /// Standard normal values scaled by `std`, in row-major order from `rng`.
    pub fn normal(shape: &[usize], std: f64, rng: &mut Rng) -> Self {
        let n = shape.iter().product();
        let data = (0..n).map(|_| T::from_f64(std * rng.normal())).collect();
        Self {
            data,
            shape: shape.to_vec(),
            id: fresh_id(),
        }
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The values, row-major.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The values, row-major, mutable (the tensor gets a new content id).
    pub fn data_mut(&mut self) -> &mut [T] {
        self.id = fresh_id();
        &mut self.data
    }

    /// The content id: equal ids mean equal values (see the field's documentation).
    pub(crate) fn content_id(&self) -> u64 {
        self.id
    }

    /// Gives up the buffer.
    pub fn into_vec(mut self) -> Vec<T> {
        std::mem::take(&mut self.data)
    }

    /// The values as bytes in native endianness (for hashing or zero-copy I/O).
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.data)
    }

    /// The same values with a new shape of equal size; no copy.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Self> {
        if shape.iter().product::<usize>() != self.data.len() {
            return Err(TensorError::ShapeMismatch {
                op: "reshape",
                lhs: std::mem::take(&mut self.shape),
                rhs: shape.to_vec(),
            });
        }
        self.shape = shape.to_vec();
        Ok(self)
    }

    /// The only value of a one-element tensor.
    pub fn to_scalar(&self) -> Result<T> {
        match self.data.as_slice() {
            [v] => Ok(*v),
            _ => Err(TensorError::InvalidShape {
                op: "to_scalar",
                shape: self.shape.clone(),
                expected: "exactly one value".into(),
            }),
        }
    }

    /// The four dimensions of an NCHW tensor, or an error naming `op`.
    pub fn dims4(&self, op: &'static str) -> Result<[usize; 4]> {
        match self.shape[..] {
            [n, c, h, w] => Ok([n, c, h, w]),
            _ => Err(TensorError::InvalidShape {
                op,
                shape: self.shape.clone(),
                expected: "rank 4 (N, C, H, W)".into(),
            }),
        }
    }

    /// Converts every value to another element type.
    pub fn cast<U: Element>(&self) -> Tensor<U> {
        Tensor {
            data: self.data.iter().map(|v| U::from_f64(v.to_f64())).collect(),
            shape: self.shape.clone(),
            id: fresh_id(),
        }
    }

    /// The largest absolute difference from `other` (shapes must match).
    pub fn max_abs_diff(&self, other: &Self) -> Result<f64> {
        self.check_same("max_abs_diff", other)?;
        Ok(self
            .data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| (a.to_f64() - b.to_f64()).abs())
            .fold(0.0, f64::max))
    }

    fn check_same(&self, op: &'static str, other: &Self) -> Result<()> {
        if self.shape != other.shape {
            return Err(TensorError::ShapeMismatch {
                op,
                lhs: self.shape.clone(),
                rhs: other.shape.clone(),
            });
        }
        Ok(())
    }

    fn map_unary(&self, op: Unary) -> Self {
        let mut out = Self::for_overwrite(&self.shape);
        T::unary(Isa::detect(), op, &self.data, &mut out.data);
        out
    }

    fn map_binary(&self, op: Binary, name: &'static str, other: &Self) -> Result<Self> {
        self.check_same(name, other)?;
        let mut out = Self::for_overwrite(&self.shape);
        T::binary(Isa::detect(), op, &self.data, &other.data, &mut out.data);
        Ok(out)
    }

    /// `self + other`, same shapes.
    pub fn add(&self, other: &Self) -> Result<Self> {
        self.map_binary(Binary::Add, "add", other)
    }
    /// `self - other`, same shapes.
    pub fn sub(&self, other: &Self) -> Result<Self> {
        self.map_binary(Binary::Sub, "sub", other)
    }
    /// `self * other` elementwise, same shapes.
    pub fn mul(&self, other: &Self) -> Result<Self> {
        self.map_binary(Binary::Mul, "mul", other)
    }
    /// `self / other` elementwise, same shapes.
    pub fn div(&self, other: &Self) -> Result<Self> {
        self.map_binary(Binary::Div, "div", other)
    }
    /// `self` where `mask > 0`, else 0: ReLU's backward with `self` the incoming gradient.
    pub fn relu_backward(&self, mask: &Self) -> Result<Self> {
        self.map_binary(Binary::ReluBackward, "relu_backward", mask)
    }
    /// `self * s (1 - s)`: the sigmoid's backward with `self` the incoming gradient and `s` the
    /// sigmoid's output, same shapes.
    pub fn sigmoid_backward(&self, s: &Self) -> Result<Self> {
        self.map_binary(Binary::SigmoidBackward, "sigmoid_backward", s)
    }
    /// `alpha * self`.
    pub fn scale(&self, alpha: T) -> Self {
        let mut out = Self::for_overwrite(&self.shape);
        T::scale(Isa::detect(), alpha, &self.data, &mut out.data);
        out
    }
    /// `f` of every value (in parallel for large tensors; no SIMD path).
    pub fn map(&self, f: impl Fn(T) -> T + Sync) -> Self {
        use rayon::prelude::*;
        let mut out = Self::for_overwrite(&self.shape);
        let apply = |(src, dst): (&[T], &mut [T])| {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = f(s);
            }
        };
        let chunk = crate::simd::REDUCE_CHUNK;
        if self.len() >= crate::simd::PAR_MAP_MIN {
            self.data
                .par_chunks(chunk)
                .zip(out.data.par_chunks_mut(chunk))
                .for_each(apply);
        } else {
            apply((&self.data, &mut out.data));
        }
        out
    }
    /// `self += alpha * x`, same shapes.
    pub fn axpy(&mut self, alpha: T, x: &Self) -> Result<()> {
        self.check_same("axpy", x)?;
        self.id = fresh_id();
        T::axpy(Isa::detect(), alpha, &x.data, &mut self.data);
        Ok(())
    }
    /// `-self`.
    pub fn neg(&self) -> Self {
        self.map_unary(Unary::Neg)
    }
    /// `self^2`.
    pub fn square(&self) -> Self {
        self.map_unary(Unary::Square)
    }
    /// `sqrt(self)`.
    pub fn sqrt(&self) -> Self {
        self.map_unary(Unary::Sqrt)
    }
    /// `e^self`.
    pub fn exp(&self) -> Self {
        self.map_unary(Unary::Exp)
    }
    /// `max(self, 0)`.
    pub fn relu(&self) -> Self {
        self.map_unary(Unary::Relu)
    }
    /// `1` where `self > 0`, else `0`.
    pub fn relu_mask(&self) -> Self {
        self.map_unary(Unary::ReluMask)
    }
    /// `1 / (1 + e^-self)`.
    pub fn sigmoid(&self) -> Self {
        self.map_unary(Unary::Sigmoid)
    }
    /// Sum of every value (fixed-order chunks: independent of the thread count).
    pub fn sum(&self) -> T {
        T::sum_slice(Isa::detect(), &self.data)
    }
    /// `sum_i self[i] * other[i]`, same shapes.
    pub fn dot(&self, other: &Self) -> Result<T> {
        self.check_same("dot", other)?;
        Ok(T::dot_slice(Isa::detect(), &self.data, &other.data))
    }
    /// `sum_i self[i]^2`.
    pub fn sum_sq(&self) -> T {
        T::dot_slice(Isa::detect(), &self.data, &self.data)
    }
}
