//! One image of any size, grey or RGB, with 8-bit or f32 pixels, and the rules that bring it
//! to the model's input.
//!
//! # From an image to the model's input
//!
//! 1. Channels: a 1-channel model gets grey from RGB with PIL's `Image.convert("L")` rule,
//!    the ITU-R 601-2 luma `L = (19595 R + 38470 G + 7471 B + 2^15) >> 16` on 8-bit pixels
//!    (`0.299 R + 0.587 G + 0.114 B` on f32 pixels); a 3-channel model gets grey replicated into
//!    R, G and B.
//! 2. Size: an 8-bit image of another size than the model's `28 x 28` is resized to it, each
//!    channel with PIL's antialiasing Lanczos filter ([`super::resize_lanczos`]), stretched
//!    (the aspect ratio is not kept) by [`Image::to_input`]; files loaded through
//!    [`super::files`] may instead be cropped or padded to a square first ([`super::Fit`]).
//!    f32 images must already have the model's size.
//! 3. Values: 8-bit pixels become `v / 255`; f32 pixels are taken as they are and must be
//!    finite and in `[0, 1]`.

use crate::error::{Error, Result};

/// Pixel values of an [`Image`], plane after plane (CHW).
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    /// 8-bit values, `0` black to `255` white.
    U8(Vec<u8>),
    /// Values in `[0, 1]`.
    F32(Vec<f32>),
}

impl Pixels {
    fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::F32(v) => v.len(),
        }
    }
}

/// An image of `channels` (1 grey, 3 RGB) planes of `height x width` pixels, CHW order.
///
/// ```
/// use detector::Image;
/// // A 2x2 RGB image given pixel by pixel (interleaved, as most decoders return it).
/// let rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255];
/// let img = Image::from_interleaved_u8(3, 2, 2, &rgb)?;
/// assert_eq!(img.u8_pixels().unwrap()[..4], [255, 0, 0, 255]); // the red plane
/// # Ok::<(), detector::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    channels: usize,
    height: usize,
    width: usize,
    pixels: Pixels,
}

/// Largest accepted `height * width` of one image (e.g. 4096 x 4096).
pub const MAX_IMAGE_PIXELS: usize = 1 << 24;

impl Image {
    /// An 8-bit image from planar (CHW) pixels.
    pub fn from_u8(channels: usize, height: usize, width: usize, pixels: Vec<u8>) -> Result<Self> {
        Self::new(channels, height, width, Pixels::U8(pixels))
    }

    /// An image from planar (CHW) f32 pixels, each finite and in `[0, 1]`.
    pub fn from_f32(
        channels: usize,
        height: usize,
        width: usize,
        pixels: Vec<f32>,
    ) -> Result<Self> {
        if let Some(i) = pixels
            .iter()
            .position(|v| !(v.is_finite() && (0.0..=1.0).contains(v)))
        {
            return Err(Error::invalid(
                "Image::from_f32",
                format!("pixel {i} is {}; values in [0, 1] expected", pixels[i]),
            ));
        }
        Self::new(channels, height, width, Pixels::F32(pixels))
    }

