//! Your own images: files and folders of IDX, CIFAR-10, PNG and JPEG images, loaded into one
//! [`Dataset`] at the model's `channels x side x side`, with the source of every image.
//!
//! # Which files
//!
//! [`collect_files`] takes any mix of files and folders, in the order given:
//!
//! - A **file** given by name is always read, whatever its extension; its format is told by
//!   its first bytes (see below). A symbolic link given by name is followed.
//! - A **folder** is read recursively. Its files are taken in the byte order of their paths
//!   relative to the folder (`a.png` < `a/b.png` < `b.png` < `b/a.png`; upper case before
//!   lower case), one folder argument after the other. Inside a folder:
//!   - entries whose name starts with `.` (hidden files and folders) are skipped;
//!   - symbolic links are skipped, never followed (so no link can loop or lead out of the
//!     folder);
//!   - files are taken by their extension, compared case-insensitively: IDX images
//!     (`*-idx3-ubyte`, `*.idx`, `*.idx3`, each also with `.gz`), CIFAR-10 batches (`*.bin`),
//!     PNG (`*.png`) and JPEG (`*.jpg`, `*.jpeg`). Other files are skipped.
//!
//!   Skipped entries are listed in [`FileList::skipped`], for a one-line summary
//!   ([`Skipped::summary`]).
//!
//! # Which format
//!
//! A file's format is told by its first bytes, whatever its name: `89 50 4E 47` (`\x89PNG`)
//! PNG, `FF D8 FF` JPEG, `1F 8B` (gzip) or `00 00 08 03` an IDX images file; otherwise a file
//! whose size is a positive multiple of 3073 bytes is a CIFAR-10 batch. A `*.bin` file is
//! always read as a CIFAR-10 batch (a record starts with its label byte, and the next three
//! bytes, pixels, could by chance look like the IDX magic). Anything else is refused, naming
//! the file.
//!
//! # From a file to the model's input
//!
//! Every image is brought to `channels x side x side` right after it is decoded, so only one
//! decoded image of its own size is held at a time:
//!
//! 1. Channels: PNG and JPEG images are converted to the model's channels by the rules of
//!    [`super::image`] (RGB to grey by PIL's luma, grey to RGB by replication); IDX files hold
//!    grey images and CIFAR-10 batches RGB ones, and must match the model's channels (a data
//!    set of the other kind is refused, naming the file: it is more likely a mistake than a
//!    wish).
//! 2. Size: brought to `side x side` by the [`Fit`] mode (stretch, crop or pad; see
//!    [`super::fit`]) and PIL's antialiasing Lanczos resize.
//! 3. Labels: CIFAR-10 batches keep their labels; every other image is labelled 0.
//!
//! # Limits
//!
//! Each file is read through [`read_file`], within [`Limits::max_file_bytes`]. The resized
//! pixel values of the whole load are counted as it goes: a file whose images would take the
//! total past [`Limits::max_pixels`] is refused, naming it, before its images are resized.
//! Decoders check their own decoded size against the same limit before allocating it.
//!
//! ```no_run
//! use detector::data::files::{collect_files, load_files};
//! use detector::data::Fit;
//! let list = collect_files(&["photos/", "extra/one.jpg"])?;
//! if let Some(line) = list.skipped.summary() {
//!     eprintln!("{line}");
//! }
//! let loaded = load_files(&list.files, 1, 28, Fit::Crop)?;
//! println!("{} images, the first from {}", loaded.images.len(), loaded.sources[0]);
//! # Ok::<(), detector::Error>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use super::cifar::{cifar_batch_from_bytes, CIFAR_CLASSES, CIFAR_RECORD_BYTES, CIFAR_SIDE};
use super::fit::Fit;
use super::idx::{idx_images_from_bytes, read_full, IdxImageReader, GZIP_MAGIC, IDX_IMAGES_MAGIC};
use super::{Dataset, Image};
use crate::error::{Error, Result};
use crate::io::fs::{open_file, read_file, Limits};

/// The first four bytes of every PNG file.
pub const PNG_MAGIC: [u8; 4] = [0x89, b'P', b'N', b'G'];

/// The first bytes of every JPEG file: the start-of-image marker and the next marker's `FF`.
pub const JPEG_MAGIC: [u8; 3] = [0xff, 0xd8, 0xff];

