//! IDX files (MNIST, Fashion-MNIST), plain or gzipped.
//!
//! Layout, all integers big-endian:
//!
//! ```text
//! offset 0   u8 0, u8 0          magic: two zero bytes
//! offset 2   u8 type             0x08 = unsigned bytes (the only type these data sets use)
//! offset 3   u8 ndim             3 for images (count, rows, cols), 1 for labels (count)
//! offset 4   u32 x ndim          the dimensions
//! then       prod(dims) bytes    the values, row-major
//! ```
//!
//! So images start with `0x00000803` and labels with `0x00000801`. A file that starts with the
//! gzip magic `1f 8b` is decompressed first. Decompression reads the header, checks the size it
//! claims against [`MAX_IDX_BYTES`], then decompresses at most one byte more than claimed: the
//! buffer grows only with data actually present, so a small file cannot make the reader allocate
//! what it merely claims.

use std::io::Read;
use std::path::Path;

use byteorder::{BigEndian, ByteOrder, WriteBytesExt};

use crate::error::{Error, Result};
use crate::io::fs::read_file;

/// The largest IDX payload accepted, in bytes (the full MNIST training images take 47 MB).
pub const MAX_IDX_BYTES: usize = 1 << 30;

/// The magic number of an IDX file of u8 images (`count x rows x cols`).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// The magic number of an IDX file of u8 labels (`count`).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// The first bytes of every gzip stream.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The contents of an IDX images file: `count` row-major `rows x cols` u8 images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// `count * rows * cols` pixels, image after image.
    pub pixels: Vec<u8>,
}

/// Parses an IDX images file (`0x00000803`), gzipped or not. `name` names the source in errors.
pub fn idx_images_from_bytes(name: &str, bytes: &[u8]) -> Result<IdxImages> {
    let (dims, pixels) = parse(name, bytes, IDX_IMAGES_MAGIC)?;
    // The magic fixes the rank to 3.
    let &[count, rows, cols] = &dims[..] else {
        return Err(Error::format(
            name,
            format!("dimensions {dims:?} are not 3"),
        ));
    };
    if rows == 0 || cols == 0 {
        return Err(Error::format(
            name,
            format!("images of {rows}x{cols} pixels are empty"),
        ));
    }
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels,
    })
}

/// Parses an IDX labels file (`0x00000801`), gzipped or not. `name` names the source in errors.
pub fn idx_labels_from_bytes(name: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    Ok(parse(name, bytes, IDX_LABELS_MAGIC)?.1)
}

/// Reads an IDX images file; see [`idx_images_from_bytes`].
pub fn read_idx_images(path: &Path) -> Result<IdxImages> {
    idx_images_from_bytes(&path.display().to_string(), &read_file(path)?)
}

/// Reads an IDX labels file; see [`idx_labels_from_bytes`].
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    idx_labels_from_bytes(&path.display().to_string(), &read_file(path)?)
}

