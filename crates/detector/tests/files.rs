//! Files and folders of your own images (`detector::data::files`): which files a folder gives
//! and in which order, what is skipped, the source of every image, the formats told by their
//! bytes, the fit modes and channel rules on real files, JPEG colour spaces, and that PNG and
//! JPEG copies of the shipped sample score like the IDX file they were made from.

use std::path::{Path, PathBuf};

use detector::data::files::{
    collect_files, load_files, FileList, ImageSource, ImageStream, Skipped,
};
use detector::data::idx::{encode_idx_images, gzip};
use detector::data::{load_fashion_mnist, resize_lanczos_planes, Dataset, Fit, Split};
use detector::eval::auroc;
use detector::{Detector, Error};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("gradcon-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    /// Writes `bytes` at `rel` (making its folders) and returns the path.
    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sample_test() -> Dataset {
    load_fashion_mnist(&repo().join("data/fashion-mnist-sample"), Split::Test).unwrap()
}

/// CHW planes to HWC pixels.
fn interleave(planes: &[u8], channels: usize) -> Vec<u8> {
    let n = planes.len() / channels;
    (0..n)
        .flat_map(|p| (0..channels).map(move |c| planes[c * n + p]))
        .collect()
}

/// An 8-bit grey (1) or RGB (3) PNG of CHW `planes`.
fn png_file(channels: usize, h: usize, w: usize, planes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
    enc.set_color(if channels == 1 {
        png::ColorType::Grayscale
    } else {
        png::ColorType::Rgb
    });
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().unwrap();
    writer
        .write_image_data(&interleave(planes, channels))
        .unwrap();
    writer.finish().unwrap();
    out
}

/// A JPEG of interleaved `pixels` of `colour` at `quality`.
fn jpeg_file(
    colour: jpeg_encoder::ColorType,
    h: usize,
    w: usize,
    pixels: &[u8],
    quality: u8,
) -> Vec<u8> {
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(pixels, w as u16, h as u16, colour)
        .unwrap();
    out
}

/// A grey JPEG of one plane.
fn grey_jpeg(h: usize, w: usize, plane: &[u8]) -> Vec<u8> {
    jpeg_file(jpeg_encoder::ColorType::Luma, h, w, plane, 95)
}

fn relative(list: &[PathBuf], root: &Path) -> Vec<String> {
    list.iter()
        .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
        .collect()
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

#[test]
fn folders_are_read_in_path_order_skipping_hidden_entries_links_and_other_files() {
    let dir = TempDir::new("order");
    let root = &dir.0;
    let d = sample_test();
    let img = |i: usize| d.image(i).to_vec();
    let rgb: Vec<u8> = (0..3 * 20 * 30).map(|i| (i * 7 % 251) as u8).collect();
    dir.write("b.png", &png_file(1, 28, 28, &img(0)));
    dir.write("a/z.png", &png_file(1, 28, 28, &img(1)));
    dir.write("a.png", &png_file(1, 28, 28, &img(2)));
    dir.write(
        "A.JPG",
        &jpeg_file(
            jpeg_encoder::ColorType::Rgb,
            20,
            30,
            &interleave(&rgb, 3),
            90,
        ),
    );
    dir.write("sub/deep/c.jpeg", &grey_jpeg(28, 28, &img(3)));
    dir.write(
        "sub/x.idx",
        &encode_idx_images(3, 28, 28, &d.images()[4 * 784..7 * 784]).unwrap(),
    );
    dir.write(
        "sub/y-idx3-ubyte.gz",
        &gzip(&encode_idx_images(2, 28, 28, &d.images()[7 * 784..9 * 784]).unwrap()),
    );
    dir.write("sub/Upper.PNG", &png_file(1, 28, 28, &img(9)));
    // Skipped: hidden entries, links, files of other types (even when they hold an image).
    dir.write(".hidden.png", &png_file(1, 28, 28, &img(0)));
    dir.write(".cache/d.png", &png_file(1, 28, 28, &img(0)));
    dir.write("sub/.DS_Store", b"junk");
    dir.write("notes.txt", b"not an image");
    dir.write("sub/t10k-labels-idx1-ubyte", b"labels are not images");
    let disguised = dir.write("extra/picture.dat", &png_file(1, 28, 28, &img(10)));
    symlink(&root.join("b.png"), &root.join("link.png"));
    symlink(&root.join("sub"), &root.join("linked-folder"));

    let list = collect_files(&[root]).unwrap();
    assert_eq!(
        relative(&list.files, root),
        [
            "A.JPG",
            "a.png",
            "a/z.png",
            "b.png",
            "sub/Upper.PNG",
            "sub/deep/c.jpeg",
            "sub/x.idx",
            "sub/y-idx3-ubyte.gz"
        ]
    );
    assert_eq!(
        relative(&list.skipped.other, root),
        [
            "extra/picture.dat",
            "notes.txt",
            "sub/t10k-labels-idx1-ubyte"
        ]
    );
    assert_eq!(
        relative(&list.skipped.hidden, root),
        [".cache", ".hidden.png", "sub/.DS_Store"]
    );
    assert_eq!(
        relative(&list.skipped.links, root),
        ["link.png", "linked-folder"]
    );
    let summary = list.skipped.summary().unwrap();
    assert!(
        summary.contains("3 files of other types")
            && summary.contains("extra/picture.dat")
            && summary.contains("3 hidden entries")
            && summary.contains("2 symbolic links (not followed)"),
        "{summary}"
    );
    assert_eq!(Skipped::default().summary(), None);

    // A file named on its own is read whatever its name; arguments keep their order.
    let list = collect_files(&[disguised.clone(), root.join("sub/deep")]).unwrap();
    assert_eq!(
        list.files,
        [disguised.clone(), root.join("sub/deep/c.jpeg")]
    );
    assert!(list.skipped.is_empty());
    let loaded = load_files(&list.files, 1, 28, Fit::Stretch).unwrap();
    assert_eq!(loaded.images.image(0), &img(10)[..]);

    // Every image with its source; a folder's own name may start with a dot.
    let list = collect_files(&[root]).unwrap();
    let loaded = load_files(&list.files, 1, 28, Fit::Stretch).unwrap();
    let source = |rel: &str, index: Option<usize>| ImageSource {
        path: root.join(rel),
        index,
    };
    assert_eq!(
        loaded.sources,
        [
            source("A.JPG", None),
            source("a.png", None),
            source("a/z.png", None),
            source("b.png", None),
            source("sub/Upper.PNG", None),
            source("sub/deep/c.jpeg", None),
            source("sub/x.idx", Some(0)),
            source("sub/x.idx", Some(1)),
            source("sub/x.idx", Some(2)),
            source("sub/y-idx3-ubyte.gz", Some(0)),
            source("sub/y-idx3-ubyte.gz", Some(1)),
        ]
    );
    assert_eq!(
        loaded.sources[7].to_string(),
        format!("{} (image 1)", root.join("sub/x.idx").display())
    );
    let images = &loaded.images;
    assert_eq!(
        (images.len(), images.channels(), images.height()),
        (11, 1, 28)
    );
    for (k, i) in [(1, 2), (2, 1), (3, 0), (4, 9), (6, 4), (8, 6), (10, 8)] {
        assert_eq!(images.image(k), &img(i)[..], "image {k}");
    }
    let dotted = TempDir::new("dotted");
    let inner = dotted.0.join(".images");
    std::fs::create_dir_all(&inner).unwrap();
    std::fs::copy(root.join("b.png"), inner.join("b.png")).unwrap();
    assert_eq!(
        collect_files(&[&inner]).unwrap().files,
        [inner.join("b.png")]
    );
}

#[test]
fn formats_are_told_by_their_bytes_and_bad_files_are_named() {
    let dir = TempDir::new("formats");
    let d = sample_test();
    let plane = d.image(0).to_vec();
    // A PNG named .jpg, a JPEG named .png, an IDX named .png: each read by its bytes.
    let png_as_jpg = dir.write("p.jpg", &png_file(1, 28, 28, &plane));
    let jpg_as_png = dir.write("j.png", &grey_jpeg(28, 28, &plane));
    let idx_as_png = dir.write("i.png", &encode_idx_images(1, 28, 28, &plane).unwrap());
    let loaded = load_files(
        &[&png_as_jpg, &jpg_as_png, &idx_as_png],
        1,
        28,
        Fit::Stretch,
    )
    .unwrap();
    assert_eq!(loaded.images.image(0), &plane[..]);
    assert_eq!(loaded.images.image(2), &plane[..]);
    let diff = loaded
        .images
        .image(1)
        .iter()
        .zip(&plane)
        .map(|(&a, &b)| a.abs_diff(b))
        .max();
    assert!(diff.unwrap() <= 40, "JPEG at quality 95: {diff:?}");
    assert_eq!(loaded.sources[2].index, Some(0));

    let problem = |path: &Path| {
        let err = load_files(&[path], 1, 28, Fit::Stretch).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        msg
    };
    let text = dir.write("notes.txt", b"hello");
    assert!(problem(&text).contains("not an image file"));
    let truncated = grey_jpeg(28, 28, &plane);
    let cut = dir.write("cut.jpg", &truncated[..40]);
    assert!(problem(&cut).contains("JPEG"));
    let junk = dir.write("junk.jpg", &[0xff, 0xd8, 0xff, 0xe0, 0, 2, 9, 9, 9]);
    problem(&junk);
    let bad_png = dir.write("bad.png", b"\x89PNG\r\n\x1a\nnope");
    assert!(problem(&bad_png).contains("PNG"));
    let short_bin = dir.write("short.bin", &[1; 100]);
    assert!(problem(&short_bin).contains("3073"));
    let missing = dir.0.join("missing.png");
    let err = collect_files(&[&missing]).unwrap_err();
    assert!(err.to_string().contains("missing.png"), "{err}");
    assert!(matches!(
        load_files(&[&png_as_jpg], 2, 28, Fit::Stretch),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn channels_are_converted_for_single_images_and_must_match_for_data_set_files() {
    let dir = TempDir::new("channels");
    // One RGB pixel row: (255, 128, 0), (0, 0, 255), (10, 20, 30).
    let planes = [255, 0, 10, 128, 0, 20, 0, 255, 30];
    let rgb_png = dir.write("rgb.png", &png_file(3, 1, 3, &planes));
    let grey = [200u8, 100, 7];
    let grey_png = dir.write("grey.png", &png_file(1, 1, 3, &grey));
    // Padded to a side of 3, the 1x3 row keeps its pixels: row 1 of a 3x3 black square.
    let one = load_files(&[&rgb_png, &grey_png], 1, 3, Fit::Pad).unwrap();
    // PIL's luma: (19595 R + 38470 G + 7471 B + 2^15) >> 16.
    let luma =
        |r: u32, g: u32, b: u32| ((19595 * r + 38470 * g + 7471 * b + (1 << 15)) >> 16) as u8;
    let expected = [luma(255, 128, 0), luma(0, 0, 255), luma(10, 20, 30)];
    assert_eq!(expected, [151, 29, 18]);
    assert_eq!(one.images.image(0), [0, 0, 0, 151, 29, 18, 0, 0, 0]);
    assert_eq!(one.images.image(1), [0, 0, 0, 200, 100, 7, 0, 0, 0]);
    let three = load_files(&[&grey_png], 3, 3, Fit::Pad).unwrap();
    assert_eq!(
        three.images.image(0),
        [0, 0, 0, 200, 100, 7, 0, 0, 0].repeat(3)
    );

    // JPEG: a colour image to grey is the luma of its RGB decoding; grey to RGB replicates.
    let colour: Vec<u8> = (0..3 * 16 * 16).map(|i| (i * 13 % 256) as u8).collect();
    let rgb_jpg = dir.write(
        "rgb.jpg",
        &jpeg_file(
            jpeg_encoder::ColorType::Rgb,
            16,
            16,
            &interleave(&colour, 3),
            90,
        ),
    );
    let as_rgb = load_files(&[&rgb_jpg], 3, 16, Fit::Stretch).unwrap();
    let as_grey = load_files(&[&rgb_jpg], 1, 16, Fit::Stretch).unwrap();
    let p = as_rgb.images.image(0);
    let by_hand: Vec<u8> = (0..256)
        .map(|i| luma(p[i].into(), p[256 + i].into(), p[512 + i].into()))
        .collect();
    assert_eq!(as_grey.images.image(0), &by_hand[..]);
    let grey_jpg = dir.write("grey.jpg", &grey_jpeg(16, 16, &colour[..256]));
    let g1 = load_files(&[&grey_jpg], 1, 16, Fit::Stretch).unwrap();
    let g3 = load_files(&[&grey_jpg], 3, 16, Fit::Stretch).unwrap();
    assert_eq!(g3.images.image(0), g1.images.image(0).repeat(3));

    // Data set files keep their channels: grey IDX for an RGB model, CIFAR for a grey one.
    let idx = dir.write(
        "grey.idx",
        &encode_idx_images(1, 2, 2, &[1, 2, 3, 4]).unwrap(),
    );
    let err = load_files(&[&idx], 3, 28, Fit::Stretch)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("grey.idx") && err.contains("model takes 3"),
        "{err}"
    );
    let mut record = vec![4u8];
    record.extend(vec![9u8; 3072]);
    let cifar = dir.write("batch.bin", &record);
    let err = load_files(&[&cifar], 1, 28, Fit::Stretch)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("batch.bin") && err.contains("model takes 1"),
        "{err}"
    );
    let rgb = load_files(&[&cifar], 3, 28, Fit::Crop).unwrap();
    assert_eq!(rgb.images.labels(), [4]);
    assert!(rgb.images.images().iter().all(|&v| v == 9));
}

/// `h x w` grey ramp with distinct values.
fn ramp(h: usize, w: usize) -> Vec<u8> {
    (0..h * w).map(|i| (i * 5 % 253 + 1) as u8).collect()
}

#[test]
fn fit_modes_on_non_square_files_match_hand_made_squares() {
    let dir = TempDir::new("fit");
    for (h, w) in [(20, 40), (21, 40), (40, 21), (41, 20)] {
        let plane = ramp(h, w);
        let file = dir.write(&format!("{h}x{w}.png"), &png_file(1, h, w, &plane));
        let (s, big) = (h.min(w), h.max(w));
        let off = (big - s) / 2; // floor: the odd row or column goes to the bottom or right
                                 // Crop by hand: rows or columns off .. off + s.
        let crop: Vec<u8> = (0..s)
            .flat_map(|y| (0..s).map(move |x| (y, x)))
            .map(|(y, x)| {
                if h > w {
                    plane[(y + off) * w + x]
                } else {
                    plane[y * w + x + off]
                }
            })
            .collect();
        // Pad by hand: the image at row or column off of a black square.
        let mut pad = vec![0u8; big * big];
        for y in 0..h {
            for x in 0..w {
                let (py, px) = if h > w { (y, x + off) } else { (y + off, x) };
                pad[py * big + px] = plane[y * w + x];
            }
        }
        let load = |fit| {
            load_files(&[&file], 1, 28, fit)
                .unwrap()
                .images
                .image(0)
                .to_vec()
        };
        assert_eq!(
            load(Fit::Crop),
            resize_lanczos_planes(&crop, 1, s, s, 28, 28).unwrap(),
            "{h}x{w} crop"
        );
        assert_eq!(
            load(Fit::Pad),
            resize_lanczos_planes(&pad, 1, big, big, 28, 28).unwrap(),
            "{h}x{w} pad"
        );
        assert_eq!(
            load(Fit::Stretch),
            resize_lanczos_planes(&plane, 1, h, w, 28, 28).unwrap(),
            "{h}x{w} stretch"
        );
    }
    // At the side of the square itself, the kept and padded pixels show directly.
    let file = dir.write(
        "2x5.png",
        &png_file(1, 2, 5, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    );
    let at = |fit, side| {
        load_files(&[&file], 1, side, fit)
            .unwrap()
            .images
            .image(0)
            .to_vec()
    };
    assert_eq!(at(Fit::Crop, 2), [2, 3, 7, 8]);
    assert_eq!(
        at(Fit::Pad, 5),
        [0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
}

#[test]
fn jpeg_colour_spaces_decode_as_documented() {
    use jpeg_encoder::ColorType as J;
    let dir = TempDir::new("jpeg");
    let (h, w) = (16, 16);
    let flat = |px: &[u8]| px.repeat(h * w);
    let near = |got: &[u8], want: [u8; 3], tol: u8, what: &str| {
        for (c, &v) in want.iter().enumerate() {
            let plane = &got[c * h * w..(c + 1) * h * w];
            let worst = plane.iter().map(|&p| p.abs_diff(v)).max().unwrap();
            assert!(worst <= tol, "{what}: channel {c} off by {worst} from {v}");
        }
    };
    let rgb = |name: &str, bytes: Vec<u8>| {
        let f = dir.write(name, &bytes);
        load_files(&[&f], 3, 16, Fit::Stretch)
            .unwrap()
            .images
            .images()
            .to_vec()
    };
    // YCbCr from RGB, baseline and progressive.
    near(
        &rgb(
            "rgb.jpg",
            jpeg_file(J::Rgb, h, w, &flat(&[200, 60, 30]), 100),
        ),
        [200, 60, 30],
        3,
        "rgb",
    );
    let mut progressive = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut progressive, 100);
    enc.set_progressive(true);
    enc.encode(&flat(&[20, 160, 90]), w as u16, h as u16, J::Rgb)
        .unwrap();
    near(
        &rgb("prog.jpg", progressive),
        [20, 160, 90],
        3,
        "progressive",
    );
    // CMYK ink (c, m, y, k), stored Adobe-inverted: R = (255 - c)(255 - k) / 255, ...
    let ink = [30u8, 200, 90, 60];
    let cmy = |v: u8| ((255 - u32::from(v)) * (255 - u32::from(ink[3])) / 255) as u8;
    let want = [cmy(ink[0]), cmy(ink[1]), cmy(ink[2])];
    near(
        &rgb("cmyk.jpg", jpeg_file(J::Cmyk, h, w, &flat(&ink), 100)),
        want,
        4,
        "cmyk",
    );
    near(
        &rgb("ycck.jpg", jpeg_file(J::CmykAsYcck, h, w, &flat(&ink), 100)),
        want,
        4,
        "ycck",
    );
    // Grey.
    near(
        &rgb("grey.jpg", jpeg_file(J::Luma, h, w, &flat(&[77]), 100)),
        [77, 77, 77],
        2,
        "grey",
    );
}

/// Writes `images` of `d` as 28x28 grey PNG files `dir/NNN.png` (so their order is theirs).
fn png_copies(dir: &TempDir, sub: &str, d: &Dataset, images: &[usize]) -> PathBuf {
    for (k, &i) in images.iter().enumerate() {
        dir.write(
            &format!("{sub}/{k:03}.png"),
            &png_file(1, 28, 28, d.image(i)),
        );
    }
    dir.0.join(sub)
}

fn gradcon_auroc(model: &Detector, d: &Dataset, normal: &[bool]) -> f64 {
    let idx: Vec<usize> = (0..d.len()).collect();
    let scores: Vec<f64> = model
        .score_dataset(d, &idx)
        .unwrap()
        .iter()
        .map(|s| s.gradcon)
        .collect();
    auroc(&scores, normal).unwrap()
}

/// The shipped Fashion-MNIST model of class 0 (T-shirt/top) on the 100 test T-shirts and 100
/// test images of an anomalous class: sneakers (7, easy) and shirts (6, hard). PNG copies
/// score exactly like the IDX file; JPEG copies (quality 90) and copies enlarged to 40x40 then
/// stretched back give an AUROC within 0.02 of it (seen: at most 0.004 for shirts).
#[test]
fn copies_of_the_sample_score_like_its_idx_file() {
    let d = sample_test();
    let model = Detector::load(repo().join("data/models/fashion-mnist-0.gcm")).unwrap();
    for (anomaly, at_least) in [(7u8, 0.95), (6, 0.7)] {
        let dir = TempDir::new(&format!("copies-{anomaly}"));
        let chosen: Vec<usize> = d
            .indices_of_class(0)
            .into_iter()
            .chain(d.indices_of_class(anomaly))
            .collect();
        let normal: Vec<bool> = chosen.iter().map(|&i| d.labels()[i] == 0).collect();
        let idx_file = dir.write(
            "test.idx",
            &encode_idx_images(chosen.len(), 28, 28, d.take(&chosen).unwrap().images()).unwrap(),
        );
        let pngs = png_copies(&dir, "png", &d, &chosen);
        for (k, &i) in chosen.iter().enumerate() {
            let jpeg = jpeg_file(jpeg_encoder::ColorType::Luma, 28, 28, d.image(i), 90);
            dir.write(&format!("jpeg/{k:03}.jpg"), &jpeg);
            let big = resize_lanczos_planes(d.image(i), 1, 28, 28, 40, 40).unwrap();
            dir.write(&format!("big/{k:03}.png"), &png_file(1, 40, 40, &big));
        }
        let load = |p: &Path| {
            let FileList { files, skipped } = collect_files(&[p]).unwrap();
            assert!(skipped.is_empty());
            load_files(&files, 1, 28, Fit::Stretch).unwrap().images
        };
        let from_idx = load(&idx_file);
        let from_png = load(&pngs);
        assert_eq!(from_png.images(), from_idx.images());
        let idx: Vec<usize> = (0..chosen.len()).collect();
        assert_eq!(
            model.score_dataset(&from_png, &idx).unwrap(),
            model.score_dataset(&from_idx, &idx).unwrap()
        );
        let base = gradcon_auroc(&model, &from_idx, &normal);
        let jpeg = gradcon_auroc(&model, &load(&dir.0.join("jpeg")), &normal);
        let big = gradcon_auroc(&model, &load(&dir.0.join("big")), &normal);
        eprintln!(
            "class 0 against {anomaly}: AUROC IDX {base:.4}, JPEG {jpeg:.4}, 40x40 stretched \
             back {big:.4}"
        );
        assert!(base > at_least, "{anomaly}: {base}");
        assert!((jpeg - base).abs() <= 0.02, "JPEG {jpeg} against {base}");
        assert!((big - base).abs() <= 0.02, "resized {big} against {base}");
    }
}

/// Pixels, labels and sources.
type Drained = (Vec<u8>, Vec<u8>, Vec<ImageSource>);

/// Everything `stream` yields in batches of `batch`, concatenated.
fn drain(mut stream: ImageStream, batch: usize) -> Result<Drained, Error> {
    let (mut pixels, mut labels, mut sources) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(b) = stream.next_batch(batch)? {
        assert!(b.images.len() <= batch && !b.images.is_empty());
        pixels.extend_from_slice(b.images.images());
        labels.extend_from_slice(b.images.labels());
        sources.extend(b.sources);
    }
    Ok((pixels, labels, sources))
}

/// A stream reads what `load_files` reads, image for image, whatever its batch size, and
/// names the file of a truncated or overlong IDX or CIFAR-10 file.
#[test]
fn streamed_batches_are_the_whole_load_in_order() {
    let dir = TempDir::new("stream");
    let d = sample_test();
    let planes = &d.images()[..30 * 784];
    let idx = dir.write("a.idx", &encode_idx_images(30, 28, 28, planes).unwrap());
    let gz = dir.write(
        "b.idx.gz",
        &gzip(&encode_idx_images(30, 28, 28, planes).unwrap()),
    );
    let png = dir.write("c.png", &png_file(1, 20, 24, &ramp(20, 24)));
    let grey_files = [&idx, &png, &gz];
    let whole = load_files(&grey_files, 1, 28, Fit::Stretch).unwrap();
    for batch in [1, 7, 61, 1000] {
        let stream = ImageStream::new(&grey_files, 1, 28, Fit::Stretch).unwrap();
        let (pixels, labels, sources) = drain(stream, batch).unwrap();
        assert_eq!(pixels, whole.images.images(), "batch {batch}");
        assert_eq!(labels, whole.images.labels());
        assert_eq!(sources, whole.sources);
    }
    // CIFAR-10 records, with their labels.
    let mut records = Vec::new();
    for i in 0..5u8 {
        records.push(i % 10);
        records.extend((0..3072).map(|j| (j as u8).wrapping_mul(i + 1)));
    }
    let bin = dir.write("d.bin", &records);
    let whole = load_files(&[&bin], 3, 28, Fit::Stretch).unwrap();
    let stream = ImageStream::new(&[&bin], 3, 28, Fit::Stretch).unwrap();
    let (pixels, labels, sources) = drain(stream, 2).unwrap();
    assert_eq!(pixels, whole.images.images());
    assert_eq!(labels, [0, 1, 2, 3, 4]);
    assert_eq!(sources, whole.sources);
    // Bad files, found as the stream reaches them, name the file.
    let full = encode_idx_images(30, 28, 28, planes).unwrap();
    let cut = dir.write("cut.idx", &full[..full.len() - 5]);
    let mut long = full.clone();
    long.push(0);
    let long = dir.write("long.idx", &long);
    let mut bad_label = records.clone();
    bad_label[3073] = 10;
    let bad_label = dir.write("label.bin", &bad_label);
    let short_bin = dir.write("short.bin", &records[..3000]);
    for (path, says) in [
        (&cut, "truncated"),
        (&long, "more follow"),
        (&bad_label, "label 10"),
        (&short_bin, "3073"),
    ] {
        let channels = if path.extension().unwrap() == "bin" {
            3
        } else {
            1
        };
        let err = ImageStream::new(&[path], channels, 28, Fit::Stretch)
            .and_then(|s| drain(s, 8))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&path.display().to_string()) && err.contains(says),
            "{err}"
        );
    }
    // Channels must match for data set files, as in a whole load.
    let err = ImageStream::new(&[&idx], 3, 28, Fit::Stretch)
        .and_then(|s| drain(s, 8))
        .unwrap_err();
    assert!(err.to_string().contains("grey IDX images"), "{err}");
}