/// The image file formats read (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// IDX images, plain or gzipped (MNIST, Fashion-MNIST): grey, many per file.
    Idx,
    /// A CIFAR-10 binary batch: RGB 32x32 with labels, many per file.
    Cifar,
    /// One PNG image.
    Png,
    /// One JPEG image.
    Jpeg,
}

impl Format {
    /// The format a file found in a folder is taken as, from its name (case-insensitive);
    /// `None` for a file that is skipped there.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let ext = |e: &str| name.len() > e.len() && name.ends_with(e);
        if ext(".png") {
            return Some(Format::Png);
        }
        if ext(".jpg") || ext(".jpeg") {
            return Some(Format::Jpeg);
        }
        if ext(".bin") {
            return Some(Format::Cifar);
        }
        let stem = name.strip_suffix(".gz").unwrap_or(&name);
        let idx = |e: &str| stem.len() > e.len() && stem.ends_with(e);
        (idx("-idx3-ubyte") || idx(".idx") || idx(".idx3")).then_some(Format::Idx)
    }

    /// The format of a file's contents (see the module documentation); `None` when it is none
    /// of them.
    pub fn sniff(path: &Path, bytes: &[u8]) -> Option<Format> {
        let bin = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("bin"));
        if bin {
            Some(Format::Cifar)
        } else if bytes.starts_with(&PNG_MAGIC) {
            Some(Format::Png)
        } else if bytes.starts_with(&JPEG_MAGIC) {
            Some(Format::Jpeg)
        } else if bytes.starts_with(&GZIP_MAGIC)
            || bytes.starts_with(&IDX_IMAGES_MAGIC.to_be_bytes())
        {
            Some(Format::Idx)
        } else if !bytes.is_empty() && bytes.len().is_multiple_of(CIFAR_RECORD_BYTES) {
            Some(Format::Cifar)
        } else {
            None
        }
    }
}

/// The files [`collect_files`] found, in reading order, and what it skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileList {
    /// The files to read, in order.
    pub files: Vec<PathBuf>,
    /// What was left out of the folders.
    pub skipped: Skipped,
}

/// Entries of folders left out by [`collect_files`], each list in path order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Files whose extension is not an image's.
    pub other: Vec<PathBuf>,
    /// Hidden files and folders (a folder counts once; it is not entered).
    pub hidden: Vec<PathBuf>,
    /// Symbolic links (not followed).
    pub links: Vec<PathBuf>,
}

impl Skipped {
    /// Whether nothing was skipped.
    pub fn is_empty(&self) -> bool {
        self.other.is_empty() && self.hidden.is_empty() && self.links.is_empty()
    }

    /// One line saying what was skipped, e.g. `skipped 2 files of other types (first:
    /// a/notes.txt), 1 hidden entry, 1 symbolic link (not followed)`; `None` when nothing
    /// was.
    pub fn summary(&self) -> Option<String> {
        let count =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = Vec::new();
        if let Some(first) = self.other.first() {
            parts.push(format!(
                "{} (first: {})",
                count(
                    self.other.len(),
                    "file of another type",
                    "files of other types"
                ),
                first.display()
            ));
        }
        if !self.hidden.is_empty() {
            parts.push(count(self.hidden.len(), "hidden entry", "hidden entries"));
        }
        if !self.links.is_empty() {
            parts.push(format!(
                "{} (not followed)",
                count(self.links.len(), "symbolic link", "symbolic links")
            ));
        }
        (!parts.is_empty()).then(|| format!("skipped {}", parts.join(", ")))
    }
}

/// The files to read from `paths` (files and folders, in this order), by the rules in the
/// module documentation. A path that does not exist, or a folder that cannot be read, is an
/// error naming it.
pub fn collect_files<P: AsRef<Path>>(paths: &[P]) -> Result<FileList> {
    let mut list = FileList::default();
    for path in paths {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "open", e))?;
        if meta.is_dir() {
            walk(path, &mut list)?;
        } else {
            list.files.push(path.to_path_buf());
        }
    }
    for skipped in [
        &mut list.skipped.other,
        &mut list.skipped.hidden,
        &mut list.skipped.links,
    ] {
        sort_by_bytes(skipped);
    }
    Ok(list)
}

fn sort_by_bytes(paths: &mut [PathBuf]) {
    paths.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
}

