//! Data sets: readers for IDX (MNIST, Fashion-MNIST), CIFAR-10 binary batches, PNG and JPEG
//! images, PIL-exact Lanczos resizing, and the in-memory [`Dataset`] the model trains and scores
//! on. Files and folders of your own images load through [`files`], fitted to the model's
//! square input by [`fit`].
//!
//! Every reader has a byte-slice entry point (`*_from_bytes(name, &[u8])`, `name` naming the
//! source in errors) and a file entry point. Readers reject malformed input with an
//! [`Error::Format`] naming the file and the problem; they do not panic, and they allocate only
//! what the input actually holds (sizes a header claims are checked against the data first).
//!
//! Data folders come from the user, never from a built-in path: [`resolve_data_dir`] takes the
//! `--data-dir` flag, else the `GRADCON_DATA` environment variable.
//!
//! ```no_run
//! use detector::data::{load_mnist, resolve_data_dir, Split};
//! let root = resolve_data_dir(None)?; // --data-dir, else $GRADCON_DATA
//! let train = load_mnist(&root, Split::Train)?;
//! let sevens = train.select_class(7);
//! let batch = sevens.batch_tensor(&[0, 1, 2])?; // [3, 1, 28, 28], values in [0, 1]
//! # Ok::<(), detector::Error>(())
//! ```

pub mod cifar;
pub mod files;
pub mod fit;
pub mod idx;
pub mod image;
#[cfg(feature = "jpeg")]
pub mod jpeg;
#[cfg(feature = "png")]
pub mod png;
pub mod resize;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use core_tensor::Tensor;

use crate::error::{Error, Result};

pub use cifar::{cifar_batch_from_bytes, read_cifar_batch};
pub use files::{collect_files, load_files, FileList, ImageSource, ImageStream, LoadedImages};
pub use fit::Fit;
pub use idx::{idx_images_from_bytes, idx_labels_from_bytes, read_idx_images, read_idx_labels};
pub use image::{Image, Pixels};
#[cfg(feature = "jpeg")]
pub use jpeg::{jpeg_from_bytes, read_jpeg};
#[cfg(feature = "png")]
pub use png::{png_from_bytes, read_png};
pub use resize::{resize_lanczos, resize_lanczos_planes};

thread_local! {
    static IN_CODEC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs a third-party decoder on untrusted bytes, returning a panic inside it as `Err`
/// instead of unwinding further; [`inside_codec`] is true on this thread meanwhile.
#[cfg(any(feature = "png", feature = "jpeg"))]
pub(crate) fn contain_codec_panic<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    IN_CODEC.with(|c| c.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_CODEC.with(|c| c.set(false));
    r
}

/// Whether this thread is inside a third-party decoder whose panics become errors naming the
/// file: a program's panic hook can stay quiet then (the `gradcon` command's does), since the
/// panic is not a crash but an answer to bad input.
pub fn inside_codec() -> bool {
    IN_CODEC.with(|c| c.get())
}

/// The environment variable naming the data folder when `--data-dir` is not given.
pub const DATA_DIR_ENV: &str = "GRADCON_DATA";

/// Number of classes in MNIST, Fashion-MNIST and CIFAR-10.
pub const NUM_CLASSES: usize = 10;

/// Side of the images the model takes.
pub const MODEL_SIDE: usize = 28;

/// Labelled u8 images of one size, stored `N x C x H x W` (image after image, plane after
/// plane, row-major), so that a batch maps onto an NCHW tensor without reordering.
///
/// ```
/// use detector::data::Dataset;
/// let d = Dataset::new(vec![0, 255, 51, 102], vec![3, 5], 1, 1, 2)?;
/// assert_eq!(d.len(), 2);
/// assert_eq!(d.select_class(5).image(0), &[51, 102]);
/// let t = d.batch_tensor(&[1, 0])?;
/// assert_eq!(t.shape(), &[2, 1, 1, 2]);
/// assert_eq!(t.data(), &[0.2, 0.4, 0.0, 1.0]); // value / 255
/// # Ok::<(), detector::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    channels: usize,
    height: usize,
    width: usize,
}

