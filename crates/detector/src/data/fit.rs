//! Bringing an image of any size to the model's square input: how a non-square image becomes a
//! square ([`Fit`]), then PIL's antialiasing Lanczos resize ([`super::resize_lanczos_planes`])
//! to `side x side`.
//!
//! # The fit modes
//!
//! For an image of `h` rows and `w` columns, let `d = |h - w|`, `s = min(h, w)` and
//! `S = max(h, w)`:
//!
//! - [`Fit::Stretch`] (the default): the whole image is resized to `side x side`; the aspect
//!   ratio is not kept.
//! - [`Fit::Crop`]: the centred `s x s` square is kept, then resized. Along the long axis the
//!   kept rows (or columns) are `floor(d / 2) .. floor(d / 2) + s`: when `d` is odd, the one
//!   more row (column) is cut from the bottom (right) side.
//! - [`Fit::Pad`]: the image is put on a black (0) `S x S` square, then resized. Along the
//!   short axis the image occupies rows (or columns) `floor(d / 2) .. floor(d / 2) + s`: when
//!   `d` is odd, the one more row (column) of black is added at the bottom (right) side. The
//!   padded square is limited to [`MAX_IMAGE_PIXELS`] pixels (4096 x 4096).
//!
//! A square image is treated alike by all three modes; an image that already is
//! `side x side` is taken as it is. Every channel is fitted the same way.
//!
//! ```
//! use detector::data::fit::Fit;
//! // One grey row of four pixels (h = 1, w = 4, d = 3).
//! let row = [10, 20, 30, 40];
//! // Crop keeps column floor(3 / 2) = 1; pad puts the row on row 1 of a 4x4 black square.
//! assert_eq!(Fit::Crop.apply(&row, 1, 1, 4, 1)?, [20]);
//! let padded = Fit::Pad.apply(&row, 1, 1, 4, 4)?;
//! assert_eq!(padded[..8], [0, 0, 0, 0, 10, 20, 30, 40]);
//! assert!(padded[8..].iter().all(|&v| v == 0));
//! # Ok::<(), detector::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use super::image::MAX_IMAGE_PIXELS;
use super::resize_lanczos_planes;
use crate::error::{Error, Result};
use crate::io::fs::Limits;

/// How a non-square image becomes the model's square input (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fit {
    /// Resize the whole image; the aspect ratio is not kept.
    #[default]
    Stretch,
    /// Keep the centred square, then resize.
    Crop,
    /// Put the image on a black square, then resize.
    Pad,
}

impl Fit {
    /// Every mode, in the order the command line lists them.
    pub const ALL: [Fit; 3] = [Fit::Stretch, Fit::Crop, Fit::Pad];

