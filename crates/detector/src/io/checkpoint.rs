//! A versioned, checksummed binary container of named values: the training state (weights,
//! Adam moments, reference gradients, counters, RNG states, configuration) is mapped onto it.
//!
//! # Byte layout (format version 1, all integers little-endian)
//!
//! ```text
//! offset  size        field
//! 0       8           magic: the ASCII bytes "GRADCKPT"
//! 8       4   u32     format version (1)
//! 12      4   u32     entry count n
//! 16      ...         n entries, in increasing byte order of their names:
//!                       1   u8    kind: 1 f32 tensor, 2 u64, 3 f64, 4 string, 5 u64 array
//!                       4   u32   name length, then the name (UTF-8, unique, not empty)
//!                       then by kind:
//!                         1: u32 rank r (at most 8), r x u64 dims, prod(dims) x f32 values
//!                         2: u64 value
//!                         3: f64 value (IEEE-754 bits)
//!                         4: u64 byte length, then the UTF-8 bytes
//!                         5: u64 count, then count x u64
//! end-4   4   u32     CRC-32 (IEEE 802.3, as zlib's `crc32`) of every byte before it
//! ```
//!
//! [`Checkpoint::from_bytes`] checks, in this order: the magic, the version, the checksum, then
//! every length field against the bytes that remain, so a truncated, altered or foreign file is
//! refused with an error naming the file and the problem, and nothing is allocated beyond what
//! the file holds. [`Checkpoint::write_atomic`] never leaves a half-written file under the
//! target name.
//!
//! ```
//! use core_tensor::Tensor;
//! use detector::io::checkpoint::Checkpoint;
//! let mut ck = Checkpoint::new();
//! ck.put_tensor("up.0.weight", Tensor::<f32>::zeros(&[64, 64, 4, 4]));
//! ck.put_u64("adam.step", 120);
//! ck.put_u64_array("rng", &[1, 2, 3, 4]);
//! ck.put_str("config", r#"{"alpha":0.03}"#);
//! let back = Checkpoint::from_bytes("mem", &ck.to_bytes())?;
//! assert_eq!(back.get_u64("adam.step")?, 120);
//! assert_eq!(back.get_u64_array_fixed::<4>("rng")?, [1, 2, 3, 4]);
//! assert!(back.get_f64("adam.step").is_err()); // wrong kind: an error naming the key
//! # Ok::<(), detector::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use byteorder::{ByteOrder, LittleEndian, WriteBytesExt};
use core_tensor::Tensor;

use super::fs::write_atomic;
use crate::error::{Error, Result};

/// The first eight bytes of every checkpoint.
pub const MAGIC: [u8; 8] = *b"GRADCKPT";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
/// The largest tensor rank accepted.
pub const MAX_RANK: usize = 8;

const KIND_TENSOR: u8 = 1;
const KIND_U64: u8 = 2;
const KIND_F64: u8 = 3;
const KIND_STR: u8 = 4;
const KIND_U64_ARRAY: u8 = 5;

/// One named value.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// An f32 tensor.
    Tensor(Tensor<f32>),
    /// An unsigned integer (counters, steps, seeds).
    U64(u64),
    /// A float (losses, learning rates).
    F64(f64),
    /// Text (e.g. the configuration as JSON).
    Str(String),
    /// Unsigned integers (e.g. an RNG state `[u64; 4]`).
    U64Array(Vec<u64>),
}

impl Entry {
    /// The kind's name as used in messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Tensor(_) => "f32 tensor",
            Self::U64(_) => "u64",
            Self::F64(_) => "f64",
            Self::Str(_) => "string",
            Self::U64Array(_) => "u64 array",
        }
    }
}

/// Named tensors, scalars and strings, written as one checksummed file (layout in the module
/// documentation). Putting a name again replaces its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    entries: BTreeMap<String, Entry>,
    source: String,
}

impl Default for Checkpoint {
    fn default() -> Self {
        Self::new()
    }
}