impl Dataset {
    /// Wraps `images` (`labels.len()` images of `channels x height x width`, NCHW) and their
    /// labels; the lengths must agree and the image size must not be empty.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u8>,
        channels: usize,
        height: usize,
        width: usize,
    ) -> Result<Self> {
        let image_len = channels
            .checked_mul(height)
            .and_then(|n| n.checked_mul(width))
            .filter(|&n| n > 0);
        let total = image_len.and_then(|n| n.checked_mul(labels.len()));
        if total != Some(images.len()) {
            return Err(Error::invalid(
                "Dataset::new",
                format!(
                    "{} bytes given for {} images of {channels}x{height}x{width}",
                    images.len(),
                    labels.len()
                ),
            ));
        }
        Ok(Self {
            images,
            labels,
            channels,
            height,
            width,
        })
    }

    /// No images, of `channels x height x width` (an empty validation split).
    pub fn empty(channels: usize, height: usize, width: usize) -> Self {
        Self {
            images: Vec::new(),
            labels: Vec::new(),
            channels,
            height,
            width,
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Channels per image (1 grey, 3 RGB).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Image height.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Image width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Values per image, `C * H * W`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// All pixels, NCHW.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// All labels, one per image.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The pixels of image `i` (CHW). Panics if `i >= len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// How many images each class `0..num_classes` has (labels at or above it are not counted).
    pub fn class_counts(&self, num_classes: usize) -> Vec<usize> {
        let mut counts = vec![0; num_classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }

    /// Indices of the images labelled `class`, in order.
    pub fn indices_of_class(&self, class: u8) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.labels[i] == class)
            .collect()
    }

    /// The images labelled `class`, in order.
    pub fn select_class(&self, class: u8) -> Self {
        self.gather(&self.indices_of_class(class))
    }

    /// The images at `indices`, in that order (repeats allowed); an index out of range is an
    /// error.
    pub fn take(&self, indices: &[usize]) -> Result<Self> {
        self.check_indices("Dataset::take", indices)?;
        Ok(self.gather(indices))
    }

    /// `self` followed by `other`; image sizes must agree (used to pool Fashion-MNIST's train
    /// and test splits).
    pub fn concat(&self, other: &Self) -> Result<Self> {
        if (self.channels, self.height, self.width) != (other.channels, other.height, other.width) {
            return Err(Error::invalid(
                "Dataset::concat",
                format!(
                    "image sizes {}x{}x{} and {}x{}x{} differ",
                    self.channels,
                    self.height,
                    self.width,
                    other.channels,
                    other.height,
                    other.width
                ),
            ));
        }
        let mut out = self.clone();
        out.images.extend_from_slice(&other.images);
        out.labels.extend_from_slice(&other.labels);
        Ok(out)
    }

    /// The images at `indices` as an f32 tensor `[B, C, H, W]` with values `v / 255` in
    /// `[0, 1]`.
    pub fn batch_tensor(&self, indices: &[usize]) -> Result<Tensor<f32>> {
        self.check_indices("Dataset::batch_tensor", indices)?;
        let mut data = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            data.extend(self.image(i).iter().map(|&v| f32::from(v) / 255.0));
        }
        Ok(Tensor::from_vec(
            data,
            &[indices.len(), self.channels, self.height, self.width],
        )?)
    }

    /// Every image resized to `height x width`, each channel with PIL's antialiasing Lanczos
    /// filter ([`resize_lanczos`]), rounded back to u8.
    pub fn resized(&self, height: usize, width: usize) -> Result<Self> {
        crate::io::fs::Limits::check_pixels(
            "resize",
            self.len() as u128 * (self.channels * height * width) as u128,
        )?;
        let mut images = Vec::with_capacity(self.len() * self.channels * height * width);
        for i in 0..self.len() {
            images.extend(resize_lanczos_planes(
                self.image(i),
                self.channels,
                self.height,
                self.width,
                height,
                width,
            )?);
        }
        Self::new(images, self.labels.clone(), self.channels, height, width)
    }

    /// An error naming `file` if some label is not below `num_classes`.
    pub fn check_labels(&self, file: &str, num_classes: usize) -> Result<()> {
        match self
            .labels
            .iter()
            .position(|&l| usize::from(l) >= num_classes)
        {
            Some(i) => Err(Error::format(
                file,
                format!(
                    "label {} of item {i} is out of range 0..{num_classes}",
                    self.labels[i]
                ),
            )),
            None => Ok(()),
        }
    }

    fn check_indices(&self, op: &'static str, indices: &[usize]) -> Result<()> {
        match indices.iter().find(|&&i| i >= self.len()) {
            Some(i) => Err(Error::invalid(
                op,
                format!("index {i} out of range for {} images", self.len()),
            )),
            None => Ok(()),
        }
    }

    fn gather(&self, indices: &[usize]) -> Self {
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Self {
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            channels: self.channels,
            height: self.height,
            width: self.width,
        }
    }
}

/// An official split of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training images.
    Train,
    /// The test images.
    Test,
}

/// The data folder: `flag` (from `--data-dir`) if given, else the `GRADCON_DATA` environment
/// variable, else [`Error::DataDirUnset`] saying how to set one. The folder must exist.
pub fn resolve_data_dir(flag: Option<&Path>) -> Result<PathBuf> {
    resolve_data_dir_from(flag, std::env::var_os(DATA_DIR_ENV))
}

