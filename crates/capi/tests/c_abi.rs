//! The C API from C: `tests/c/score.c` is compiled with the system C compiler against the
//! header and the built libraries, run, and everything it prints is compared with the same
//! calls through the Rust API, bit for bit; then the same program runs under valgrind.
//!
//! Which library the C program links: cargo builds a package's cdylib and staticlib when it
//! builds the lib for the integration tests, but only into `target/<profile>/deps/`, where the
//! unhashed `libgradcon.so` is shared by every profile that writes that folder (`cargo build`
//! and `cargo test` both write `target/debug/deps/`), so the copy found there may be another
//! profile's, or older than the sources. The tests therefore run
//! `cargo build -p gradcon-c --lib` themselves, with the target folder and profile of this test
//! executable: cargo then rebuilds the library if the sources changed (with the test profile
//! this is the very unit `cargo test -p gradcon-c` just built, so nothing is rebuilt) and
//! copies it to `target/<profile>/libgradcon.{so,a}`, the files users link and the tests link.
//! (Under `cargo test --workspace` the outer build unifies the detector's features with the
//! other members', so this build compiles the detector and this crate once more, about 35 s on
//! two cores the first time.)

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

use detector::{Detector, Image, Score};
use gradcon::GradconStatus;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/models/fashion-mnist-0.gcm"
);
const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/fashion-mnist-sample/t10k-images-idx3-ubyte.gz"
);
const SIDE: usize = 28;
const PIXELS: usize = SIDE * SIDE;
/// Images of the sample the main run scores in its batch: more than the library's batch of
/// 64, so `gradcon_score_batch` spans two of them.
const MAIN_IMAGES: usize = 70;
const MAIN_THREADS: usize = 2;
/// Valgrind runs the program about 50 times slower: the fewest images score.c takes.
const VALGRIND_IMAGES: usize = 6;
/// The environment variable that turns [`avx2_reference`] on in the child process: the file
/// it writes its scores to.
const REFERENCE_ENV: &str = "GRADCON_CAPI_REFERENCE";
/// The name the C API gives model bytes in errors.
const BYTES_NAME: &str = "model bytes";

// ---------------------------------------------------------------------------------------------
// The Rust side: the same images and calls as score.c.

/// The first `count` images of the shipped Fashion-MNIST test sample, image after image.
fn sample(count: usize) -> Vec<u8> {
    let gz = std::fs::read(SAMPLE).unwrap_or_else(|e| panic!("{SAMPLE}: {e}"));
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{SAMPLE}: {e}"));
    let idx = detector::data::idx_images_from_bytes(SAMPLE, &raw).unwrap();
    assert_eq!((idx.rows, idx.cols), (SIDE, SIDE));
    assert!(idx.count >= count, "{SAMPLE} holds {} images", idx.count);
    idx.pixels[..count * PIXELS].to_vec()
}

/// score.c's special images, built from the first six: (name, image) in the program's order.
fn special_images(pixels: &[u8]) -> Vec<(&'static str, Image)> {
    let img = |k: usize| &pixels[k * PIXELS..(k + 1) * PIXELS];
    let mut rgb_interleaved = vec![0u8; 3 * PIXELS];
    let mut rgb_planar = vec![0u8; 3 * PIXELS];
    for p in 0..PIXELS {
        for c in 0..3 {
            rgb_interleaved[3 * p + c] = img(2 + c)[p];
            rgb_planar[c * PIXELS + p] = img(2 + c)[p];
        }
    }
    let (h, w) = (40, 32);
    let grey_40x32: Vec<u8> = (0..h * w)
        .map(|i| img(5)[(i / w * SIDE / h) * SIDE + (i % w) * SIDE / w])
        .collect();
    vec![
        (
            "grey_planar",
            Image::from_u8(1, 28, 28, img(0).to_vec()).unwrap(),
        ),
        (
            "grey_interleaved",
            Image::from_interleaved_u8(1, 28, 28, img(1)).unwrap(),
        ),
        (
            "rgb_interleaved",
            Image::from_interleaved_u8(3, 28, 28, &rgb_interleaved).unwrap(),
        ),
        ("rgb_planar", Image::from_u8(3, 28, 28, rgb_planar).unwrap()),
        ("grey_40x32", Image::from_u8(1, h, w, grey_40x32).unwrap()),
    ]
}