    /// The mode's name on the command line: `stretch`, `crop` or `pad`.
    pub fn name(self) -> &'static str {
        match self {
            Fit::Stretch => "stretch",
            Fit::Crop => "crop",
            Fit::Pad => "pad",
        }
    }

    /// `channels` planes (CHW) of `height x width` u8 pixels brought to `side x side` by this
    /// mode and the Lanczos resize.
    pub fn apply(
        self,
        pixels: &[u8],
        channels: usize,
        height: usize,
        width: usize,
        side: usize,
    ) -> Result<Vec<u8>> {
        const OP: &str = "fit";
        let plane = height.checked_mul(width).filter(|&p| p > 0);
        if side == 0 || plane.and_then(|p| p.checked_mul(channels)) != Some(pixels.len()) {
            return Err(Error::invalid(
                OP,
                format!(
                    "{} values given for {channels} planes of {height}x{width}, to fit to \
                     {side}x{side}",
                    pixels.len()
                ),
            ));
        }
        if (height, width) == (side, side) {
            return Ok(pixels.to_vec());
        }
        let resize =
            |p: &[u8], h: usize, w: usize| resize_lanczos_planes(p, channels, h, w, side, side);
        if height == width || self == Fit::Stretch {
            return resize(pixels, height, width);
        }
        let (short, long) = (height.min(width), height.max(width));
        let offset = (long - short) / 2;
        match self {
            Fit::Stretch => unreachable!("handled above"),
            Fit::Crop => {
                let mut square = Vec::with_capacity(channels * short * short);
                for plane in pixels.chunks_exact(height * width) {
                    if height > width {
                        // Rows offset .. offset + short, every column.
                        square.extend_from_slice(&plane[offset * width..(offset + short) * width]);
                    } else {
                        for row in plane.chunks_exact(width) {
                            square.extend_from_slice(&row[offset..offset + short]);
                        }
                    }
                }
                resize(&square, short, short)
            }
            Fit::Pad => {
                let area = long as u128 * long as u128;
                if area > MAX_IMAGE_PIXELS as u128 {
                    return Err(Error::invalid(
                        OP,
                        format!(
                            "padding a {height}x{width} image needs a {long}x{long} square, more \
                             than the limit of {MAX_IMAGE_PIXELS} pixels (use crop or stretch)"
                        ),
                    ));
                }
                Limits::check_pixels("fit pad", area * channels as u128)?;
                let mut square = vec![0u8; channels * long * long];
                for (src, dst) in pixels
                    .chunks_exact(height * width)
                    .zip(square.chunks_exact_mut(long * long))
                {
                    for (y, row) in src.chunks_exact(width).enumerate() {
                        let (y, x) = if height > width {
                            (y, offset)
                        } else {
                            (y + offset, 0)
                        };
                        dst[y * long + x..y * long + x + width].copy_from_slice(row);
                    }
                }
                resize(&square, long, long)
            }
        }
    }
}

impl fmt::Display for Fit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fit {
    type Err = Error;

