//! JPEG images converted to the 8-bit, 1- or 3-channel planes a model takes, decoded by the
//! pure-Rust `zune-jpeg` crate.
//!
//! Baseline and progressive JPEGs of 8-bit samples are read, with these rules:
//!
//! 1. Colour spaces: a one-component (grey) JPEG gives one grey plane. YCbCr JPEGs become RGB
//!    by the decoder's JFIF conversion (ITU-R BT.601, full range); Adobe RGB JPEGs are taken as
//!    they are. Adobe CMYK JPEGs become RGB by the decoder's rule on the stored
//!    (Adobe-inverted) values `C' M' Y' K'`: `R = C' K' / 255`, `G = M' K' / 255`,
//!    `B = Y' K' / 255`, i.e. `R = (255 - C)(255 - K) / 255` in ink values. Adobe YCCK JPEGs
//!    have their YCbCr part made `R' G' B'` as above, then `R = (255 - R') K' / 255` (and so
//!    for G and B). No colour profile is applied. Other layouts (two components, more than
//!    four) are refused.
//! 2. Channels: a 1-channel model gets grey from RGB with PIL's `Image.convert("L")` rule, the
//!    ITU-R 601-2 luma `L = (19595 R + 38470 G + 7471 B + 2^15) >> 16`; a 3-channel model gets
//!    grey replicated into R, G and B (the rules of [`super::image`]).
//! 3. Refused, with the decoder's reason naming the file: 12-bit and 16-bit samples, lossless
//!    and hierarchical JPEGs, and arithmetic coding.
//!
//! The result is in CHW order. Images are limited to [`MAX_IMAGE_PIXELS`] pixels (e.g.
//! 4096 x 4096), and their decoded size is checked against
//! [`Limits::max_pixels`](crate::io::fs::Limits) before the pixel buffer is allocated.
//! The decoder runs with its safe options (no `unsafe` SIMD paths), as files come from anyone.

use std::path::Path;

use zune_jpeg::errors::DecodeErrors;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::image::MAX_IMAGE_PIXELS;
use super::Image;
use crate::error::{Error, Result};
use crate::io::fs::{read_file, Limits};

/// The first bytes of every JPEG file: the start-of-image marker and the next marker's `FF`.
pub const JPEG_MAGIC: [u8; 3] = [0xff, 0xd8, 0xff];

/// Decodes a JPEG and converts it to `channels` (1 or 3) 8-bit planes with the rules in the
/// module documentation. `name` names the source in errors.
pub fn jpeg_from_bytes(name: &str, bytes: &[u8], channels: usize) -> Result<Image> {
    if channels != 1 && channels != 3 {
        return Err(Error::invalid(
            "jpeg_from_bytes",
            format!("{channels} channels asked for; a model takes 1 or 3"),
        ));
    }
    // zune-jpeg is written not to panic, but it is a large decoder of hostile input: a panic
    // inside it (and only there: the conversion below is this project's code) becomes an
    // error naming the file, as in the PNG reader.
    let decoded = super::contain_codec_panic(|| decode(name, bytes));
    let (colours, height, width, interleaved) = decoded.unwrap_or_else(|_| {
        Err(Error::format(
            name,
            "bad JPEG: the decoder failed on malformed data",
        ))
    })?;
    Image::from_interleaved_u8(colours, height, width, &interleaved)
        .and_then(|img| img.with_channels(channels))
        .map_err(|e| Error::format(name, e.to_string()))
}

/// Reads a JPEG file; see [`jpeg_from_bytes`].
pub fn read_jpeg(path: impl AsRef<Path>, channels: usize) -> Result<Image> {
    let path = path.as_ref();
    jpeg_from_bytes(&path.display().to_string(), &read_file(path)?, channels)
}

/// The decoder's part: `(colours, height, width, interleaved pixels)`.
fn decode(name: &str, bytes: &[u8]) -> Result<(usize, usize, usize, Vec<u8>)> {
    let jpeg_err = |e: DecodeErrors| Error::format(name, format!("bad JPEG: {e}"));
    // The decoder's own size limits are lifted to the format's (65535): the pixel count is
    // checked below, with a message that names this crate's limits.
    let side = usize::from(u16::MAX);
    let options = DecoderOptions::default()
        .set_max_width(side)
        .set_max_height(side);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(jpeg_err)?;
    let (Some((width, height)), Some(input)) = (decoder.dimensions(), decoder.input_colorspace())
    else {
        return Err(Error::format(name, "bad JPEG: no frame header"));
    };
    let (colours, out) = match input {
        ColorSpace::Luma => (1, ColorSpace::Luma),
        ColorSpace::YCbCr | ColorSpace::RGB | ColorSpace::CMYK | ColorSpace::YCCK => {
            (3, ColorSpace::RGB)
        }
        other => {
            return Err(Error::format(
                name,
                format!(
                    "JPEG colour space {other:?} ({} components) is not read; grey, YCbCr, RGB, \
                     CMYK and YCCK are",
                    decoder.info().map_or(0, |i| i.components)
                ),
            ))
        }
    };
    let pixels = width as u64 * height as u64;
    if pixels > MAX_IMAGE_PIXELS as u64 {
        return Err(Error::format(
            name,
            format!("{width}x{height} pixels exceed the limit of {MAX_IMAGE_PIXELS}"),
        ));
    }
    Limits::check_pixels(name, u128::from(pixels) * colours as u128)?;
    decoder.set_options(options.jpeg_set_out_colorspace(out));
    let size = decoder
        .output_buffer_size()
        .filter(|&n| n == pixels as usize * colours)
        .ok_or_else(|| Error::format(name, "bad JPEG: inconsistent output size"))?;
    let mut buf = vec![0u8; size];
    decoder.decode_into(&mut buf).map_err(jpeg_err)?;
    Ok((colours, height, width, buf))
}