/// One score as the C program prints it: `kind name gradcon recon grad`, and the decision:
/// the threshold (NaN for none) and `anomalous` (1, 0, or -1 for none).
#[derive(Debug, Clone, PartialEq)]
struct Record {
    kind: String,
    name: String,
    values: [f64; 3],
    threshold: f64,
    anomalous: i32,
}

impl Record {
    fn new(kind: &str, name: impl Into<String>, s: &Score, threshold: Option<f64>) -> Self {
        Self {
            kind: kind.into(),
            name: name.into(),
            values: [s.gradcon, s.recon, s.grad],
            threshold: threshold.unwrap_or(f64::NAN),
            anomalous: s.anomalous.map_or(-1, i32::from),
        }
    }

    /// Everything compared, as bits (the threshold's NaN compares equal to itself this way).
    fn bits(&self) -> [u64; 5] {
        let [a, b, c] = self.values.map(f64::to_bits);
        [a, b, c, self.threshold.to_bits(), self.anomalous as u64]
    }
}

/// What score.c must print for the scores, computed with [`Detector::score`] (one image) and
/// one [`Detector::score_batch`] call, on `threads` workers, in the calling process's ISA.
fn rust_records(count: usize, threads: usize) -> Vec<Record> {
    let pixels = sample(count);
    let mut by_path = Detector::load(MODEL).unwrap();
    let bytes = std::fs::read(MODEL).unwrap();
    let mut by_bytes = Detector::from_bytes(BYTES_NAME, &bytes).unwrap();
    by_path.set_threads(threads).unwrap();
    by_bytes.set_threads(threads).unwrap();
    let special = special_images(&pixels);
    let threshold = by_path.threshold();
    assert!(threshold.is_some(), "the shipped model has a threshold");
    let mut out = vec![Record::new(
        "score",
        "path/grey_planar",
        &by_path.score(&special[0].1).unwrap(),
        threshold,
    )];
    for (name, img) in &special {
        let s = by_bytes.score(img).unwrap();
        out.push(Record::new("score", format!("bytes/{name}"), &s, threshold));
    }
    let mut batch: Vec<Image> = special.into_iter().map(|(_, img)| img).collect();
    batch.extend(
        pixels
            .chunks_exact(PIXELS)
            .map(|p| Image::from_u8(1, 28, 28, p.to_vec()).unwrap()),
    );
    let scores = by_bytes.score_batch(&batch).unwrap();
    assert_eq!(scores.len(), batch.len());
    out.extend(
        scores
            .iter()
            .enumerate()
            .map(|(i, s)| Record::new("batch", i.to_string(), s, threshold)),
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Building and running the C program.

/// The folder holding the freshly built `libgradcon.so` and `libgradcon.a` (see the module
/// documentation), built once per test process.
fn library_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(build_library)
}

fn build_library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/[<triple>/]<profile>/deps/c_abi-<hash>
    let out_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let profile_dir = out_dir.file_name().unwrap().to_str().unwrap().to_owned();
    let mut target_dir = out_dir.parent().unwrap().to_path_buf();
    let mut args: Vec<OsString> = ["build", "-p", "gradcon-c", "--lib"]
        .map(OsString::from)
        .into();
    // Cargo tags the root of a target folder; without the tag here, a `--target` triple sits
    // between it and the profile folder.
    if !target_dir.join("CACHEDIR.TAG").is_file() {
        let up = target_dir.parent().unwrap().to_path_buf();
        assert!(
            up.join("CACHEDIR.TAG").is_file(),
            "cannot tell the target folder of {}",
            exe.display()
        );
        args.extend(["--target".into(), target_dir.file_name().unwrap().into()]);
        target_dir = up;
    }
    // `target/debug` holds the dev and test profiles; `cargo test` builds with the test one.
    let profile = if profile_dir == "debug" {
        "test"
    } else {
        &profile_dir
    };
    args.extend(["--profile".into(), profile.into()]);
    args.extend(["--target-dir".into(), target_dir.into_os_string()]);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let start = Instant::now();
    let out = Command::new(&cargo)
        .args(&args)
        .current_dir(MANIFEST_DIR)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cargo.to_string_lossy()));
    assert!(
        out.status.success(),
        "`cargo {}` failed:\n{}",
        args.join(" ".as_ref()).to_string_lossy(),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "c_abi: `cargo {}` took {:.1?}",
        args.join(" ".as_ref()).to_string_lossy(),
        start.elapsed()
    );
    for lib in ["libgradcon.so", "libgradcon.a"] {
        assert!(
            out_dir.join(lib).is_file(),
            "no {lib} in {}",
            out_dir.display()
        );
    }
    out_dir
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Shared,
    Static,
}

