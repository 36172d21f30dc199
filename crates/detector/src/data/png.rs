//! PNG images converted to the 8-bit, 1- or 3-channel planes a model takes.
//!
//! Every PNG colour type and bit depth is accepted; the conversion to `channels` 8-bit planes
//! follows these rules, in this order:
//!
//! 1. Expansion: palette images become RGB (RGBA where a `tRNS` chunk gives transparency), grey
//!    of 1, 2 or 4 bits is scaled to 8 bits (`v * 255 / (2^bits - 1)`), and a `tRNS` colour key
//!    becomes an alpha channel (0 where the pixel equals the key, opaque elsewhere).
//! 2. Alpha is composited on black, i.e. multiplied into each colour: `c' = c * a / a_max`.
//!    Transparent pixels become background (0), as in MNIST-like data.
//! 3. Reduction to 8 bits with rounding to nearest: `c8 = round(255 * (c / c_max) * (a / a_max))`
//!    with `c_max = a_max = 255` or `65535`, computed exactly in integers, so 16-bit images lose
//!    at most half a grey level.
//! 4. Channels: a 1-channel model gets grey from RGB with PIL's `Image.convert("L")` rule, the
//!    ITU-R 601-2 luma `L = (19595 R + 38470 G + 7471 B + 2^15) >> 16`
//!    (= `0.299 R + 0.587 G + 0.114 B`, rounded); a 3-channel model gets grey replicated
//!    into R, G and B.
//!
//! The result is in CHW order. Images are limited to [`MAX_PNG_PIXELS`] pixels, and a header
//! that claims more pixel data than the file's compressed size could hold (deflate expands at
//! most 1032-fold) is refused before the image buffer is allocated.

use std::io::Cursor;
use std::path::Path;

use png::{BitDepth, ColorType, Decoder, Transformations};

use super::Image;
use crate::error::{Error, Result};
use crate::io::fs::read_file;

/// Largest accepted `width * height` (e.g. 4096 x 4096).
pub const MAX_PNG_PIXELS: u64 = 1 << 24;

/// Most bytes deflate can produce per compressed byte (its 258-byte matches in 2 bits).
const DEFLATE_MAX_RATIO: u64 = 1032;