impl Checkpoint {
    /// An empty checkpoint.
    pub fn new() -> Self {
        Self {
            entries: BTreeMap::new(),
            source: "<checkpoint in memory>".into(),
        }
    }

    /// The file this checkpoint was read from (or a placeholder), as used in errors.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The names, in increasing byte order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Whether a value is stored under `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The entry under `name`, of any kind.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// Stores any entry under `name`.
    pub fn put(&mut self, name: impl Into<String>, entry: Entry) {
        self.entries.insert(name.into(), entry);
    }

    /// Removes the entry under `name`, returning it.
    pub fn remove(&mut self, name: &str) -> Option<Entry> {
        self.entries.remove(name)
    }

    /// Stores an f32 tensor.
    pub fn put_tensor(&mut self, name: impl Into<String>, t: Tensor<f32>) {
        self.put(name, Entry::Tensor(t));
    }

    /// Stores a u64.
    pub fn put_u64(&mut self, name: impl Into<String>, v: u64) {
        self.put(name, Entry::U64(v));
    }

    /// Stores an f64.
    pub fn put_f64(&mut self, name: impl Into<String>, v: f64) {
        self.put(name, Entry::F64(v));
    }

    /// Stores a string.
    pub fn put_str(&mut self, name: impl Into<String>, v: impl Into<String>) {
        self.put(name, Entry::Str(v.into()));
    }

    /// Stores a u64 array.
    pub fn put_u64_array(&mut self, name: impl Into<String>, v: &[u64]) {
        self.put(name, Entry::U64Array(v.to_vec()));
    }

    fn missing(&self, name: &str, expected: &'static str) -> Error {
        Error::Missing {
            file: self.source.clone(),
            key: name.into(),
            expected,
            found: self.entries.get(name).map(Entry::kind_name),
        }
    }

    /// The f32 tensor under `name`, or an error naming the key and the file.
    pub fn get_tensor(&self, name: &str) -> Result<&Tensor<f32>> {
        match self.entries.get(name) {
            Some(Entry::Tensor(t)) => Ok(t),
            _ => Err(self.missing(name, "f32 tensor")),
        }
    }

    /// The f32 tensor under `name`, which must have `shape`.
    pub fn get_tensor_shaped(&self, name: &str, shape: &[usize]) -> Result<&Tensor<f32>> {
        let t = self.get_tensor(name)?;
        if t.shape() != shape {
            return Err(Error::format(
                &self.source,
                format!("`{name}` has shape {:?}, expected {shape:?}", t.shape()),
            ));
        }
        Ok(t)
    }

    /// Removes and returns the f32 tensor under `name` (no copy).
    pub fn take_tensor(&mut self, name: &str) -> Result<Tensor<f32>> {
        match self.entries.remove(name) {
            Some(Entry::Tensor(t)) => Ok(t),
            Some(other) => {
                let found = other.kind_name();
                self.entries.insert(name.into(), other);
                Err(Error::Missing {
                    file: self.source.clone(),
                    key: name.into(),
                    expected: "f32 tensor",
                    found: Some(found),
                })
            }
            None => Err(self.missing(name, "f32 tensor")),
        }
    }

    /// The u64 under `name`.
    pub fn get_u64(&self, name: &str) -> Result<u64> {
        match self.entries.get(name) {
            Some(Entry::U64(v)) => Ok(*v),
            _ => Err(self.missing(name, "u64")),
        }
    }

    /// The f64 under `name`.
    pub fn get_f64(&self, name: &str) -> Result<f64> {
        match self.entries.get(name) {
            Some(Entry::F64(v)) => Ok(*v),
            _ => Err(self.missing(name, "f64")),
        }
    }

    /// The string under `name`.
    pub fn get_str(&self, name: &str) -> Result<&str> {
        match self.entries.get(name) {
            Some(Entry::Str(v)) => Ok(v),
            _ => Err(self.missing(name, "string")),
        }
    }

