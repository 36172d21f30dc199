//! Antialiasing Lanczos-3 resampling of 8-bit planes, bit-exact with PIL's
//! `Image.resize(size, Image.LANCZOS)` (the protocol resizes CIFAR-10 from 32x32 to 28x28 so).
//!
//! For an output coordinate `o` of an axis scaled by `s = in / out`, the filter is widened by
//! `f = max(s, 1)` so that downscaling also low-passes:
//!
//! ```text
//! center = (o + 0.5) * s,   support = 3 f
//! lo = max(0, trunc(center - support + 0.5)),   hi = min(in, trunc(center + support + 0.5))
//! w_i = L((i - center + 0.5) / f)  for i in lo..hi,    L(x) = sinc(x) sinc(x/3) on [-3, 3)
//! ```
//!
//! The weights are normalised to sum 1 and stored as fixed-point integers with 22 fraction bits
//! (`round_half_away(w * 2^22)`); each output is `clamp((2^21 + sum_i w_i p_i) >> 22, 0, 255)`.
//! The image goes through a horizontal pass, is stored as u8, then through a vertical pass, as
//! PIL does; an axis whose size does not change is left alone. `sin` comes from the platform's
//! math library, as in PIL, so the weights agree to the last bit.

use crate::error::{Error, Result};

/// Fraction bits of the fixed-point weights: 32 bits less 8 for the pixel and 2 for headroom.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Lanczos-3 window's half-width in input pixels at scale 1.
const LANCZOS_SUPPORT: f64 = 3.0;

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

