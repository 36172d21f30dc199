//! The C ABI of the GradCon detector: `libgradcon.so` / `libgradcon.a` and the header
//! `include/gradcon.h`, which documents every function, the ownership rules and the thread
//! safety. This crate is the Rust side of that header, a thin layer over [`detector::Detector`].
//!
//! Every entry point runs its body in [`status::guard`]: arguments are checked (NULL
//! pointers, lengths, ranges) before anything is read, a failure returns a status and leaves a
//! message for `gradcon_last_error`, and a panic is caught and reported as
//! `GRADCON_ERR_INTERNAL` instead of unwinding into C.
//!
//! The functions are callable from Rust too (the rlib), which is how the crate's own tests
//! drive them; Rust programs should use [`detector`] directly.

use std::ffi::{c_char, CStr};
use std::path::PathBuf;

use detector::{Detector, Image, Score, MAX_THREADS};

pub mod image;
pub mod status;

pub use image::{GradconImage, LAYOUT_INTERLEAVED, LAYOUT_PLANAR};
pub use status::GradconStatus;

use status::{guard, Failure};

/// `GRADCON_ABI_VERSION` of the header this library implements.
pub const ABI_VERSION: u32 = 1;

/// The crate's version, NUL-terminated.
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the crate version holds a NUL byte"),
    };

/// The name given to model bytes in error messages.
const BYTES_NAME: &str = "model bytes";

/// A loaded model (`gradcon_detector` in the header: C sees only pointers to it).
#[derive(Debug)]
pub struct GradconDetector(Detector);

/// The score of one image (`gradcon_result` in the header).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradconResult {
    /// `recon + beta * grad`: higher is more normal.
    pub gradcon: f64,
    /// Minus the mean squared reconstruction error.
    pub recon: f64,
    /// The mean cosine to the reference gradients.
    pub grad: f64,
    /// `-gradcon`: higher is more anomalous.
    pub anomaly_score: f64,
    /// The decision threshold on `anomaly_score`; NaN when the model has none for its beta.
    pub threshold: f64,
    /// 1 anomalous, 0 normal, -1 unknown (no threshold).
    pub anomalous: i32,
    /// Zero; room for a later field.
    pub reserved_i32: i32,
    /// Zeros; room for later fields.
    pub reserved: [f64; 6],
}

// The header's layout, fixed for ABI version 1 (the header asserts the same sizes).
const _: () = {
    assert!(std::mem::size_of::<GradconResult>() == 96);
    assert!(std::mem::offset_of!(GradconResult, anomaly_score) == 24);
    assert!(std::mem::offset_of!(GradconResult, threshold) == 32);
    assert!(std::mem::offset_of!(GradconResult, anomalous) == 40);
    assert!(std::mem::offset_of!(GradconResult, reserved) == 48);
    assert!(std::mem::size_of::<GradconImage>() == 2 * std::mem::size_of::<usize>() + 16);
    assert!(std::mem::size_of::<GradconStatus>() == 4);
};

impl GradconResult {
    /// The result of `s`, decided at `threshold` (the detector's, if it has one).
    fn new(s: Score, threshold: Option<f64>) -> Self {
        Self {
            gradcon: s.gradcon,
            recon: s.recon,
            grad: s.grad,
            anomaly_score: s.anomaly_score,
            threshold: threshold.unwrap_or(f64::NAN),
            anomalous: s.anomalous.map_or(-1, i32::from),
            reserved_i32: 0,
            reserved: [0.0; 6],
        }
    }
}

/// `ptr` as a shared reference, or a NULL-argument failure naming `name`.
///
/// # Safety
///
/// A non-null `ptr` must point at a live `T` that nothing writes to for `'a`.
unsafe fn as_ref<'a, T>(ptr: *const T, name: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller guarantees a non-null `ptr` is valid for shared access for 'a.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null(name))
}

/// `ptr` as an exclusive reference, or a NULL-argument failure naming `name`.
///
/// # Safety
///
/// A non-null `ptr` must point at a live `T` that nothing else reads or writes for `'a`.
unsafe fn as_mut<'a, T>(ptr: *mut T, name: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: the caller guarantees a non-null `ptr` is valid for exclusive access for 'a.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::null(name))
}

/// Checks `out` for NULL and clears it, runs `load`, and stores the new detector in `*out`.
///
/// # Safety
///
/// A non-null `out` must be valid for writing a pointer.
unsafe fn load_into(
    out: *mut *mut GradconDetector,
    load: impl FnOnce() -> Result<Detector, Failure>,
) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null("out"));
    }
    // SAFETY: `out` is non-null and the caller guarantees it is valid for writes.
    unsafe { out.write(std::ptr::null_mut()) };
    let detector = Box::new(GradconDetector(load()?));
    // SAFETY: as above; ownership of the box passes to the caller, who frees it with
    // `gradcon_free`.
    unsafe { out.write(Box::into_raw(detector)) };
    Ok(())
}

/// The library's ABI version ([`ABI_VERSION`]).
#[unsafe(no_mangle)]
pub extern "C" fn gradcon_abi_version() -> u32 {
    ABI_VERSION
}

