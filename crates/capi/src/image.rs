//! From the C description of an image (pointer, length, channels, size, layout) to a
//! [`detector::Image`], with every number checked before a pixel is read.

use detector::data::image::MAX_IMAGE_PIXELS;
use detector::Image;

use crate::status::Failure;

/// `GRADCON_INTERLEAVED`: HWC, each pixel's channels together.
pub const LAYOUT_INTERLEAVED: u32 = 0;
/// `GRADCON_PLANAR`: CHW, plane after plane.
pub const LAYOUT_PLANAR: u32 = 1;

/// One image as C describes it (`gradcon_image` in the header).
///
/// `layout` is a plain `u32`, not a Rust enum: C may pass any value, and an out-of-range
/// value in a Rust enum would be undefined behaviour before it could be refused.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct GradconImage {
    /// `len` bytes of 8-bit pixels.
    pub pixels: *const u8,
    /// Bytes at `pixels`: `channels * height * width`.
    pub len: usize,
    /// 1 (grey) or 3 (RGB).
    pub channels: u32,
    /// Rows, at least 1.
    pub height: u32,
    /// Columns, at least 1.
    pub width: u32,
    /// [`LAYOUT_INTERLEAVED`] or [`LAYOUT_PLANAR`].
    pub layout: u32,
}

/// Checks the numbers of `img` (everything but whether `pixels` points at `len` readable
/// bytes, which only the caller can know).
pub fn check(img: &GradconImage) -> Result<(), Failure> {
    if img.pixels.is_null() {
        return Err(Failure::null("pixels"));
    }
    if img.channels != 1 && img.channels != 3 {
        return Err(Failure::invalid(format!(
            "channels is {}; 1 (grey) or 3 (RGB) expected",
            img.channels
        )));
    }
    if img.height == 0 || img.width == 0 {
        return Err(Failure::invalid(format!(
            "height x width is {}x{}; both must be at least 1",
            img.height, img.width
        )));
    }
    // u32 * u32 * 3 fits in u128 whatever the width of usize.
    let plane = u128::from(img.height) * u128::from(img.width);
    if plane > MAX_IMAGE_PIXELS as u128 {
        return Err(Failure::invalid(format!(
            "height x width is {}x{}, more than the limit of {MAX_IMAGE_PIXELS} pixels",
            img.height, img.width
        )));
    }
    let expected = plane * u128::from(img.channels);
    if img.len as u128 != expected {
        return Err(Failure::invalid(format!(
            "len is {}, but channels {} x height {} x width {} needs {expected} bytes",
            img.len, img.channels, img.height, img.width
        )));
    }
    if img.layout != LAYOUT_INTERLEAVED && img.layout != LAYOUT_PLANAR {
        return Err(Failure::invalid(format!(
            "layout is {}; GRADCON_INTERLEAVED ({LAYOUT_INTERLEAVED}) or GRADCON_PLANAR \
             ({LAYOUT_PLANAR}) expected",
            img.layout
        )));
    }
    Ok(())
}

/// The [`Image`] `img` describes, its pixels copied.
///
/// # Safety
///
/// `img` must have passed [`check`], and `img.pixels` must point at `img.len` bytes that are
/// readable and not written to during the call.
pub unsafe fn to_image(img: &GradconImage) -> Result<Image, Failure> {
    debug_assert!(check(img).is_ok());
    // SAFETY: `check` proved `pixels` non-null and `len` at most 3 * 2^24 (far below
    // isize::MAX); the caller guarantees the bytes are readable and unchanged meanwhile. u8 has
    // no alignment or validity requirement. The slice does not outlive this call.
    let pixels = unsafe { std::slice::from_raw_parts(img.pixels, img.len) };
    let (c, h, w) = (
        img.channels as usize,
        img.height as usize,
        img.width as usize,
    );
    let image = if img.layout == LAYOUT_PLANAR || c == 1 {
        Image::from_u8(c, h, w, pixels.to_vec())
    } else {
        Image::from_interleaved_u8(c, h, w, pixels)
    };
    Ok(image?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(pixels: &[u8], channels: u32, height: u32, width: u32, layout: u32) -> GradconImage {
        GradconImage {
            pixels: pixels.as_ptr(),
            len: pixels.len(),
            channels,
            height,
            width,
            layout,
        }
    }

    #[test]
    fn interleaved_and_planar_give_the_same_image() {
        let hwc = [1, 2, 3, 4, 5, 6];
        let chw = [1, 4, 2, 5, 3, 6];
        let a = image(&hwc, 3, 1, 2, LAYOUT_INTERLEAVED);
        let b = image(&chw, 3, 1, 2, LAYOUT_PLANAR);
        check(&a).unwrap();
        check(&b).unwrap();
        // SAFETY: both describe live arrays of their stated length, and passed `check`.
        let (a, b) = unsafe { (to_image(&a).unwrap(), to_image(&b).unwrap()) };
        assert_eq!(a, b);
        assert_eq!(a.u8_pixels().unwrap(), chw);
    }

    #[test]
    fn bad_numbers_are_refused_with_what_was_wrong() {
        let px = [0u8; 12];
        let msg = |img: GradconImage| check(&img).unwrap_err().message;
        assert_eq!(
            msg(image(&px, 2, 2, 3, 0)),
            "channels is 2; 1 (grey) or 3 (RGB) expected"
        );
        assert_eq!(
            msg(image(&px, 1, 0, 12, 0)),
            "height x width is 0x12; both must be at least 1"
        );
        assert_eq!(
            msg(image(&px[..11], 1, 3, 4, 0)),
            "len is 11, but channels 1 x height 3 x width 4 needs 12 bytes"
        );
        assert!(msg(image(&px, 1, 3, 4, 2)).starts_with("layout is 2;"));
        assert!(msg(image(&px, 3, u32::MAX, u32::MAX, 0)).contains("more than the limit"));
        let null = GradconImage {
            pixels: std::ptr::null(),
            ..image(&px, 1, 3, 4, 0)
        };
        assert_eq!(msg(null), "`pixels` is NULL");
    }
}