/// Adds the image files under `root` to `list`, in the byte order of their relative paths.
fn walk(root: &Path, list: &mut FileList) -> Result<()> {
    let mut found = Vec::new();
    let mut folders = vec![PathBuf::new()];
    while let Some(rel) = folders.pop() {
        let dir = if rel.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, "read folder", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, "read folder", e))?;
            let name = entry.file_name();
            let child = rel.join(&name);
            if name.as_encoded_bytes().starts_with(b".") {
                list.skipped.hidden.push(root.join(child));
                continue;
            }
            // The entry's own type: a symbolic link is not resolved.
            let kind = entry
                .file_type()
                .map_err(|e| Error::io(entry.path(), "stat", e))?;
            if kind.is_symlink() {
                list.skipped.links.push(root.join(child));
            } else if kind.is_dir() {
                folders.push(child);
            } else if kind.is_file() && Format::from_extension(&child).is_some() {
                found.push(child);
            } else {
                list.skipped.other.push(root.join(child));
            }
        }
    }
    sort_by_bytes(&mut found);
    list.files
        .extend(found.into_iter().map(|rel| root.join(rel)));
    Ok(())
}

/// Where an image of a load came from: its file, and its position in a file of many images
/// (IDX, CIFAR-10; `None` for a PNG or JPEG file, which holds one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageSource {
    /// The file.
    pub path: PathBuf,
    /// The image's index in the file (from 0), for files of many images.
    pub index: Option<usize>,
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{} (image {i})", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// The images of a load, at the model's size, and where each came from
/// (`sources[i]` is the source of `images.image(i)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImages {
    /// The images, `channels x side x side`.
    pub images: Dataset,
    /// One source per image.
    pub sources: Vec<ImageSource>,
}

/// Reads `files` (each in its own format, told by [`Format::sniff`]) into one data set of
/// `channels x side x side` images, in file order, by the rules in the module documentation.
/// Every error names the file it comes from. The time taken is linear in the number of
/// images: each is converted and appended to one buffer right after it is decoded.
pub fn load_files<P: AsRef<Path>>(
    files: &[P],
    channels: usize,
    side: usize,
    fit: Fit,
) -> Result<LoadedImages> {
    let mut load = Loader::new(channels, side, fit)?;
    for path in files {
        load.file(path.as_ref())?;
    }
    Ok(LoadedImages {
        images: Dataset::new(load.pixels, load.labels, channels, side, side)?,
        sources: load.sources,
    })
}

/// The images of files read in batches, by the rules of [`load_files`], holding no more than
/// one batch and one open file at a time: memory does not grow with the number of images. IDX
/// files (gzipped or not) and CIFAR-10 batches are read image by image; a PNG or JPEG file is
/// one image. An error names the file (and a batch already returned stays valid: a caller that
/// must not act on part of the input keeps its output until the stream ends).
pub struct ImageStream {
    loader: Loader,
    files: Vec<PathBuf>,
    next: usize,
    open: Option<Open>,
}

impl fmt::Debug for ImageStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ImageStream({} of {} files)",
            self.next,
            self.files.len()
        )
    }
}

/// A file of many images being read.
enum Open {
    Idx {
        reader: IdxImageReader,
        path: PathBuf,
        name: String,
        index: usize,
        buf: Vec<u8>,
    },
    Cifar {
        reader: std::io::BufReader<std::io::Take<std::fs::File>>,
        path: PathBuf,
        name: String,
        index: usize,
    },
}

impl ImageStream {
    /// A stream over `files` at `channels x side x side` (checked as [`load_files`] checks).
    pub fn new<P: AsRef<Path>>(
        files: &[P],
        channels: usize,
        side: usize,
        fit: Fit,
    ) -> Result<Self> {
        Ok(Self {
            loader: Loader::new(channels, side, fit)?,
            files: files.iter().map(|f| f.as_ref().to_path_buf()).collect(),
            next: 0,
            open: None,
        })
    }

    /// The next at most `max` (at least 1) images, `None` once every file is read.
    pub fn next_batch(&mut self, max: usize) -> Result<Option<LoadedImages>> {
        let max = max.max(1);
        while self.loader.labels.len() < max {
            if let Some(open) = &mut self.open {
                if !self.loader.pull(open)? {
                    self.open = None;
                }
                continue;
            }
            let Some(path) = self.files.get(self.next).cloned() else {
                break;
            };
            self.next += 1;
            self.open = self.loader.open(&path)?;
        }
        if self.loader.labels.is_empty() {
            return Ok(None);
        }
        let (c, side) = (self.loader.channels, self.loader.side);
        self.loader.handed_out += self.loader.labels.len() as u128;
        Ok(Some(LoadedImages {
            images: Dataset::new(
                std::mem::take(&mut self.loader.pixels),
                std::mem::take(&mut self.loader.labels),
                c,
                side,
                side,
            )?,
            sources: std::mem::take(&mut self.loader.sources),
        }))
    }
}

