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

use std::io::{BufRead, Read};
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
    let gzipped = bytes.starts_with(&GZIP_MAGIC);
    let mut decoder: Box<dyn Read + '_> = if gzipped {
        gunzip(name, bytes)?
    } else {
        Box::new(bytes)
    };
    let dims = read_header(name, &mut decoder, magic, gzipped)?;
    let payload = payload_len(name, &dims, magic)?;
    // Read at most one byte past the claim: enough to tell "too long" from "exact".
    let mut data = Vec::new();
    decoder
        .take(payload as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| read_error(name, &e, gzipped))?;
    match data.len().cmp(&payload) {
        std::cmp::Ordering::Less => Err(truncated(name, &dims, payload, data.len(), gzipped)),
        std::cmp::Ordering::Greater => Err(too_long(name, &dims, payload)),
        std::cmp::Ordering::Equal => Ok((dims, data)),
    }
}

fn truncated(name: &str, dims: &[usize], payload: usize, found: usize, gzipped: bool) -> Error {
    Error::format(
        name,
        format!(
            "truncated: dimensions {dims:?} need {payload} bytes of data, {found} present{}",
            if gzipped { " after decompression" } else { "" }
        ),
    )
}

fn too_long(name: &str, dims: &[usize], payload: usize) -> Error {
    Error::format(
        name,
        format!("dimensions {dims:?} need {payload} bytes of data, but more follow"),
    )
}

fn read_error(name: &str, e: &std::io::Error, gzipped: bool) -> Error {
    if gzipped {
        gzip_error(name, e)
    } else {
        Error::format(name, format!("read failed: {e}"))
    }
}

/// Reads and checks the header of an IDX file of `magic` from `r`; returns the dimensions.
fn read_header(name: &str, r: &mut dyn Read, magic: u32, gzipped: bool) -> Result<Vec<usize>> {
    let ndim = (magic & 0xff) as usize;
    let header_len = 4 + 4 * ndim;
    let what = if magic == IDX_IMAGES_MAGIC {
        "IDX u8 images"
    } else {
        "IDX u8 labels"
    };
    let mut header = vec![0u8; header_len];
    let filled = read_full(r, &mut header).map_err(|e| read_error(name, &e, gzipped))?;
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
    Ok(header[4..]
        .chunks_exact(4)
        .map(|c| BigEndian::read_u32(c) as usize)
        .collect())
}

/// The payload bytes `dims` claim, within [`MAX_IDX_BYTES`] (and the pixel limit for images).
fn payload_len(name: &str, dims: &[usize], magic: u32) -> Result<usize> {
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
    Ok(payload)
}

/// An IDX images file read one image at a time, so that memory does not grow with the number
/// of images (gzipped or not; checked as [`idx_images_from_bytes`] checks a whole file).
pub struct IdxImageReader {
    name: String,
    reader: Box<dyn Read>,
    gzipped: bool,
    dims: Vec<usize>,
    /// Number of images, and the height and width of each.
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    read: usize,
}

impl std::fmt::Debug for IdxImageReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "IdxImageReader({}, {}x{}x{})",
            self.name, self.count, self.rows, self.cols
        )
    }
}

impl IdxImageReader {
    /// Opens `path` and checks its header.
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let (file, _) = crate::io::fs::open_file(path)?;
        let mut file = std::io::BufReader::with_capacity(1 << 16, file);
        let start = file.fill_buf().map_err(|e| Error::io(path, "read", e))?;
        let gzipped = start.starts_with(&GZIP_MAGIC);
        let mut reader: Box<dyn Read> = if gzipped {
            gunzip(&name, file)?
        } else {
            Box::new(file)
        };
        let dims = read_header(&name, &mut reader, IDX_IMAGES_MAGIC, gzipped)?;
        let &[count, rows, cols] = &dims[..] else {
            return Err(Error::format(
                &name,
                format!("dimensions {dims:?} are not 3"),
            ));
        };
        if rows == 0 || cols == 0 {
            return Err(Error::format(
                &name,
                format!("images of {rows}x{cols} pixels are empty"),
            ));
        }
        payload_len(&name, &dims, IDX_IMAGES_MAGIC)?;
        Ok(Self {
            name,
            reader,
            gzipped,
            dims,
            count,
            rows,
            cols,
            read: 0,
        })
    }

    /// The next image's `rows x cols` pixels into `buf`; `false` once all are read (after
    /// checking that nothing follows them).
    pub fn read_image(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        let len = self.rows * self.cols;
        let payload = self.count * len;
        if self.read == self.count {
            let mut probe = [0u8; 1];
            let more = read_full(&mut self.reader, &mut probe)
                .map_err(|e| read_error(&self.name, &e, self.gzipped))?;
            return if more > 0 {
                Err(too_long(&self.name, &self.dims, payload))
            } else {
                Ok(false)
            };
        }
        buf.resize(len, 0);
        let filled = read_full(&mut self.reader, buf)
            .map_err(|e| read_error(&self.name, &e, self.gzipped))?;
        if filled < len {
            let found = self.read * len + filled;
            return Err(truncated(
                &self.name,
                &self.dims,
                payload,
                found,
                self.gzipped,
            ));
        }
        self.read += 1;
        Ok(true)
    }
}

/// A reader of the decompressed bytes of the gzip stream `compressed`.
#[cfg(feature = "gzip")]
fn gunzip<'a>(_name: &str, compressed: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    Ok(Box::new(flate2::read::MultiGzDecoder::new(compressed)))
}

/// Without the `gzip` feature a gzipped file is refused, naming it.
#[cfg(not(feature = "gzip"))]
fn gunzip<'a>(name: &str, _compressed: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    Err(Error::format(
        name,
        "gzip-compressed, but this build reads no gzip (the detector's `gzip` feature is off)",
    ))
}

/// Fills `buf` from `r` as far as the stream goes; returns how many bytes it filled.
pub(crate) fn read_full(r: &mut (impl Read + ?Sized), buf: &mut [u8]) -> std::io::Result<usize> {
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
