//! CIFAR-10 binary batches (`data_batch_1.bin` .. `data_batch_5.bin`, `test_batch.bin`).
//!
//! A batch is a sequence of 3073-byte records and nothing else:
//!
//! ```text
//! u8 label (0..=9), then 1024 red, 1024 green, 1024 blue bytes of a 32x32 image, row-major
//! ```
//!
//! The planes are already in CHW order, so a record's last 3072 bytes are one image of a
//! [`Dataset`] with 3 channels.

use std::path::Path;

use super::Dataset;
use crate::error::{Error, Result};
use crate::io::fs::read_file;

/// Image side of CIFAR-10.
pub const CIFAR_SIDE: usize = 32;
/// Bytes of one CIFAR-10 image (3 planes of 32x32).
pub const CIFAR_IMAGE_BYTES: usize = 3 * CIFAR_SIDE * CIFAR_SIDE;
/// Bytes of one record: label, then the image.
pub const CIFAR_RECORD_BYTES: usize = 1 + CIFAR_IMAGE_BYTES;
/// Number of CIFAR-10 classes; a label byte must be below it.
pub const CIFAR_CLASSES: u8 = 10;

/// Parses one CIFAR-10 binary batch into a 3x32x32 [`Dataset`]. `name` names it in errors.
pub fn cifar_batch_from_bytes(name: &str, bytes: &[u8]) -> Result<Dataset> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(CIFAR_RECORD_BYTES) {
        return Err(Error::format(
            name,
            format!(
                "{} bytes is not a positive multiple of the {CIFAR_RECORD_BYTES}-byte CIFAR-10 \
                 record (truncated or not a CIFAR-10 batch)",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / CIFAR_RECORD_BYTES;
    let mut labels = Vec::with_capacity(n);
    let mut images = Vec::with_capacity(n * CIFAR_IMAGE_BYTES);
    for (i, record) in bytes.chunks_exact(CIFAR_RECORD_BYTES).enumerate() {
        let label = record[0];
        if label >= CIFAR_CLASSES {
            return Err(Error::format(
                name,
                format!(
                    "record {i} (offset {}) has label {label}, CIFAR-10 labels are 0..=9",
                    i * CIFAR_RECORD_BYTES
                ),
            ));
        }
        labels.push(label);
        images.extend_from_slice(&record[1..]);
    }
    Dataset::new(images, labels, 3, CIFAR_SIDE, CIFAR_SIDE)
}

/// Reads one CIFAR-10 binary batch; see [`cifar_batch_from_bytes`].
pub fn read_cifar_batch(path: &Path) -> Result<Dataset> {
    cifar_batch_from_bytes(&path.display().to_string(), &read_file(path)?)
}

/// Encodes a 3x32x32 dataset as a CIFAR-10 binary batch (for tests and tools).
pub fn encode_cifar_batch(data: &Dataset) -> Result<Vec<u8>> {
    if data.channels() != 3 || data.height() != CIFAR_SIDE || data.width() != CIFAR_SIDE {
        return Err(Error::invalid(
            "encode_cifar_batch",
            format!(
                "images are {}x{}x{}, a CIFAR-10 batch holds 3x32x32",
                data.channels(),
                data.height(),
                data.width()
            ),
        ));
    }
    let mut out = Vec::with_capacity(data.len() * CIFAR_RECORD_BYTES);
    for i in 0..data.len() {
        out.push(data.labels()[i]);
        out.extend_from_slice(data.image(i));
    }
    Ok(out)
}