    /// The u64 array under `name`.
    pub fn get_u64_array(&self, name: &str) -> Result<&[u64]> {
        match self.entries.get(name) {
            Some(Entry::U64Array(v)) => Ok(v),
            _ => Err(self.missing(name, "u64 array")),
        }
    }

    /// The u64 array under `name`, which must hold exactly `N` values (e.g. an RNG state).
    pub fn get_u64_array_fixed<const N: usize>(&self, name: &str) -> Result<[u64; N]> {
        let v = self.get_u64_array(name)?;
        v.try_into().map_err(|_| {
            Error::format(
                &self.source,
                format!("`{name}` holds {} values, expected {N}", v.len()),
            )
        })
    }

    /// The file's bytes (layout in the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        put_u32(&mut out, VERSION);
        put_u32(&mut out, self.entries.len() as u32);
        for (name, entry) in &self.entries {
            let kind = match entry {
                Entry::Tensor(_) => KIND_TENSOR,
                Entry::U64(_) => KIND_U64,
                Entry::F64(_) => KIND_F64,
                Entry::Str(_) => KIND_STR,
                Entry::U64Array(_) => KIND_U64_ARRAY,
            };
            out.push(kind);
            put_u32(&mut out, name.len() as u32);
            out.extend_from_slice(name.as_bytes());
            match entry {
                Entry::Tensor(t) => {
                    put_u32(&mut out, t.rank() as u32);
                    for &d in t.shape() {
                        put_u64(&mut out, d as u64);
                    }
                    out.reserve(4 * t.len());
                    for &v in t.data() {
                        out.write_f32::<LittleEndian>(v)
                            .expect("writing to a Vec cannot fail");
                    }
                }
                Entry::U64(v) => put_u64(&mut out, *v),
                Entry::F64(v) => out
                    .write_f64::<LittleEndian>(*v)
                    .expect("writing to a Vec cannot fail"),
                Entry::Str(s) => {
                    put_u64(&mut out, s.len() as u64);
                    out.extend_from_slice(s.as_bytes());
                }
                Entry::U64Array(v) => {
                    put_u64(&mut out, v.len() as u64);
                    for &x in v {
                        put_u64(&mut out, x);
                    }
                }
            }
        }
        let crc = crc32fast::hash(&out);
        put_u32(&mut out, crc);
        out
    }

    /// Parses a checkpoint's bytes; `name` names the source in errors. Refuses a wrong magic,
    /// an unknown version, a checksum mismatch, and any length field reaching past the data.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Self> {
        let err = |problem: String| Error::format(name, problem);
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            return Err(err(format!(
                "not a gradcon checkpoint (the file does not start with {:?})",
                std::str::from_utf8(&MAGIC).unwrap_or_default()
            )));
        }
        if bytes.len() < 12 {
            return Err(err("truncated: no format version".into()));
        }
        let version = LittleEndian::read_u32(&bytes[8..12]);
        if version != VERSION {
            return Err(err(format!(
                "format version {version} is not supported (this build reads version {VERSION})"
            )));
        }
        if bytes.len() < 16 + 4 {
            return Err(err(format!(
                "truncated: {} bytes, the smallest checkpoint has 20",
                bytes.len()
            )));
        }
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        let stored = LittleEndian::read_u32(tail);
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(err(format!(
                "checksum mismatch (stored {stored:08x}, computed {computed:08x}): the file is \
                 truncated or altered"
            )));
        }
        let count = LittleEndian::read_u32(&body[12..16]);
        let mut r = Cursor {
            bytes: body,
            pos: 16,
            name,
        };
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        for i in 0..count {
            let kind = r.u8()?;
            let name_len = r.u32()? as usize;
            let key = std::str::from_utf8(r.bytes(name_len, "entry name")?)
                .map_err(|_| err(format!("entry {i}: the name is not UTF-8")))?
                .to_owned();
            if key.is_empty() {
                return Err(err(format!("entry {i} has an empty name")));
            }
            let entry = match kind {
                KIND_TENSOR => {
                    let rank = r.u32()? as usize;
                    if rank > MAX_RANK {
                        return Err(err(format!(
                            "`{key}`: rank {rank} exceeds the limit of {MAX_RANK}"
                        )));
                    }
                    let mut shape = Vec::with_capacity(rank);
                    for _ in 0..rank {
                        shape.push(r.u64()?);
                    }
                    let len = shape
                        .iter()
                        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                        .and_then(|n| n.checked_mul(4))
                        .filter(|&n| n <= r.remaining() as u64)
                        .ok_or_else(|| {
                            err(format!(
                                "`{key}`: shape {shape:?} needs more bytes than the {} left",
                                r.remaining()
                            ))
                        })?;
                    let data: Vec<f32> = r
                        .bytes(len as usize, "tensor data")?
                        .chunks_exact(4)
                        .map(LittleEndian::read_f32)
                        .collect();
                    let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
                    Entry::Tensor(Tensor::from_vec(data, &shape)?)
                }
                KIND_U64 => Entry::U64(r.u64()?),
                KIND_F64 => Entry::F64(f64::from_bits(r.u64()?)),
                KIND_STR => {
                    let len = r.len_u64("string")?;
                    let s = std::str::from_utf8(r.bytes(len, "string")?)
                        .map_err(|_| err(format!("`{key}`: the string is not UTF-8")))?;
                    Entry::Str(s.to_owned())
                }
                KIND_U64_ARRAY => {
                    let count = r.len_u64("u64 array")?;
                    let bytes = count
                        .checked_mul(8)
                        .ok_or_else(|| err(format!("`{key}`: {count} values overflow")))?;
                    Entry::U64Array(
                        r.bytes(bytes, "u64 array")?
                            .chunks_exact(8)
                            .map(LittleEndian::read_u64)
                            .collect(),
                    )
                }
                other => return Err(err(format!("`{key}` (entry {i}) has unknown kind {other}"))),
            };
            // Names must come in strictly increasing order, as written: this refuses repeats
            // and keeps one byte sequence per checkpoint.
            if let Some((last, _)) = entries.last_key_value() {
                if key.as_bytes() <= last.as_bytes() {
                    let what = if &key == last {
                        "appears twice"
                    } else {
                        "is out of order"
                    };
                    return Err(err(format!("`{key}` (entry {i}) {what}")));
                }
            }
            entries.insert(key, entry);
        }
        if r.remaining() != 0 {
            return Err(err(format!(
                "{} unexpected bytes after the {count} entries",
                r.remaining()
            )));
        }
        Ok(Self {
            entries,
            source: name.into(),
        })
    }

    /// Reads a checkpoint file; see [`Checkpoint::from_bytes`]. Errors name `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = super::fs::read_file(path)?;
        Self::from_bytes(&path.display().to_string(), &bytes)
    }

    /// Writes the checkpoint to `path` atomically; see [`write_atomic`].
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes())
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.write_u32::<LittleEndian>(v)
        .expect("writing to a Vec cannot fail");
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.write_u64::<LittleEndian>(v)
        .expect("writing to a Vec cannot fail");
}

/// Bounds-checked little-endian reads over the checksummed body.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    name: &'a str,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::format(
                self.name,
                format!(
                    "{what} at offset {} claims {n} bytes, only {} left",
                    self.pos,
                    self.remaining()
                ),
            ));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1, "entry kind")?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(LittleEndian::read_u32(self.bytes(4, "u32 field")?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(LittleEndian::read_u64(self.bytes(8, "u64 field")?))
    }

    /// A u64 length field, refused when it exceeds the bytes left.
    fn len_u64(&mut self, what: &str) -> Result<usize> {
        let at = self.pos;
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.remaining())
            .ok_or_else(|| {
                Error::format(
                    self.name,
                    format!(
                        "{what} length {n} at offset {at} exceeds the {} bytes left",
                        self.remaining()
                    ),
                )
            })
    }
}