/// The growing buffers of [`load_files`].
struct Loader {
    channels: usize,
    side: usize,
    fit: Fit,
    pixels: Vec<u8>,
    labels: Vec<u8>,
    sources: Vec<ImageSource>,
    /// Images a stream has handed out in earlier batches (they count toward the load's
    /// pixel limit).
    handed_out: u128,
}

impl Loader {
    /// Empty buffers for `channels x side x side` images (1 or 3 channels, a side above 0).
    fn new(channels: usize, side: usize, fit: Fit) -> Result<Self> {
        if channels != 1 && channels != 3 {
            return Err(Error::invalid(
                "load_files",
                format!("{channels} channels asked for; a model takes 1 or 3"),
            ));
        }
        if side == 0 {
            return Err(Error::invalid("load_files", "an image side of 0"));
        }
        Ok(Self {
            channels,
            side,
            fit,
            pixels: Vec::new(),
            labels: Vec::new(),
            sources: Vec::new(),
            handed_out: 0,
        })
    }

    /// Starts reading `path` for a stream: a PNG or JPEG file is read whole (its image
    /// appended); a file of many images is opened and returned, to be pulled image by image.
    fn open(&mut self, path: &Path) -> Result<Option<Open>> {
        let name = path.display().to_string();
        let (mut file, size) = open_file(path)?;
        let mut head = [0u8; 8];
        let got = read_full(&mut file, &mut head).map_err(|e| Error::io(path, "read", e))?;
        let head = &head[..got];
        let bin = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("bin"));
        let whole_records =
            size.is_some_and(|n| n > 0 && n.is_multiple_of(CIFAR_RECORD_BYTES as u64));
        if bin
            || (!head.starts_with(&PNG_MAGIC)
                && !head.starts_with(&JPEG_MAGIC)
                && !head.starts_with(&GZIP_MAGIC)
                && !head.starts_with(&IDX_IMAGES_MAGIC.to_be_bytes())
                && whole_records)
        {
            if !whole_records {
                return Err(Error::format(
                    &name,
                    format!(
                        "{} bytes is not a positive multiple of the {CIFAR_RECORD_BYTES}-byte \
                         CIFAR-10 record (truncated or not a CIFAR-10 batch)",
                        size.map_or("an unknown number of".into(), |n| n.to_string())
                    ),
                ));
            }
            self.check_channels(&name, 3, "RGB CIFAR-10 images")?;
            let records = size.unwrap_or(0) / CIFAR_RECORD_BYTES as u64;
            self.check_room(&name, usize::try_from(records).unwrap_or(usize::MAX))?;
            drop(file);
            let (file, _) = open_file(path)?;
            return Ok(Some(Open::Cifar {
                reader: std::io::BufReader::with_capacity(1 << 16, file),
                path: path.to_path_buf(),
                name,
                index: 0,
            }));
        }
        if head.starts_with(&GZIP_MAGIC) || head.starts_with(&IDX_IMAGES_MAGIC.to_be_bytes()) {
            drop(file);
            let reader = IdxImageReader::open(path)?;
            self.check_channels(&name, 1, "grey IDX images")?;
            self.check_room(&name, reader.count)?;
            return Ok(Some(Open::Idx {
                reader,
                path: path.to_path_buf(),
                name,
                index: 0,
                buf: Vec::new(),
            }));
        }
        drop(file);
        self.file(path)?;
        Ok(None)
    }

    /// Appends the next image of `open`; `false` when it has none left.
    fn pull(&mut self, open: &mut Open) -> Result<bool> {
        match open {
            Open::Idx {
                reader,
                path,
                name,
                index,
                buf,
            } => {
                if !reader.read_image(buf)? {
                    return Ok(false);
                }
                self.reserve(name, 1)?;
                let (h, w) = (reader.rows, reader.cols);
                self.push(name, buf, h, w, 0, path, Some(*index))?;
                *index += 1;
                Ok(true)
            }
            Open::Cifar {
                reader,
                path,
                name,
                index,
            } => {
                let mut record = [0u8; CIFAR_RECORD_BYTES];
                let n = read_full(reader, &mut record)
                    .map_err(|e| Error::io(path.as_path(), "read", e))?;
                if n == 0 {
                    return Ok(false);
                }
                if n < record.len() {
                    return Err(Error::format(
                        name.as_str(),
                        format!("truncated: record {index} has {n} of {CIFAR_RECORD_BYTES} bytes"),
                    ));
                }
                let label = record[0];
                if label >= CIFAR_CLASSES {
                    return Err(Error::format(
                        name.as_str(),
                        format!(
                            "record {index} (offset {}) has label {label}, CIFAR-10 labels are \
                             0..=9",
                            *index * CIFAR_RECORD_BYTES
                        ),
                    ));
                }
                self.reserve(name, 1)?;
                self.push(
                    name,
                    &record[1..],
                    CIFAR_SIDE,
                    CIFAR_SIDE,
                    label,
                    path,
                    Some(*index),
                )?;
                *index += 1;
                Ok(true)
            }
        }
    }

    fn file(&mut self, path: &Path) -> Result<()> {
        let name = path.display().to_string();
        let bytes = read_file(path)?;
        let format = Format::sniff(path, &bytes).ok_or_else(|| {
            Error::format(
                &name,
                "not an image file of a known format (PNG, JPEG, IDX images, gzipped or not, \
                 or a CIFAR-10 batch of 3073-byte records)",
            )
        })?;
        match format {
            Format::Png | Format::Jpeg => {
                let image = if format == Format::Png {
                    decode_png(&name, &bytes, self.channels)?
                } else {
                    decode_jpeg(&name, &bytes, self.channels)?
                };
                drop(bytes);
                self.reserve(&name, 1)?;
                let (h, w) = (image.height(), image.width());
                let planes = image.into_u8_pixels().unwrap_or_default();
                self.push(&name, &planes, h, w, 0, path, None)
            }
            Format::Idx => {
                let idx = idx_images_from_bytes(&name, &bytes)?;
                drop(bytes);
                self.check_channels(&name, 1, "grey IDX images")?;
                self.reserve(&name, idx.count)?;
                let len = idx.rows * idx.cols;
                for (i, image) in idx.pixels.chunks_exact(len).enumerate() {
                    self.push(&name, image, idx.rows, idx.cols, 0, path, Some(i))?;
                }
                Ok(())
            }
            Format::Cifar => {
                let batch = cifar_batch_from_bytes(&name, &bytes)?;
                drop(bytes);
                self.check_channels(&name, 3, "RGB CIFAR-10 images")?;
                self.reserve(&name, batch.len())?;
                for i in 0..batch.len() {
                    let (h, w, label) = (batch.height(), batch.width(), batch.labels()[i]);
                    self.push(&name, batch.image(i), h, w, label, path, Some(i))?;
                }
                Ok(())
            }
        }
    }

    fn check_channels(&self, name: &str, found: usize, what: &str) -> Result<()> {
        if found == self.channels {
            return Ok(());
        }
        Err(Error::format(
            name,
            format!(
                "{found} channel{} ({what}), but the model takes {}; data set files are not \
                 converted (PNG and JPEG images are)",
                if found == 1 { "" } else { "s" },
                self.channels
            ),
        ))
    }

    /// An error unless `count` more images fit in [`Limits::max_pixels`] for the whole load.
    fn check_room(&self, name: &str, count: usize) -> Result<()> {
        let per_image = self.channels * self.side * self.side;
        let images = self.handed_out + self.labels.len() as u128 + count as u128;
        Limits::check_pixels(name, images * per_image as u128)
    }

    /// Room for `count` more images, within [`Limits::max_pixels`] for the whole load.
    fn reserve(&mut self, name: &str, count: usize) -> Result<()> {
        let per_image = self.channels * self.side * self.side;
        self.check_room(name, count)?;
        self.pixels.reserve(count * per_image);
        self.labels.reserve(count);
        self.sources.reserve(count);
        Ok(())
    }

    /// Appends one image of `height x width` planes at the model's size.
    fn push(
        &mut self,
        name: &str,
        planes: &[u8],
        height: usize,
        width: usize,
        label: u8,
        path: &Path,
        index: Option<usize>,
    ) -> Result<()> {
        let fitted = self
            .fit
            .apply(planes, self.channels, height, width, self.side)
            .map_err(|e| Error::format(name, e.to_string()))?;
        self.pixels.extend_from_slice(&fitted);
        self.labels.push(label);
        self.sources.push(ImageSource {
            path: path.to_path_buf(),
            index,
        });
        Ok(())
    }
}