/// [`resolve_data_dir`] with the environment variable's value passed in (for tests).
pub fn resolve_data_dir_from(flag: Option<&Path>, env: Option<OsString>) -> Result<PathBuf> {
    let (dir, from) = match (flag, env) {
        (Some(dir), _) => (dir.to_path_buf(), "--data-dir"),
        (None, Some(v)) if !v.is_empty() => (PathBuf::from(v), DATA_DIR_ENV),
        _ => return Err(Error::DataDirUnset),
    };
    if !dir.is_dir() {
        return Err(Error::invalid(
            "data folder",
            format!("{} (from {from}) is not a folder", dir.display()),
        ));
    }
    Ok(dir)
}

/// `dir` itself if it holds `probe`, else `dir/sub` if that does; an error naming both
/// otherwise. So `--data-dir` may name either the data root or the data set's own folder.
fn dataset_dir(dir: &Path, sub: &str, probes: &[&str], what: &str) -> Result<PathBuf> {
    let holds = |d: &Path| probes.iter().any(|p| d.join(p).is_file());
    if holds(dir) {
        return Ok(dir.to_path_buf());
    }
    let nested = dir.join(sub);
    if holds(&nested) {
        return Ok(nested);
    }
    Err(Error::invalid(
        "data folder",
        format!(
            "no {what} in {} or {} (looked for {})",
            dir.display(),
            nested.display(),
            probes.join(" or ")
        ),
    ))
}

/// `dir/name.gz` if it exists, else `dir/name`.
fn idx_file(dir: &Path, name: &str) -> PathBuf {
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        gz
    } else {
        dir.join(name)
    }
}

/// Loads an IDX data set in the standard layout (`train-images-idx3-ubyte[.gz]`,
/// `train-labels-idx1-ubyte[.gz]`, `t10k-...`) from `dir` or `dir/sub`.
fn load_idx_dataset(dir: &Path, sub: &str, what: &str, split: Split) -> Result<Dataset> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images_name = format!("{prefix}-images-idx3-ubyte");
    let labels_name = format!("{prefix}-labels-idx1-ubyte");
    let probes = [images_name.clone(), format!("{images_name}.gz")];
    let probes: Vec<&str> = probes.iter().map(String::as_str).collect();
    let dir = dataset_dir(dir, sub, &probes, what)?;
    let images_path = idx_file(&dir, &images_name);
    let labels_path = idx_file(&dir, &labels_name);
    let images = read_idx_images(&images_path)?;
    let labels = read_idx_labels(&labels_path)?;
    if images.count != labels.len() {
        return Err(Error::format(
            labels_path.display().to_string(),
            format!(
                "{} labels for {} images in {}",
                labels.len(),
                images.count,
                images_path.display()
            ),
        ));
    }
    let data = Dataset::new(images.pixels, labels, 1, images.rows, images.cols)?;
    data.check_labels(&labels_path.display().to_string(), NUM_CLASSES)?;
    Ok(data)
}

/// MNIST (1x28x28) from `dir` or `dir/mnist`, gzipped or plain IDX files.
pub fn load_mnist(dir: &Path, split: Split) -> Result<Dataset> {
    load_idx_dataset(dir, "mnist", "MNIST", split)
}

/// Fashion-MNIST (1x28x28) from `dir` or `dir/fashion-mnist`, gzipped or plain IDX files.
pub fn load_fashion_mnist(dir: &Path, split: Split) -> Result<Dataset> {
    load_idx_dataset(dir, "fashion-mnist", "Fashion-MNIST", split)
}

/// CIFAR-10 from `dir` or `dir/cifar-10-batches-bin` (the official binary archive's folder):
/// `data_batch_1.bin` .. `data_batch_5.bin` for [`Split::Train`], `test_batch.bin` for
/// [`Split::Test`], resized from 3x32x32 to 3x28x28 as the protocol does
/// (`Image.resize((28, 28), Image.LANCZOS)` per channel; see [`resize_lanczos`]).
pub fn load_cifar10(dir: &Path, split: Split) -> Result<Dataset> {
    let files: Vec<String> = match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        Split::Test => vec!["test_batch.bin".into()],
    };
    let dir = dataset_dir(dir, "cifar-10-batches-bin", &[&files[0]], "CIFAR-10")?;
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for f in &files {
        let batch = read_cifar_batch(&dir.join(f))?;
        images.extend_from_slice(batch.images());
        labels.extend_from_slice(batch.labels());
    }
    let side = cifar::CIFAR_SIDE;
    Dataset::new(images, labels, 3, side, side)?.resized(MODEL_SIDE, MODEL_SIDE)
}