/// The crate's version as a static NUL-terminated string.
#[unsafe(no_mangle)]
pub extern "C" fn gradcon_version() -> *const c_char {
    VERSION.as_ptr()
}

/// A static name for `status` (`"unknown status"` for a value that is none).
///
/// `status` is taken as a plain integer: C may pass any value.
#[unsafe(no_mangle)]
pub extern "C" fn gradcon_status_str(status: u32) -> *const c_char {
    GradconStatus::ALL
        .into_iter()
        .find(|s| *s as u32 == status)
        .map_or(c"unknown status", GradconStatus::name)
        .as_ptr()
}

/// The message of the last failed call on this thread, `""` if none.
#[unsafe(no_mangle)]
pub extern "C" fn gradcon_last_error() -> *const c_char {
    status::last_error_ptr()
}

/// Loads a model file (see [`Detector::load`]).
///
/// # Safety
///
/// A non-null `path` must point at a NUL-terminated string; a non-null `out` must be valid for
/// writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradcon_load(
    path: *const c_char,
    out: *mut *mut GradconDetector,
) -> GradconStatus {
    guard("gradcon_load", || {
        let load = || {
            if path.is_null() {
                return Err(Failure::null("path"));
            }
            // SAFETY: non-null, and the caller guarantees it is NUL-terminated.
            let path = path_of(unsafe { CStr::from_ptr(path) })?;
            Ok(Detector::load(path)?)
        };
        // SAFETY: the caller guarantees `out` is NULL or writable.
        unsafe { load_into(out, load) }
    })
}

/// The path C names: the bytes as they are on Unix, UTF-8 elsewhere.
fn path_of(path: &CStr) -> Result<PathBuf, Failure> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(path.to_bytes())))
    }
    #[cfg(not(unix))]
    {
        path.to_str().map(PathBuf::from).map_err(|e| {
            Failure::invalid(format!("path {} is not UTF-8: {e}", path.to_string_lossy()))
        })
    }
}

/// Loads a model from the `len` bytes at `bytes` (see [`Detector::from_bytes`]).
///
/// # Safety
///
/// A non-null `bytes` must point at `len` readable bytes not written during the call; a
/// non-null `out` must be valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradcon_load_bytes(
    bytes: *const u8,
    len: usize,
    out: *mut *mut GradconDetector,
) -> GradconStatus {
    guard("gradcon_load_bytes", || {
        let load = || {
            if bytes.is_null() {
                return Err(Failure::null("bytes"));
            }
            if len > isize::MAX as usize {
                return Err(Failure::invalid(format!("len {len} exceeds isize::MAX")));
            }
            // SAFETY: non-null, at most isize::MAX bytes, and the caller guarantees `len`
            // readable bytes that stay unchanged during the call.
            let bytes = unsafe { std::slice::from_raw_parts(bytes, len) };
            Ok(Detector::from_bytes(BYTES_NAME, bytes)?)
        };
        // SAFETY: the caller guarantees `out` is NULL or writable.
        unsafe { load_into(out, load) }
    })
}

/// Frees a detector from [`gradcon_load`] or [`gradcon_load_bytes`]; NULL is a no-op.
///
/// # Safety
///
/// `detector` must be NULL or a pointer those functions returned that has not been freed, and
/// no other call may use it during or after this one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradcon_free(detector: *mut GradconDetector) {
    if detector.is_null() {
        return;
    }
    guard("gradcon_free", || {
        // SAFETY: the caller guarantees `detector` came from `Box::into_raw` in `load_into`
        // and is freed once, with no other use during or after.
        drop(unsafe { Box::from_raw(detector) });
        Ok(())
    });
}

/// Gives the detector a pool of its own of `threads` workers (1 to [`MAX_THREADS`]; at most
/// as many as the process has cores).
///
/// # Safety
///
/// A non-null `detector` must be a live detector that no other call uses during this one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradcon_set_threads(
    detector: *mut GradconDetector,
    threads: u32,
) -> GradconStatus {
    guard("gradcon_set_threads", || {
        // SAFETY: the caller guarantees a live detector used by nothing else meanwhile.
        let detector = unsafe { as_mut(detector, "detector") }?;
        let n = threads as usize;
        if !(1..=MAX_THREADS).contains(&n) {
            return Err(Failure::invalid(format!(
                "threads is {threads}; 1 to {MAX_THREADS} expected"
            )));
        }
        Ok(detector.0.set_threads(n)?)
    })
}

/// Writes `value(detector)` to `*out`.
///
/// # Safety
///
/// A non-null `detector` must be a live detector not being changed or freed; a non-null `out`
/// must be valid for writing a `u32`.
unsafe fn query(
    func: &str,
    detector: *const GradconDetector,
    out: *mut u32,
    value: impl FnOnce(&Detector) -> usize,
) -> GradconStatus {
    guard(func, || {
        // SAFETY: the caller guarantees a live detector that nothing changes meanwhile.
        let detector = unsafe { as_ref(detector, "detector") }?;
        // SAFETY: the caller guarantees a non-null `out` is writable.
        let out = unsafe { as_mut(out, "out") }?;
        let v = value(&detector.0);
        *out = u32::try_from(v)
            .map_err(|_| Failure::invalid(format!("the value {v} does not fit a uint32_t")))?;
        Ok(())
    })
}