/// Decodes a PNG and converts it to `channels` (1 or 3) 8-bit planes with the rules in the
/// module documentation. `name` names the source in errors.
pub fn png_from_bytes(name: &str, bytes: &[u8], channels: usize) -> Result<Image> {
    if channels != 1 && channels != 3 {
        return Err(Error::invalid(
            "png_from_bytes",
            format!("{channels} channels asked for; a model takes 1 or 3"),
        ));
    }
    let png_err = |e: png::DecodingError| Error::format(name, format!("bad PNG: {e}"));
    let mut decoder = Decoder::new(Cursor::new(bytes));
    let (width, height, depth, colour) = {
        let info = decoder.read_header_info().map_err(png_err)?;
        (info.width, info.height, info.bit_depth, info.color_type)
    };
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PNG_PIXELS {
        return Err(Error::format(
            name,
            format!("{width}x{height} pixels exceed the limit of {MAX_PNG_PIXELS}"),
        ));
    }
    let samples = match colour {
        ColorType::Grayscale | ColorType::Indexed => 1,
        ColorType::GrayscaleAlpha => 2,
        ColorType::Rgb => 3,
        ColorType::Rgba => 4,
    };
    // The filtered scanlines hold at least this many bytes; they come from deflate data no
    // longer than the file.
    let raw_bits = pixels * samples * depth as u64;
    if raw_bits / 8 > DEFLATE_MAX_RATIO * bytes.len() as u64 {
        return Err(Error::format(
            name,
            format!(
                "{width}x{height} pixels cannot be held by a file of {} bytes (truncated)",
                bytes.len()
            ),
        ));
    }
    // 16-bit samples are reduced here, with rounding (png's own reduction truncates); their
    // tRNS key is applied here too, as png would reduce those to 8 bits first.
    decoder.set_transformations(if depth == BitDepth::Sixteen {
        Transformations::IDENTITY
    } else {
        Transformations::EXPAND
    });
    // The `png` crate (0.18.1) panics on some malformed palettes (an index past a short PLTE,
    // found by fuzzing). A reader must never panic, so a panic inside the crate's decoding (and
    // only there: the conversion below is this project's code) becomes an error naming the file.
    let decoded = super::contain_codec_panic(move || -> Result<_> {
        let mut reader = decoder.read_info().map_err(png_err)?;
        let size = reader.output_buffer_size().ok_or_else(|| {
            Error::format(
                name,
                format!("{width}x{height} pixels overflow the address space"),
            )
        })?;
        let mut buf = vec![0u8; size];
        let frame = reader.next_frame(&mut buf).map_err(png_err)?;
        buf.truncate(frame.buffer_size());
        let trns = reader.info().trns.as_deref().map(<[u8]>::to_vec);
        Ok((buf, reader.output_color_type(), trns))
    });
    let (buf, (out_colour, out_depth), trns) = decoded.unwrap_or_else(|_| {
        Err(Error::format(
            name,
            "bad PNG: the decoder failed on malformed chunks (palette or transparency)",
        ))
    })?;
    let trns16 = match trns.as_deref() {
        Some(t) if depth == BitDepth::Sixteen => Some(
            t.chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect::<Vec<_>>(),
        ),
        _ => None,
    };
    let (w, h) = (width as usize, height as usize);
    let n = w * h;
    // Per pixel: colour samples scaled to 0..=65535 times alpha in 0..=65535, reduced to u8.
    let in_ch = match out_colour {
        ColorType::Grayscale => 1,
        ColorType::GrayscaleAlpha => 2,
        ColorType::Rgb => 3,
        ColorType::Rgba => 4,
        ColorType::Indexed => {
            return Err(Error::format(name, "palette was not expanded"));
        }
    };
    let colours = if in_ch >= 3 { 3 } else { 1 };
    let has_alpha = in_ch == 2 || in_ch == 4;
    let bytes_per_sample = if out_depth == BitDepth::Sixteen { 2 } else { 1 };
    let stride = in_ch * bytes_per_sample;
    if buf.len() < n * stride {
        return Err(Error::format(
            name,
            "decoded image is shorter than its size",
        ));
    }
    let sample = |px: &[u8], i: usize| -> u64 {
        if bytes_per_sample == 2 {
            u64::from(u16::from_be_bytes([px[2 * i], px[2 * i + 1]]))
        } else {
            u64::from(px[i])
        }
    };
    let max = if bytes_per_sample == 2 { 65535u64 } else { 255 };
    let mut planes = vec![0u8; colours * n];
    for (p, px) in buf.chunks_exact(stride).take(n).enumerate() {
        let alpha = if has_alpha {
            sample(px, in_ch - 1)
        } else if let Some(key) = &trns16 {
            let matches =
                key.len() == colours && (0..colours).all(|i| sample(px, i) == u64::from(key[i]));
            if matches {
                0
            } else {
                max
            }
        } else {
            max
        };
        let d = max * max;
        for c in 0..colours {
            // round(255 * v * a / max^2); max^2 is odd, so no value lies exactly on a half.
            let v = (255 * sample(px, c) * alpha + d / 2) / d;
            planes[c * n + p] = v as u8;
        }
    }
    Image::from_u8(colours, h, w, planes)
        .and_then(|img| img.with_channels(channels))
        .map_err(|e| Error::format(name, e.to_string()))
}

/// Reads a PNG file; see [`png_from_bytes`].
pub fn read_png(path: impl AsRef<Path>, channels: usize) -> Result<Image> {
    let path = path.as_ref();
    png_from_bytes(&path.display().to_string(), &read_file(path)?, channels)
}