/// A fresh folder for one test's files.
fn work_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("c_abi")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// C compiler flags: the strict set the header must pass.
const CFLAGS: [&str; 7] = [
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wpedantic",
    "-O1",
    "-g",
];

/// What `rustc --print native-static-libs` lists for the staticlib on Linux with glibc.
const STATIC_LIBS: [&str; 7] = [
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// Compiles score.c into `dir`, linked against the shared or the static library.
fn compile(dir: &Path, link: Link) -> PathBuf {
    compile_source(&Path::new(MANIFEST_DIR).join("tests/c/score.c"), dir, link)
}

/// Compiles the C program `source` into `dir`, linked against the shared or the static
/// library.
fn compile_source(source: &Path, dir: &Path, link: Link) -> PathBuf {
    let lib = library_dir();
    let exe = dir.join(source.file_stem().unwrap());
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let mut cmd = Command::new(&cc);
    cmd.args(CFLAGS)
        .arg("-I")
        .arg(Path::new(MANIFEST_DIR).join("include"))
        .arg(source)
        .arg("-o")
        .arg(&exe);
    match link {
        Link::Shared => {
            cmd.arg("-L").arg(lib).arg("-lgradcon");
            cmd.arg(format!("-Wl,-rpath,{}", lib.display()));
            cmd.args(["-lpthread", "-lm"]);
        }
        Link::Static => {
            cmd.arg(lib.join("libgradcon.a")).args(STATIC_LIBS);
        }
    }
    let start = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {}: {e}", cc.to_string_lossy()));
    let name = source.file_name().unwrap().to_string_lossy();
    assert!(
        out.status.success(),
        "compiling {name} ({link:?}) failed:\n{cmd:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "c_abi: compiling {name} ({link:?}) took {:.1?}",
        start.elapsed()
    );
    exe
}

/// Writes the first `count` sample images for score.c.
fn write_images(dir: &Path, count: usize) -> PathBuf {
    let path = dir.join("images.raw");
    std::fs::write(&path, sample(count)).unwrap();
    path
}

/// The program's output, parsed.
#[derive(Debug, Default)]
struct Run {
    info: BTreeMap<String, String>,
    records: Vec<Record>,
    /// case -> (status value, status name, message)
    errors: BTreeMap<String, (u32, String, String)>,
    done: bool,
}

fn parse(stdout: &str) -> Run {
    let mut run = Run::default();
    for line in stdout.lines() {
        let mut words = line.splitn(2, ' ');
        let (kind, rest) = (words.next().unwrap(), words.next().unwrap_or(""));
        match kind {
            "info" => {
                let (k, v) = rest.split_once(' ').unwrap();
                run.info.insert(k.into(), v.into());
            }
            "score" | "batch" => {
                let f: Vec<&str> = rest.split(' ').collect();
                assert_eq!(f.len(), 7, "bad line {line:?}");
                let num = |s: &str| -> f64 { s.parse().unwrap_or_else(|_| panic!("{line:?}")) };
                let values = [num(f[1]), num(f[2]), num(f[3])];
                assert_eq!(num(f[4]).to_bits(), (-values[0]).to_bits(), "{line:?}");
                run.records.push(Record {
                    kind: kind.into(),
                    name: f[0].into(),
                    values,
                    threshold: num(f[5]),
                    anomalous: f[6].parse().unwrap_or_else(|_| panic!("{line:?}")),
                });
            }
            "error" => {
                let f: Vec<&str> = rest.splitn(4, ' ').collect();
                assert_eq!(f.len(), 4, "bad line {line:?}");
                let status = f[1].parse().unwrap();
                run.errors
                    .insert(f[0].into(), (status, f[2].into(), f[3].into()));
            }
            "done" => run.done = true,
            _ => panic!("unexpected line {line:?}"),
        }
    }
    run
}

fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs score.c (under `wrapper`, if any) and parses what it printed; it must exit with 0.
fn run_c(
    dir: &Path,
    wrapper: &[&str],
    exe: &Path,
    images: &Path,
    threads: usize,
    worker_images: Option<usize>,
    env: &[(&str, &str)],
) -> (Run, Output) {
    let (program, pre) = match wrapper.split_first() {
        Some((w, rest)) => (PathBuf::from(w), rest.to_vec()),
        None => (exe.to_path_buf(), vec![]),
    };
    let mut cmd = Command::new(program);
    cmd.args(pre);
    if !wrapper.is_empty() {
        cmd.arg(exe);
    }
    cmd.arg(MODEL).arg(images).arg(threads.to_string());
    if let Some(n) = worker_images {
        cmd.arg(n.to_string());
    }
    cmd.current_dir(dir).envs(env.iter().copied());
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "score.c failed:\n{}", show(&out));
    let run = parse(&String::from_utf8(out.stdout.clone()).unwrap());
    assert!(run.done, "score.c did not finish:\n{}", show(&out));
    (run, out)
}