/// The image channels the model takes (1 or 3).
///
/// # Safety
///
/// A non-null `detector` must be a live detector not being changed or freed; a non-null `out`
/// must be valid for writing a `u32`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradcon_channels(
    detector: *const GradconDetector,
    out: *mut u32,
) -> GradconStatus {
    // SAFETY: the caller upholds `query`'s contract, which is this function's.
    unsafe { query("gradcon_channels", detector, out, Detector::channels) }
}

/// The side of the square images the model takes (28).
///
/// # Safety
///
/// As for [`gradcon_channels`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradcon_input_side(
    detector: *const GradconDetector,
    out: *mut u32,
) -> GradconStatus {
    // SAFETY: the caller upholds `query`'s contract, which is this function's.
    unsafe { query("gradcon_input_side", detector, out, Detector::input_side) }
}

/// Scores one image (see [`Detector::score`]); `layout` is [`LAYOUT_INTERLEAVED`] or
/// [`LAYOUT_PLANAR`].
///
/// # Safety
///
/// A non-null `detector` must be a live detector not being changed or freed; a non-null
/// `pixels` must point at `len` readable bytes not written during the call; a non-null `out`
/// must be valid for writing a [`GradconResult`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradcon_score(
    detector: *const GradconDetector,
    pixels: *const u8,
    len: usize,
    channels: u32,
    height: u32,
    width: u32,
    layout: u32,
    out: *mut GradconResult,
) -> GradconStatus {
    guard("gradcon_score", || {
        // SAFETY: the caller guarantees a live detector that nothing changes meanwhile.
        let detector = unsafe { as_ref(detector, "detector") }?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let img = GradconImage {
            pixels,
            len,
            channels,
            height,
            width,
            layout,
        };
        image::check(&img)?;
        // SAFETY: checked above; the caller guarantees `len` readable bytes at `pixels`.
        let img = unsafe { image::to_image(&img) }?;
        let result = GradconResult::new(detector.0.score(&img)?, detector.0.threshold());
        // SAFETY: non-null, and the caller guarantees it is writable.
        unsafe { out.write(result) };
        Ok(())
    })
}

/// Scores `count` images in batched passes (see [`Detector::score_batch`]), `out[i]` for
/// `images[i]`.
///
/// The images are copied into [`Image`]s one batch of the detector's batch size at a time, so
/// the copy stays small whatever `count` is; the library scores in batches of that size
/// anyway, so the scores are those of one `score_batch` call on all the images.
///
/// # Safety
///
/// A non-null `detector` must be a live detector not being changed or freed. For `count > 0`,
/// `images` must point at `count` readable descriptors, each of whose `pixels` points at its
/// `len` readable bytes, and `out` at room for `count` results that overlaps none of them.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradcon_score_batch(
    detector: *const GradconDetector,
    images: *const GradconImage,
    count: usize,
    out: *mut GradconResult,
) -> GradconStatus {
    guard("gradcon_score_batch", || {
        // SAFETY: the caller guarantees a live detector that nothing changes meanwhile.
        let detector = unsafe { as_ref(detector, "detector") }?;
        if count == 0 {
            return Ok(());
        }
        if images.is_null() {
            return Err(Failure::null("images"));
        }
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        if count > isize::MAX as usize / std::mem::size_of::<GradconResult>() {
            return Err(Failure::invalid(format!("count {count} is too large")));
        }
        // SAFETY: non-null, `count` descriptors fit in isize::MAX bytes (checked above, a
        // descriptor being smaller than a result), and the caller guarantees they are readable
        // and do not overlap `out`, which is only written through a raw pointer below.
        let images = unsafe { std::slice::from_raw_parts(images, count) };
        for (i, img) in images.iter().enumerate() {
            image::check(img).map_err(|f| f.context(&format!("image {i}")))?;
        }
        let batch = detector.0.settings().batch_size.max(1);
        let threshold = detector.0.threshold();
        for (c, chunk) in images.chunks(batch).enumerate() {
            let first = c * batch;
            let owned = chunk
                .iter()
                .enumerate()
                .map(|(i, img)| {
                    // SAFETY: every descriptor passed `check`; the caller guarantees its
                    // pixels.
                    unsafe { image::to_image(img) }
                        .map_err(|f| f.context(&format!("image {}", first + i)))
                })
                .collect::<Result<Vec<Image>, Failure>>()?;
            let scores = detector.0.score_batch(&owned)?;
            if scores.len() != owned.len() {
                return Err(Failure {
                    status: GradconStatus::Internal,
                    message: format!("{} scores for {} images", scores.len(), owned.len()),
                });
            }
            for (i, s) in scores.into_iter().enumerate() {
                // SAFETY: `first + i < count`, and the caller guarantees `count` writable
                // results at `out` that overlap no input.
                unsafe { out.add(first + i).write(GradconResult::new(s, threshold)) };
            }
        }
        Ok(())
    })
}