    /// `stretch`, `crop` or `pad`; anything else is an [`Error::InvalidOption`] for `fit`.
    fn from_str(s: &str) -> Result<Self> {
        Fit::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| Error::InvalidOption {
                option: "fit",
                value: s.to_string(),
                expected: "stretch, crop or pad",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `h x w` plane whose pixel `(y, x)` is `10 y + x + 1` (no zero, to tell padding).
    fn ramp(h: usize, w: usize) -> Vec<u8> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (10 * y + x + 1) as u8))
            .collect()
    }

    #[test]
    fn crop_keeps_the_centre_with_the_odd_column_cut_on_the_right() {
        // 2x4 (d = 2): columns 1..3.
        assert_eq!(
            Fit::Crop.apply(&ramp(2, 4), 1, 2, 4, 2).unwrap(),
            [2, 3, 12, 13]
        );
        // 2x5 (d = 3): columns 1..3, so one column cut on the left and two on the right.
        assert_eq!(
            Fit::Crop.apply(&ramp(2, 5), 1, 2, 5, 2).unwrap(),
            [2, 3, 12, 13]
        );
        // 5x2 (d = 3): rows 1..3, one cut at the top and two at the bottom.
        assert_eq!(
            Fit::Crop.apply(&ramp(5, 2), 1, 5, 2, 2).unwrap(),
            [11, 12, 21, 22]
        );
        // 4x2 (d = 2): rows 1..3.
        assert_eq!(
            Fit::Crop.apply(&ramp(4, 2), 1, 4, 2, 2).unwrap(),
            [11, 12, 21, 22]
        );
    }

    #[test]
    fn pad_centres_with_the_odd_black_line_at_the_bottom_or_right() {
        // 2x4 (d = 2): rows 1 and 2 of a 4x4 square.
        #[rustfmt::skip]
        let expected = [
            0, 0, 0, 0,
            1, 2, 3, 4,
            11, 12, 13, 14,
            0, 0, 0, 0,
        ];
        assert_eq!(Fit::Pad.apply(&ramp(2, 4), 1, 2, 4, 4).unwrap(), expected);
        // 1x4 (d = 3): row 1, with one black row above and two below.
        #[rustfmt::skip]
        let expected = [
            0, 0, 0, 0,
            1, 2, 3, 4,
            0, 0, 0, 0,
            0, 0, 0, 0,
        ];
        assert_eq!(Fit::Pad.apply(&ramp(1, 4), 1, 1, 4, 4).unwrap(), expected);
        // 3x2 (d = 1): column 0 of the square holds the image, column 2 is black.
        #[rustfmt::skip]
        let expected = [
            1, 2, 0,
            11, 12, 0,
            21, 22, 0,
        ];
        assert_eq!(Fit::Pad.apply(&ramp(3, 2), 1, 3, 2, 3).unwrap(), expected);
    }

    #[test]
    fn every_channel_is_fitted_alike() {
        let mut rgb = ramp(2, 3);
        rgb.extend(ramp(2, 3).iter().map(|v| v + 100));
        rgb.extend(ramp(2, 3).iter().map(|v| v + 200));
        assert_eq!(
            Fit::Crop.apply(&rgb, 3, 2, 3, 2).unwrap(),
            [1, 2, 11, 12, 101, 102, 111, 112, 201, 202, 211, 212]
        );
        let padded = Fit::Pad.apply(&rgb, 3, 2, 3, 3).unwrap();
        assert_eq!(
            padded[9..],
            [101, 102, 103, 111, 112, 113, 0, 0, 0, 201, 202, 203, 211, 212, 213, 0, 0, 0]
        );
    }

    #[test]
    fn the_square_is_then_resized_with_lanczos() {
        // A 6x12 image cropped is its columns 3..9, resized 6x6 -> 3x3.
        let img = ramp(6, 12);
        let square: Vec<u8> = img.chunks(12).flat_map(|r| r[3..9].to_vec()).collect();
        assert_eq!(
            Fit::Crop.apply(&img, 1, 6, 12, 3).unwrap(),
            resize_lanczos_planes(&square, 1, 6, 6, 3, 3).unwrap()
        );
        // Stretch resizes the whole image; pad resizes the 12x12 square.
        assert_eq!(
            Fit::Stretch.apply(&img, 1, 6, 12, 3).unwrap(),
            resize_lanczos_planes(&img, 1, 6, 12, 3, 3).unwrap()
        );
        let padded = Fit::Pad.apply(&img, 1, 6, 12, 12).unwrap();
        assert_eq!(
            Fit::Pad.apply(&img, 1, 6, 12, 3).unwrap(),
            resize_lanczos_planes(&padded, 1, 12, 12, 3, 3).unwrap()
        );
        // The model's size is taken as it is, square images alike in every mode.
        for fit in Fit::ALL {
            assert_eq!(fit.apply(&ramp(3, 3), 1, 3, 3, 3).unwrap(), ramp(3, 3));
            assert_eq!(
                fit.apply(&ramp(5, 5), 1, 5, 5, 2).unwrap(),
                resize_lanczos_planes(&ramp(5, 5), 1, 5, 5, 2, 2).unwrap()
            );
        }
    }

    #[test]
    fn bad_sizes_and_names_are_refused() {
        assert!(Fit::Crop.apply(&[1, 2, 3], 1, 2, 2, 2).is_err());
        assert!(Fit::Crop.apply(&[], 1, 0, 2, 2).is_err());
        assert!(Fit::Pad.apply(&[1, 2], 1, 1, 2, 0).is_err());
        // A 1 x 5000 line would need a 5000 x 5000 square.
        let err = Fit::Pad.apply(&[7; 5000], 1, 1, 5000, 28).unwrap_err();
        assert!(err.to_string().contains("5000x5000"), "{err}");
        assert!(Fit::Crop.apply(&[7; 5000], 1, 1, 5000, 28).is_ok());
        assert_eq!("crop".parse::<Fit>().unwrap(), Fit::Crop);
        assert!(matches!(
            "Crop".parse::<Fit>(),
            Err(Error::InvalidOption { option: "fit", .. })
        ));
    }
}