// ---------------------------------------------------------------------------------------------
// The checks.

/// The scores bit for bit, the info lines, and every error path's status and message.
fn check_run(run: &Run, want: &[Record]) {
    assert_eq!(run.info["abi_version"], gradcon::ABI_VERSION.to_string());
    assert_eq!(run.info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(run.info["channels"], "1");
    assert_eq!(run.info["input_side"], "28");

    assert_eq!(run.records.len(), want.len(), "records: {:?}", run.records);
    for (got, want) in run.records.iter().zip(want) {
        assert_eq!(
            (&got.kind, &got.name),
            (&want.kind, &want.name),
            "records in another order"
        );
        assert_eq!(
            got.bits(),
            want.bits(),
            "{} {}: C gave {:?}, Rust {:?}",
            got.kind,
            got.name,
            got.values,
            want.values
        );
    }

    check_errors(run);
}

fn check_errors(run: &Run) {
    use GradconStatus::*;
    let bytes = std::fs::read(MODEL).unwrap();
    let garbage = b"not a model file at all\0";
    // The library's own messages for the same inputs, as the C API must pass them on.
    let rust_err = |func: &str, e: detector::Error| format!("{func}: {e}");
    let garbage_msg = rust_err(
        "gradcon_load_bytes",
        Detector::from_bytes(BYTES_NAME, garbage).unwrap_err(),
    );
    let truncated_msg = rust_err(
        "gradcon_load_bytes",
        Detector::from_bytes(BYTES_NAME, &bytes[..bytes.len() / 2]).unwrap_err(),
    );
    let exact: &[(&str, GradconStatus, &str)] = &[
        (
            "load_null_path",
            NullArgument,
            "gradcon_load: `path` is NULL",
        ),
        ("load_null_out", NullArgument, "gradcon_load: `out` is NULL"),
        (
            "load_bytes_null",
            NullArgument,
            "gradcon_load_bytes: `bytes` is NULL",
        ),
        ("load_bytes_garbage", Format, &garbage_msg),
        ("load_bytes_truncated", Format, &truncated_msg),
        (
            "score_null_detector",
            NullArgument,
            "gradcon_score: `detector` is NULL",
        ),
        (
            "score_null_pixels",
            NullArgument,
            "gradcon_score: `pixels` is NULL",
        ),
        (
            "score_null_out",
            NullArgument,
            "gradcon_score: `out` is NULL",
        ),
        (
            "score_short_len",
            InvalidArgument,
            "gradcon_score: len is 783, but channels 1 x height 28 x width 28 needs 784 bytes",
        ),
        (
            "score_channels_2",
            InvalidArgument,
            "gradcon_score: channels is 2; 1 (grey) or 3 (RGB) expected",
        ),
        (
            "score_zero_height",
            InvalidArgument,
            "gradcon_score: height x width is 0x28; both must be at least 1",
        ),
        (
            "score_bad_layout",
            InvalidArgument,
            "gradcon_score: layout is 7; GRADCON_INTERLEAVED (0) or GRADCON_PLANAR (1) expected",
        ),
        (
            "score_too_large",
            InvalidArgument,
            "gradcon_score: height x width is 4097x4096, more than the limit of 16777216 pixels",
        ),
        (
            "batch_null_images",
            NullArgument,
            "gradcon_score_batch: `images` is NULL",
        ),
        (
            "batch_null_out",
            NullArgument,
            "gradcon_score_batch: `out` is NULL",
        ),
        (
            "batch_bad_image",
            InvalidArgument,
            "gradcon_score_batch: image 2: len is 10, but channels 1 x height 28 x width 28 \
             needs 784 bytes",
        ),
        (
            "batch_null_pixels",
            NullArgument,
            "gradcon_score_batch: image 1: `pixels` is NULL",
        ),
        (
            "threads_0",
            InvalidArgument,
            "gradcon_set_threads: threads is 0; 1 to 256 expected",
        ),
        (
            "threads_257",
            InvalidArgument,
            "gradcon_set_threads: threads is 257; 1 to 256 expected",
        ),
        (
            "threads_null",
            NullArgument,
            "gradcon_set_threads: `detector` is NULL",
        ),
        (
            "channels_null_detector",
            NullArgument,
            "gradcon_channels: `detector` is NULL",
        ),
        (
            "input_side_null_out",
            NullArgument,
            "gradcon_input_side: `out` is NULL",
        ),
    ];
    let status_of = |case: &str| {
        run.errors
            .get(case)
            .unwrap_or_else(|| panic!("score.c printed no error case {case}"))
    };
    for &(case, status, message) in exact {
        let (value, name, got) = status_of(case);
        assert_eq!(
            (*value, name.as_str()),
            (status as u32, status.name().to_str().unwrap()),
            "{case}"
        );
        assert_eq!(got, message, "{case}");
    }
    // A folder given as a model: an I/O error naming it; a file that is no model says so.
    let (value, _, got) = status_of("load_folder");
    assert_eq!(*value, Io as u32);
    assert_eq!(
        got,
        &rust_err("gradcon_load", Detector::load(".").unwrap_err())
    );
    assert_eq!(got, "gradcon_load: .: open failed: a folder, not a file");
    let (value, _, got) = status_of("load_not_a_model");
    assert_eq!(*value, Format as u32);
    assert!(
        got.starts_with("gradcon_load: ")
            && got.ends_with(": not a GradCon model, checkpoint or safetensors file"),
        "{got}"
    );
    // The missing file: an I/O error naming the file (the OS's words after it may vary).
    let (value, _, got) = status_of("load_missing_file");
    assert_eq!(*value, Io as u32);
    let rust = rust_err(
        "gradcon_load",
        Detector::load("no-such-dir/missing-model.gcm").unwrap_err(),
    );
    assert!(
        got.starts_with("gradcon_load: no-such-dir/missing-model.gcm: open failed: "),
        "{got}"
    );
    assert_eq!(got, &rust);
    assert_eq!(run.errors.len(), exact.len() + 3, "{:?}", run.errors.keys());
}

#[test]
fn c_program_matches_the_rust_api() {
    let dir = work_dir("shared");
    let exe = compile(&dir, Link::Shared);
    let images = write_images(&dir, MAIN_IMAGES);
    let start = Instant::now();
    let (run, _) = run_c(&dir, &[], &exe, &images, MAIN_THREADS, None, &[]);
    eprintln!(
        "c_abi: score.c (shared library) ran in {:.2?}",
        start.elapsed()
    );
    check_run(&run, &rust_records(MAIN_IMAGES, MAIN_THREADS));
}

#[test]
fn static_library_gives_the_same_results() {
    let dir = work_dir("static");
    let exe = compile(&dir, Link::Static);
    let images = write_images(&dir, MAIN_IMAGES);
    let (run, _) = run_c(&dir, &[], &exe, &images, MAIN_THREADS, None, &[]);
    check_run(&run, &rust_records(MAIN_IMAGES, MAIN_THREADS));
}

/// Valgrind emulates no AVX-512: the C program runs there on AVX2 (`GRADCON_ISA=avx2`) and one
/// worker, and is compared with the Rust API run the same way. The ISA is fixed once per
/// process, so the Rust side runs in a child process: this test executable, running
/// [`avx2_reference`].
#[test]
fn c_program_is_clean_under_valgrind() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        // Straight to the process's stderr, past the test harness's capture of `eprintln!`,
        // so the skip shows in a plain `cargo test` run.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: valgrind not installed; the C API's memory check did not run \
             (apt-get install valgrind)"
        );
        return;
    }
    let dir = work_dir("valgrind");
    let exe = compile(&dir, Link::Shared);
    let images = write_images(&dir, VALGRIND_IMAGES);
    let isa = [("GRADCON_ISA", "avx2")];

    let reference = dir.join("reference.txt");
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["avx2_reference", "--exact", "--ignored"])
        .env(REFERENCE_ENV, &reference)
        .envs(isa)
        .output()
        .unwrap();
    assert!(child.status.success(), "reference child:\n{}", show(&child));
    let want: Vec<Record> = std::fs::read_to_string(&reference)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let v = |i: usize| f64::from_bits(u64::from_str_radix(f[i], 16).unwrap());
            Record {
                kind: f[0].into(),
                name: f[1].into(),
                values: [v(2), v(3), v(4)],
                threshold: v(5),
                anomalous: f[6].parse().unwrap(),
            }
        })
        .collect();
    assert_eq!(want.len(), 6 + 5 + VALGRIND_IMAGES, "reference lines");

    let valgrind = [
        "valgrind",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite,indirect",
        "--error-exitcode=1",
    ];
    let start = Instant::now();
    // Valgrind runs one thread at a time, and rayon's workers spin before they sleep: the
    // threads that score the detector at once score one image each there.
    let (run, out) = run_c(&dir, &valgrind, &exe, &images, 1, Some(1), &isa);
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            [
                "ERROR SUMMARY",
                "definitely lost",
                "indirectly lost",
                "possibly lost",
            ]
            .iter()
            .any(|k| l.contains(k))
        })
        .collect();
    eprintln!(
        "c_abi: score.c under valgrind ({VALGRIND_IMAGES} images, avx2, 1 thread) took \
         {took:.1?}\n{}",
        summary.join("\n")
    );
    assert!(
        stderr.contains("ERROR SUMMARY: 0 errors"),
        "valgrind found errors:\n{stderr}"
    );
    for kind in ["definitely lost", "indirectly lost"] {
        assert!(
            !stderr.contains(kind) || stderr.contains(&format!("{kind}: 0 bytes in 0 blocks")),
            "valgrind: memory {kind}:\n{stderr}"
        );
    }
    check_run(&run, &want);
}