/// One PNG image, converted to `channels`.
fn decode_png(name: &str, bytes: &[u8], channels: usize) -> Result<Image> {
    #[cfg(feature = "png")]
    return super::png::png_from_bytes(name, bytes, channels);
    #[cfg(not(feature = "png"))]
    return codec_off(name, bytes, channels, "PNG", "png");
}

/// One JPEG image, converted to `channels`.
fn decode_jpeg(name: &str, bytes: &[u8], channels: usize) -> Result<Image> {
    #[cfg(feature = "jpeg")]
    return super::jpeg::jpeg_from_bytes(name, bytes, channels);
    #[cfg(not(feature = "jpeg"))]
    return codec_off(name, bytes, channels, "JPEG", "jpeg");
}

/// The refusal of an image whose codec this build leaves out.
#[cfg(not(all(feature = "png", feature = "jpeg")))]
fn codec_off(name: &str, _: &[u8], _: usize, what: &str, feature: &str) -> Result<Image> {
    Err(Error::format(
        name,
        format!(
            "a {what} image, but this build reads no {what} (the detector's `{feature}` \
             feature is off)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_files_are_taken_by_extension_in_any_case() {
        let format = |name: &str| Format::from_extension(Path::new(name));
        for (name, want) in [
            ("a.png", Some(Format::Png)),
            ("A.PNG", Some(Format::Png)),
            ("x/b.Jpg", Some(Format::Jpeg)),
            ("c.jpeg", Some(Format::Jpeg)),
            ("data_batch_1.bin", Some(Format::Cifar)),
            ("train-images-idx3-ubyte", Some(Format::Idx)),
            ("t10k-images-idx3-ubyte.gz", Some(Format::Idx)),
            ("some.IDX", Some(Format::Idx)),
            ("some.idx3.GZ", Some(Format::Idx)),
            ("train-labels-idx1-ubyte", None),
            ("photo.png.gz", None),
            ("notes.txt", None),
            ("png", None),
            ("-idx3-ubyte", None),
        ] {
            assert_eq!(format(name), want, "{name}");
        }
    }

    #[test]
    fn contents_tell_the_format() {
        let sniff = |name: &str, bytes: &[u8]| Format::sniff(Path::new(name), bytes);
        assert_eq!(sniff("x.jpg", b"\x89PNG\r\n"), Some(Format::Png));
        assert_eq!(sniff("x", &[0xff, 0xd8, 0xff, 0xe0]), Some(Format::Jpeg));
        assert_eq!(sniff("x.png", &[0x1f, 0x8b, 8]), Some(Format::Idx));
        assert_eq!(sniff("x", &[0, 0, 8, 3, 0]), Some(Format::Idx));
        assert_eq!(sniff("x", &[5; 2 * 3073]), Some(Format::Cifar));
        // A CIFAR record of label 0 whose pixels start 0, 8, 3 is still CIFAR when named .bin.
        assert_eq!(sniff("batch.BIN", &[0, 0, 8, 3]), Some(Format::Cifar));
        assert_eq!(sniff("x", &[5; 3072]), None);
        assert_eq!(sniff("x", &[]), None);
    }

    #[cfg(not(all(feature = "png", feature = "jpeg")))]
    #[test]
    fn a_codec_left_out_is_named() {
        let dir = std::env::temp_dir().join(format!("gradcon-files-off-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let png = dir.join("a.png");
        let jpeg = dir.join("a.jpg");
        std::fs::write(&png, b"\x89PNG\r\n\x1a\n").unwrap();
        std::fs::write(&jpeg, [0xff, 0xd8, 0xff, 0xe0]).unwrap();
        for (path, feature) in [(&png, "png"), (&jpeg, "jpeg")] {
            let err = load_files(&[path], 1, 28, Fit::Stretch)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&path.display().to_string()), "{err}");
            if cfg!(not(feature = "png")) && feature == "png"
                || cfg!(not(feature = "jpeg")) && feature == "jpeg"
            {
                assert!(
                    err.contains(&format!("`{feature}` feature is off")),
                    "{err}"
                );
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