/// Checks the magic, the dimensions and the payload size; returns the dimensions and payload.
fn parse(name: &str, bytes: &[u8], magic: u32) -> Result<(Vec<usize>, Vec<u8>)> {
    let ndim = (magic & 0xff) as usize;
    let header_len = 4 + 4 * ndim;
    let what = if magic == IDX_IMAGES_MAGIC {
        "IDX u8 images"
    } else {
        "IDX u8 labels"
    };
    let gzipped = bytes.starts_with(&GZIP_MAGIC);
    let mut decoder = if gzipped {
        Some(gunzip(name, bytes)?)
    } else {
        None
    };
    let mut header = vec![0u8; header_len];
    let filled = match &mut decoder {
        Some(d) => read_full(d, &mut header).map_err(|e| gzip_error(name, &e))?,
        None => {
            let n = header_len.min(bytes.len());
            header[..n].copy_from_slice(&bytes[..n]);
            n
        }
    };
    if filled >= 4 {
        let found = BigEndian::read_u32(&header);
        if found != magic {
            return Err(Error::format(
                name,
                format!("wrong magic 0x{found:08x}, expected 0x{magic:08x} ({what})"),
            ));
        }
    }
    if filled < header_len {
        return Err(Error::format(
            name,
            format!("truncated: the {what} header needs {header_len} bytes, {filled} present"),
        ));
    }
    let dims: Vec<usize> = header[4..]
        .chunks_exact(4)
        .map(|c| BigEndian::read_u32(c) as usize)
        .collect();
    let payload = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_IDX_BYTES)
        .ok_or_else(|| {
            Error::format(
                name,
                format!("dimensions {dims:?} claim more than {MAX_IDX_BYTES} bytes"),
            )
        })?;
    if magic == IDX_IMAGES_MAGIC {
        crate::io::fs::Limits::check_pixels(name, payload as u128)?;
    }
    let data = match &mut decoder {
        Some(d) => {
            // Read at most one byte past the claim: enough to tell "too long" from "exact".
            let mut data = Vec::new();
            d.take(payload as u64 + 1)
                .read_to_end(&mut data)
                .map_err(|e| gzip_error(name, &e))?;
            data
        }
        None => bytes[header_len..].to_vec(),
    };
    match data.len().cmp(&payload) {
        std::cmp::Ordering::Less => Err(Error::format(
            name,
            format!(
                "truncated: dimensions {dims:?} need {payload} bytes of data, {} present{}",
                data.len(),
                if gzipped { " after decompression" } else { "" }
            ),
        )),
        std::cmp::Ordering::Greater => Err(Error::format(
            name,
            format!("dimensions {dims:?} need {payload} bytes of data, but more follow"),
        )),
        std::cmp::Ordering::Equal => Ok((dims, data)),
    }
}

/// A reader of the decompressed bytes of the gzip stream `bytes`.
#[cfg(feature = "gzip")]
fn gunzip<'a>(_name: &str, bytes: &'a [u8]) -> Result<Box<dyn Read + 'a>> {
    Ok(Box::new(flate2::read::MultiGzDecoder::new(bytes)))
}

/// Without the `gzip` feature a gzipped file is refused, naming it.
#[cfg(not(feature = "gzip"))]
fn gunzip<'a>(name: &str, _bytes: &'a [u8]) -> Result<Box<dyn Read + 'a>> {
    Err(Error::format(
        name,
        "gzip-compressed, but this build reads no gzip (the detector's `gzip` feature is off)",
    ))
}

/// Fills `buf` from `r` as far as the stream goes; returns how many bytes it filled.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn gzip_error(name: &str, e: &std::io::Error) -> Error {
    Error::format(name, format!("bad gzip stream: {e}"))
}

/// Encodes `count` images of `rows x cols` as an (uncompressed) IDX images file.
pub fn encode_idx_images(count: usize, rows: usize, cols: usize, pixels: &[u8]) -> Result<Vec<u8>> {
    let fits = |d: usize| u32::try_from(d).is_ok();
    if !(fits(count) && fits(rows) && fits(cols))
        || count.checked_mul(rows).and_then(|n| n.checked_mul(cols)) != Some(pixels.len())
    {
        return Err(Error::invalid(
            "encode_idx_images",
            format!(
                "{} pixels given for {count} images of {rows}x{cols}",
                pixels.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(16 + pixels.len());
    for v in [IDX_IMAGES_MAGIC, count as u32, rows as u32, cols as u32] {
        out.write_u32::<BigEndian>(v)
            .expect("writing to a Vec cannot fail");
    }
    out.extend_from_slice(pixels);
    Ok(out)
}

/// Encodes labels as an (uncompressed) IDX labels file.
pub fn encode_idx_labels(labels: &[u8]) -> Result<Vec<u8>> {
    let count = u32::try_from(labels.len()).map_err(|_| {
        Error::invalid(
            "encode_idx_labels",
            format!("{} labels do not fit an IDX header", labels.len()),
        )
    })?;
    let mut out = Vec::with_capacity(8 + labels.len());
    for v in [IDX_LABELS_MAGIC, count] {
        out.write_u32::<BigEndian>(v)
            .expect("writing to a Vec cannot fail");
    }
    out.extend_from_slice(labels);
    Ok(out)
}

#[cfg(feature = "gzip")]
/// Compresses `bytes` as one gzip member with no file name and modification time 0, so the
/// output depends on the input alone.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}