/// The Rust reference for [`c_program_is_clean_under_valgrind`], run in a child process with
/// `GRADCON_ISA=avx2`: writes one line per score to the file `$GRADCON_CAPI_REFERENCE`, the
/// values as bits.
#[test]
#[ignore = "run by c_program_is_clean_under_valgrind in a child process"]
fn avx2_reference() {
    let Some(path) = std::env::var_os(REFERENCE_ENV) else {
        return;
    };
    let isa = core_tensor::Isa::detect();
    let wanted = std::env::var("GRADCON_ISA")
        .ok()
        .and_then(|s| core_tensor::Isa::parse(&s));
    assert!(
        wanted.is_none_or(|w| w == isa || !w.is_supported()),
        "GRADCON_ISA asks for {wanted:?}, the kernels run {isa}"
    );
    let before = isa.calls();
    let mut lines = String::new();
    for r in rust_records(VALGRIND_IMAGES, 1) {
        let [a, b, c, t, _] = r.bits();
        lines += &format!(
            "{} {} {a:016x} {b:016x} {c:016x} {t:016x} {}\n",
            r.kind, r.name, r.anomalous
        );
    }
    assert!(isa.calls() > before, "no kernel ran on {isa}");
    std::fs::write(path, lines).unwrap();
}

/// Load, score and free cycles in one process (`tests/c/cycles.c`).
const CYCLES: usize = 1000;
/// How much more resident memory the cycles may end with than the first two left, both taken
/// once glibc has returned the freed memory it keeps for reuse (`malloc_trim`): what the
/// library would still hold. (Measured: 0.3 to 0.4 MB.)
const CYCLES_HELD_KB: i64 = 2 << 10;
/// How much more resident memory than before the first load the cycles may end with, before
/// that `malloc_trim`: the library's code and the process-wide pool, and the freed memory
/// glibc keeps for reuse. (Measured: 7.4 to 10.8 MB.)
const CYCLES_KEPT_KB: i64 = 16 << 10;