    /// An 8-bit image from interleaved (HWC: pixel after pixel, its channels together) values.
    pub fn from_interleaved_u8(
        channels: usize,
        height: usize,
        width: usize,
        pixels: &[u8],
    ) -> Result<Self> {
        Self::check_size(
            "Image::from_interleaved_u8",
            channels,
            height,
            width,
            pixels.len(),
        )?;
        let plane = height * width;
        let mut planar = vec![0u8; pixels.len()];
        for (p, px) in pixels.chunks_exact(channels).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                planar[c * plane + p] = v;
            }
        }
        Self::from_u8(channels, height, width, planar)
    }

    fn new(channels: usize, height: usize, width: usize, pixels: Pixels) -> Result<Self> {
        Self::check_size("Image", channels, height, width, pixels.len())?;
        Ok(Self {
            channels,
            height,
            width,
            pixels,
        })
    }

    fn check_size(
        op: &'static str,
        channels: usize,
        height: usize,
        width: usize,
        len: usize,
    ) -> Result<()> {
        if channels != 1 && channels != 3 {
            return Err(Error::invalid(
                op,
                format!("{channels} channels; 1 (grey) or 3 (RGB) expected"),
            ));
        }
        let plane = height.checked_mul(width).filter(|&p| p > 0);
        match plane {
            None => Err(Error::invalid(
                op,
                format!("empty or overflowing size {height}x{width}"),
            )),
            Some(p) if p > MAX_IMAGE_PIXELS => Err(Error::invalid(
                op,
                format!("{height}x{width} pixels exceeds the limit of {MAX_IMAGE_PIXELS}"),
            )),
            Some(p) if p * channels != len => Err(Error::invalid(
                op,
                format!("{len} values given for {channels}x{height}x{width}"),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Channels: 1 (grey) or 3 (RGB).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Columns.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The pixel values, CHW.
    pub fn pixels(&self) -> &Pixels {
        &self.pixels
    }

    /// The 8-bit pixels, CHW (`None` for an f32 image).
    pub fn u8_pixels(&self) -> Option<&[u8]> {
        match &self.pixels {
            Pixels::U8(v) => Some(v),
            Pixels::F32(_) => None,
        }
    }

    /// The 8-bit pixels, CHW, taken out of the image (`None` for an f32 image).
    pub fn into_u8_pixels(self) -> Option<Vec<u8>> {
        match self.pixels {
            Pixels::U8(v) => Some(v),
            Pixels::F32(_) => None,
        }
    }

    /// The image with `channels` channels, by the rules in the module documentation.
    pub fn with_channels(&self, channels: usize) -> Result<Image> {
        if channels == self.channels {
            return Ok(self.clone());
        }
        let plane = self.height * self.width;
        let pixels = match (&self.pixels, channels) {
            (Pixels::U8(v), 1) => Pixels::U8(
                (0..plane)
                    .map(|p| luma_u8(v[p], v[plane + p], v[2 * plane + p]))
                    .collect(),
            ),
            (Pixels::F32(v), 1) => Pixels::F32(
                (0..plane)
                    .map(|p| 0.299 * v[p] + 0.587 * v[plane + p] + 0.114 * v[2 * plane + p])
                    .collect(),
            ),
            (Pixels::U8(v), 3) => Pixels::U8(v.repeat(3)),
            (Pixels::F32(v), 3) => Pixels::F32(v.repeat(3)),
            _ => {
                return Err(Error::invalid(
                    "Image::with_channels",
                    format!("{channels} channels; 1 or 3 expected"),
                ))
            }
        };
        Self::new(channels, self.height, self.width, pixels)
    }

    /// The model's input for this image: `channels x side x side` values in `[0, 1]`, CHW, by
    /// the rules in the module documentation.
    pub fn to_input(&self, channels: usize, side: usize) -> Result<Vec<f32>> {
        let img = self.with_channels(channels)?;
        match &img.pixels {
            Pixels::U8(v) if (img.height, img.width) == (side, side) => {
                Ok(v.iter().map(|&p| f32::from(p) / 255.0).collect())
            }
            Pixels::U8(v) => Ok(super::resize_lanczos_planes(
                v, channels, img.height, img.width, side, side,
            )?
            .into_iter()
            .map(|p| f32::from(p) / 255.0)
            .collect()),
            Pixels::F32(v) if (img.height, img.width) == (side, side) => Ok(v.clone()),
            Pixels::F32(_) => Err(Error::invalid(
                "Image::to_input",
                format!(
                    "an f32 image of {}x{} pixels; f32 images must be {side}x{side} \
                     (8-bit images are resized)",
                    img.height, img.width
                ),
            )),
        }
    }
}

/// PIL's `convert("L")`: `(19595 R + 38470 G + 7471 B + 2^15) >> 16`.
pub(crate) fn luma_u8(r: u8, g: u8, b: u8) -> u8 {
    ((19595 * u32::from(r) + 38470 * u32::from(g) + 7471 * u32::from(b) + (1 << 15)) >> 16) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_pixels_become_planes() {
        let img = Image::from_interleaved_u8(3, 1, 2, &[1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!(img.u8_pixels().unwrap(), [1, 4, 2, 5, 3, 6]);
    }

    #[test]
    fn channel_conversion_follows_pil() {
        let rgb = Image::from_u8(3, 1, 1, vec![255, 128, 0]).unwrap();
        // 0.299 * 255 + 0.587 * 128 = 151.385 -> PIL gives 151.
        assert_eq!(rgb.with_channels(1).unwrap().u8_pixels().unwrap(), [151]);
        let grey = Image::from_u8(1, 1, 2, vec![7, 9]).unwrap();
        assert_eq!(
            grey.with_channels(3).unwrap().u8_pixels().unwrap(),
            [7, 9, 7, 9, 7, 9]
        );
    }

    #[test]
    fn inputs_are_scaled_and_resized() {
        let img = Image::from_u8(1, 2, 2, vec![0, 255, 51, 102]).unwrap();
        assert_eq!(img.to_input(1, 2).unwrap(), [0.0, 1.0, 0.2, 0.4]);
        assert_eq!(img.to_input(3, 5).unwrap().len(), 75);
        let f = Image::from_f32(1, 2, 2, vec![0.5; 4]).unwrap();
        assert!(f.to_input(1, 3).is_err());
    }

    #[test]
    fn bad_images_are_refused() {
        assert!(Image::from_u8(2, 1, 1, vec![0, 0]).is_err());
        assert!(Image::from_u8(1, 2, 2, vec![0; 3]).is_err());
        assert!(Image::from_u8(1, 0, 2, vec![]).is_err());
        assert!(Image::from_f32(1, 1, 1, vec![f32::NAN]).is_err());
        assert!(Image::from_f32(1, 1, 1, vec![1.5]).is_err());
    }
}