/// `sinc(x) sinc(x/3)` on `[-3, 3)`, 0 elsewhere.
fn lanczos3(x: f64) -> f64 {
    if (-3.0..3.0).contains(&x) {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

/// The taps of one axis: for every output coordinate, the first input index, the number of
/// inputs it reads, and `ksize` fixed-point weights (zero past the count).
struct Taps {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i64>,
}

impl Taps {
    fn new(in_size: usize, out_size: usize) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = LANCZOS_SUPPORT * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let inv = 1.0 / filterscale;
        let mut bounds = Vec::with_capacity(out_size);
        let mut weights = vec![0i64; out_size * ksize];
        let mut w = vec![0.0f64; ksize];
        for o in 0..out_size {
            let center = (o as f64 + 0.5) * scale;
            // `as i64` truncates toward zero, like C's `(int)` cast.
            let lo = ((center - support + 0.5) as i64).max(0);
            let hi = ((center + support + 0.5) as i64).min(in_size as i64);
            let count = (hi - lo).clamp(0, ksize as i64) as usize;
            let lo = lo as usize;
            let mut sum = 0.0;
            for (i, wi) in w.iter_mut().enumerate().take(count) {
                *wi = lanczos3(((i + lo) as f64 - center + 0.5) * inv);
                sum += *wi;
            }
            let row = &mut weights[o * ksize..(o + 1) * ksize];
            for (fixed, &wi) in row.iter_mut().zip(&w[..count]) {
                let wi = if sum != 0.0 { wi / sum } else { wi };
                let scaled = wi * f64::from(1u32 << PRECISION_BITS);
                // Round half away from zero, then truncate: PIL's `(int)(+-0.5 + w * 2^22)`.
                *fixed = if scaled < 0.0 {
                    (scaled - 0.5) as i64
                } else {
                    (scaled + 0.5) as i64
                };
            }
            bounds.push((lo, count));
        }
        Self {
            ksize,
            bounds,
            weights,
        }
    }

    /// The fixed-point sum of `read(i)` over the taps of output `o`, rounded and clamped to u8.
    #[inline]
    fn apply(&self, o: usize, read: impl Fn(usize) -> u8) -> u8 {
        let (lo, count) = self.bounds[o];
        let k = &self.weights[o * self.ksize..o * self.ksize + count];
        let mut acc: i64 = 1 << (PRECISION_BITS - 1);
        for (i, &w) in k.iter().enumerate() {
            acc += i64::from(read(lo + i)) * w;
        }
        if acc >= 255i64 << PRECISION_BITS {
            255
        } else if acc <= 0 {
            0
        } else {
            (acc >> PRECISION_BITS) as u8
        }
    }
}

/// Resizes one row-major `height x width` u8 plane to `out_height x out_width` with PIL's
/// antialiasing Lanczos-3 filter (see the module documentation for the formula).
///
/// ```
/// use detector::data::resize::resize_lanczos;
/// let flat = vec![77u8; 32 * 32];
/// let small = resize_lanczos(&flat, 32, 32, 28, 28).unwrap();
/// assert!(small.iter().all(|&v| v == 77)); // the weights sum to one
/// ```
pub fn resize_lanczos(
    src: &[u8],
    height: usize,
    width: usize,
    out_height: usize,
    out_width: usize,
) -> Result<Vec<u8>> {
    resize_lanczos_planes(src, 1, height, width, out_height, out_width)
}

/// Resizes `channels` consecutive row-major planes (CHW layout) each with [`resize_lanczos`].
pub fn resize_lanczos_planes(
    src: &[u8],
    channels: usize,
    height: usize,
    width: usize,
    out_height: usize,
    out_width: usize,
) -> Result<Vec<u8>> {
    const OP: &str = "resize_lanczos";
    if height == 0 || width == 0 || out_height == 0 || out_width == 0 {
        return Err(Error::invalid(
            OP,
            format!("cannot resize {height}x{width} to {out_height}x{out_width}: empty size"),
        ));
    }
    let plane = height
        .checked_mul(width)
        .ok_or_else(|| Error::invalid(OP, format!("{height}x{width} overflows")))?;
    if Some(src.len()) != plane.checked_mul(channels) {
        return Err(Error::invalid(
            OP,
            format!(
                "{} bytes given for {channels} planes of {height}x{width}",
                src.len()
            ),
        ));
    }
    let horizontal = (width != out_width).then(|| Taps::new(width, out_width));
    let vertical = (height != out_height).then(|| Taps::new(height, out_height));
    let mut out = Vec::with_capacity(channels * out_height * out_width);
    let mut tmp = vec![0u8; height * out_width];
    for plane_src in src.chunks_exact(plane) {
        // Horizontal pass: height x width -> height x out_width, stored as u8 like PIL.
        match &horizontal {
            Some(taps) => {
                for (row_in, row_out) in plane_src
                    .chunks_exact(width)
                    .zip(tmp.chunks_exact_mut(out_width))
                {
                    for (o, v) in row_out.iter_mut().enumerate() {
                        *v = taps.apply(o, |i| row_in[i]);
                    }
                }
            }
            None => tmp.copy_from_slice(plane_src),
        }
        // Vertical pass: height x out_width -> out_height x out_width.
        match &vertical {
            Some(taps) => {
                for o in 0..out_height {
                    for x in 0..out_width {
                        out.push(taps.apply(o, |i| tmp[i * out_width + x]));
                    }
                }
            }
            None => out.extend_from_slice(&tmp),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (n_in, n_out) in [(32, 28), (28, 28), (17, 28), (100, 3), (5, 1)] {
            let taps = Taps::new(n_in, n_out);
            for o in 0..n_out {
                let (lo, count) = taps.bounds[o];
                assert!(lo + count <= n_in);
                let s: i64 = taps.weights[o * taps.ksize..][..count].iter().sum();
                // Each weight is rounded once: the sum is 2^22 within one unit per tap.
                assert!(
                    (s - (1 << PRECISION_BITS)).abs() <= count as i64,
                    "{n_in}->{n_out}"
                );
            }
        }
    }

    #[test]
    fn constant_planes_stay_constant() {
        for v in [0u8, 1, 128, 254, 255] {
            let src = vec![v; 3 * 32 * 32];
            let out = resize_lanczos_planes(&src, 3, 32, 32, 28, 28).unwrap();
            assert_eq!(out.len(), 3 * 28 * 28);
            assert!(out.iter().all(|&o| o == v), "value {v}");
        }
    }

    #[test]
    fn same_size_is_identity_and_bad_sizes_are_errors() {
        let src: Vec<u8> = (0..=255).collect();
        assert_eq!(resize_lanczos(&src, 16, 16, 16, 16).unwrap(), src);
        assert!(resize_lanczos(&src, 16, 16, 0, 28).is_err());
        assert!(resize_lanczos(&src, 15, 16, 28, 28).is_err());
        assert!(resize_lanczos(&[], 0, 0, 28, 28).is_err());
    }
}