/// The model's memory and its worker threads are given back by `gradcon_free`: 1,000 cycles of
/// load, score and free (every other one with two workers of its own) leave the process, once
/// glibc returns the freed memory it keeps, within 2 MB of where the first two cycles left it
/// (before, the freed models piled up in the kernels' buffer pools, which no `malloc_trim`
/// can return), and after each free the process has the threads it had before the load.
///
/// The program runs with `MALLOC_ARENA_MAX=1`: glibc gives threads arenas of their own (up to
/// 8 per core), and as worker threads come and go their arenas keep up to about 8 MB of freed
/// memory for reuse, spread so that `malloc_trim` returns a varying part of it. With one arena
/// that retention is one heap, and the figures are steady (the default's are in the C
/// library's README). The kernel may still list a joined worker for a moment while it removes
/// it: seen after about 1 in 500 frees on a busy 2-core host, and allowed for up to 1 in 20;
/// without the join a worker was listed after almost every free.
#[test]
fn load_and_free_cycles_give_memory_and_threads_back() {
    let dir = work_dir("cycles");
    let exe = compile_source(
        &Path::new(MANIFEST_DIR).join("tests/c/cycles.c"),
        &dir,
        Link::Shared,
    );
    let images = write_images(&dir, 8);
    let start = Instant::now();
    let out = Command::new(&exe)
        .arg(MODEL)
        .arg(&images)
        .arg(CYCLES.to_string())
        .env("MALLOC_ARENA_MAX", "1")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "cycles.c failed:\n{}", show(&out));
    let run = parse(&String::from_utf8(out.stdout).unwrap());
    assert!(run.done, "cycles.c did not finish");
    let info = |k: &str| -> i64 { run.info[k].parse().unwrap() };
    eprintln!(
        "c_abi: {CYCLES} load, score and free cycles in {:.1?}: resident {} KiB before the first \
         load, {} KiB after the first two cycles (and malloc_trim), {} KiB after the last ({} \
         KiB after malloc_trim); {} of {} frees left a worker listed for a moment (at most {} us)",
        start.elapsed(),
        info("rss_start_kb"),
        info("rss_first_kb"),
        info("rss_end_kb"),
        info("rss_trimmed_kb"),
        info("listed"),
        CYCLES / 2,
        info("settle_us")
    );
    let held = info("rss_trimmed_kb") - info("rss_first_kb");
    assert!(
        held <= CYCLES_HELD_KB,
        "{held} KiB more resident after {CYCLES} cycles and malloc_trim than after the first two"
    );
    let kept = info("rss_end_kb") - info("rss_start_kb");
    assert!(
        kept <= CYCLES_KEPT_KB,
        "{kept} KiB more resident after {CYCLES} cycles than before the first load"
    );
    assert!(
        info("listed") * 20 <= (CYCLES / 2) as i64,
        "{} of {} frees left a worker thread listed",
        info("listed"),
        CYCLES / 2
    );
}

/// The README's C example compiles with the strict flags and runs from the workspace root.
#[test]
fn readme_example_compiles_and_runs() {
    let readme = std::fs::read_to_string(Path::new(MANIFEST_DIR).join("README.md")).unwrap();
    let start = readme.find("```c\n").expect("the README has a C example") + 5;
    let len = readme[start..].find("```").unwrap();
    let dir = work_dir("readme");
    let source = dir.join("example.c");
    std::fs::write(&source, &readme[start..start + len]).unwrap();
    let exe = compile_source(&source, &dir, Link::Shared);
    let out = Command::new(&exe)
        .current_dir(Path::new(MANIFEST_DIR).join("../.."))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the README example failed:\n{}",
        show(&out)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("gradcon -0.") && stdout.contains("anomaly score 0."),
        "{stdout}"
    );
}

/// The header and the library agree on the ABI version, the status and layout values, and
/// the functions there are.
#[test]
fn header_agrees_with_the_library() {
    let header =
        std::fs::read_to_string(Path::new(MANIFEST_DIR).join("include/gradcon.h")).unwrap();
    assert!(
        header.contains(&format!(
            "#define GRADCON_ABI_VERSION {}\n",
            gradcon::ABI_VERSION
        )),
        "the header's GRADCON_ABI_VERSION is not {}",
        gradcon::ABI_VERSION
    );
    for status in GradconStatus::ALL {
        let line = format!("{} = {},", status.name().to_str().unwrap(), status as u32);
        assert!(header.contains(&line), "the header lacks `{line}`");
    }
    for line in [
        format!("GRADCON_INTERLEAVED = {},", gradcon::LAYOUT_INTERLEAVED),
        format!("GRADCON_PLANAR = {},", gradcon::LAYOUT_PLANAR),
    ] {
        assert!(header.contains(&line), "the header lacks `{line}`");
    }
    // Every exported function is declared, and every declared one exported.
    let source = std::fs::read_to_string(Path::new(MANIFEST_DIR).join("src/lib.rs")).unwrap();
    let exported = functions(&source, |l| {
        let l = l.trim_start();
        l.starts_with("pub extern \"C\" fn ") || l.starts_with("pub unsafe extern \"C\" fn ")
    });
    // Prototypes start at the line's beginning; comments, macros and struct bodies do not.
    let declared = functions(&header, |l| {
        !l.starts_with(|c: char| c.is_whitespace() || "/#}".contains(c))
    });
    assert_eq!(exported.len(), 12, "{exported:?}");
    assert_eq!(declared, exported);
}

/// The `gradcon_*` names just before a `(` on the lines `keep` keeps.
fn functions(text: &str, keep: impl Fn(&str) -> bool) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| keep(l))
        .filter_map(|l| {
            let head = &l[..l.find('(')?];
            let name = head
                .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()?;
            name.starts_with("gradcon_").then(|| name.to_string())
        })
        .collect()
}
