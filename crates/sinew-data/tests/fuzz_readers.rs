//! Byte-mutation fuzzing of every reader, seeded with small valid files: MNIST IDX (raw and gzip),
//! CIFAR binary batches, CSV, and PNG/JPEG decoding. Each mutated input must give `Ok` or `Err`:
//! never a panic (caught and reported with its reproducer), an abort, or a hang (a watchdog fails
//! the run when one input takes longer than the time bound).
//!
//! Deterministic: case `k` of reader `r` always mutates the same way. Cases per reader come from
//! `SINEW_FUZZ_CASES` (default 2000), threads from `SINEW_FUZZ_THREADS` (default: all cores), the
//! per-input bound from `SINEW_FUZZ_TIMEOUT_MS` (default 10000). Reproduce one case with
//! `SINEW_FUZZ_ONLY=<case>`.

mod common;

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sinew_data::image_folder::decode_image_bytes;
use sinew_data::{
    Cifar, CifarLabels, ColorMode, CsvDataset, CsvOptions, Dataset, Mnist, TargetColumn, TargetKind,
};

/// SplitMix64: a tiny deterministic generator, one per case.
struct Rng(u64);

impl Rng {
    fn new(reader: &str, case: u64) -> Self {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in reader.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        Rng(h ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Values that break size arithmetic when written into header fields.
const INTERESTING_U32: [u32; 9] = [
    0,
    1,
    2,
    0x7f,
    0xff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    u32::MAX,
];

/// Applies one to four mutations; `fields` are offsets of 4-byte big-endian header fields.
fn mutate(seed: &[u8], others: &[Vec<u8>], fields: &[usize], rng: &mut Rng) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = [0, 0xff, 0x7f, 0x80, rng.next() as u8][rng.below(5)];
            }
            2 => {
                let keep = rng.below(data.len() + 1);
                data.truncate(keep);
            }
            3 => {
                let n = 1 + rng.below(64);
                data.extend((0..n).map(|_| rng.next() as u8));
            }
            4 => {
                // Splice: a chunk of another seed (or this one) over a random position.
                let donor = &others[rng.below(others.len())];
                if !donor.is_empty() && !data.is_empty() {
                    let from = rng.below(donor.len());
                    let len = 1 + rng.below((donor.len() - from).min(256));
                    let at = rng.below(data.len());
                    let end = (at + len).min(data.len());
                    data.splice(at..end, donor[from..from + len].iter().copied());
                }
            }
            5 if !fields.is_empty() => {
                // Header field edit: 0, huge, off by one, or a random value.
                let at = fields[rng.below(fields.len())];
                if at + 4 <= data.len() {
                    let old = u32::from_be_bytes(data[at..at + 4].try_into().unwrap());
                    let new = match rng.below(4) {
                        0 => INTERESTING_U32[rng.below(INTERESTING_U32.len())],
                        1 => old.wrapping_add(1),
                        2 => old.wrapping_sub(1),
                        _ => rng.next() as u32,
                    };
                    data[at..at + 4].copy_from_slice(&new.to_be_bytes());
                }
            }
            _ if data.len() >= 2 => {
                // A 16-bit field anywhere in the first 256 bytes (JPEG and PNG headers).
                let at = rng.below(data.len().min(256) - 1);
                let v = [0u16, 1, 0xffff, 0x7fff, rng.next() as u16][rng.below(5)];
                data[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
            _ => {}
        }
    }
    data
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out).unwrap();
    out
}

/// The first `n` items of an IDX file from the shared data, re-encoded (or synthetic ones).
fn idx_seed(file: &str, n: usize, item: usize, magic: u32, dims: &[u32]) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist");
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    let header = out.len();
    match std::fs::read(dir.join(file)) {
        Ok(gz) => out.extend_from_slice(&gunzip(&gz)[header..header + n * item]),
        Err(_) => out.extend((0..n * item).map(|i| (i % 10) as u8)),
    }
    out
}

/// How one reader is fuzzed: its seeds, header field offsets, and the parse to run.
struct Target {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    fields: Vec<usize>,
    /// Runs the reader on an input derived from `seed_index` and the mutated bytes.
    run: fn(usize, &[u8], &[Vec<u8>]) -> bool,
}

fn cases() -> u64 {
    std::env::var("SINEW_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn threads() -> usize {
    std::env::var("SINEW_FUZZ_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Runs every case of `target` on worker threads under a watchdog; fails on any panic.
fn fuzz(target: Target) {
    let total = cases();
    let only: Option<u64> = std::env::var("SINEW_FUZZ_ONLY")
        .ok()
        .and_then(|v| v.parse().ok());
    let timeout = Duration::from_millis(
        std::env::var("SINEW_FUZZ_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000),
    );
    let n_threads = if only.is_some() { 1 } else { threads() };
    let next = AtomicU64::new(only.unwrap_or(0));
    let end = only.map_or(total, |k| k + 1);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let (ok_count, err_count) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let slowest_us = AtomicU64::new(0);
    let start = Instant::now();
    // Per thread: the case in progress and when it started (ms since `start`), for the watchdog.
    let busy: Vec<(AtomicU64, AtomicU64)> = (0..n_threads)
        .map(|_| (AtomicU64::new(u64::MAX), AtomicU64::new(0)))
        .collect();
    let done = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for slot in &busy {
            let (target, next, failures, ok_count, err_count, done, slowest_us) = (
                &target,
                &next,
                &failures,
                &ok_count,
                &err_count,
                &done,
                &slowest_us,
            );
            scope.spawn(move || {
                loop {
                    let case = next.fetch_add(1, Ordering::Relaxed);
                    if case >= end || failures.lock().unwrap().len() >= 5 {
                        break;
                    }
                    slot.1
                        .store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
                    slot.0.store(case, Ordering::Relaxed);
                    let mut rng = Rng::new(target.name, case);
                    let seed_index = rng.below(target.seeds.len());
                    let input = mutate(
                        &target.seeds[seed_index],
                        &target.seeds,
                        &target.fields,
                        &mut rng,
                    );
                    let t0 = Instant::now();
                    let outcome = catch_unwind(AssertUnwindSafe(|| {
                        (target.run)(seed_index, &input, &target.seeds)
                    }));
                    slot.0.store(u64::MAX, Ordering::Relaxed);
                    slowest_us.fetch_max(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
                    match outcome {
                        Ok(true) => ok_count.fetch_add(1, Ordering::Relaxed),
                        Ok(false) => err_count.fetch_add(1, Ordering::Relaxed),
                        Err(_) => {
                            failures.lock().unwrap().push(format!(
                                "{}: case {case} (seed {seed_index}, {} bytes) panicked; rerun \
                                 with SINEW_FUZZ_ONLY={case}",
                                target.name,
                                input.len()
                            ));
                            0
                        }
                    };
                }
                done.fetch_add(1, Ordering::Relaxed);
            });
        }
        // Watchdog: a case running past the bound is a hang; report it and stop the process.
        while done.load(Ordering::Relaxed) < n_threads {
            std::thread::sleep(Duration::from_millis(50));
            let now = start.elapsed().as_millis() as u64;
            for slot in &busy {
                let case = slot.0.load(Ordering::Relaxed);
                let since = slot.1.load(Ordering::Relaxed);
                if case != u64::MAX && now.saturating_sub(since) > timeout.as_millis() as u64 {
                    eprintln!(
                        "{}: case {case} ran over {timeout:?} (hang); rerun with SINEW_FUZZ_ONLY={case}",
                        target.name
                    );
                    std::process::exit(101);
                }
            }
        }
    });
    let failures = failures.into_inner().unwrap();
    let (ok, err) = (ok_count.into_inner(), err_count.into_inner());
    eprintln!(
        "fuzz {}: {} inputs ({ok} Ok, {err} Err) in {:.1?} on {n_threads} threads, slowest \
         input {} us",
        target.name,
        ok + err,
        start.elapsed(),
        slowest_us.into_inner()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(only.is_some() || ok + err == total as usize);
    // The seeds themselves parse, so the mutations start from valid files.
    for (k, seed) in target.seeds.iter().enumerate() {
        assert!(
            (target.run)(k, seed, &target.seeds),
            "{} seed {k} fails",
            target.name
        );
    }
}

const MNIST_IMAGES: usize = 3;

/// MNIST seeds: raw images, raw labels, gzip images, gzip labels.
fn mnist_seeds() -> Vec<Vec<u8>> {
    let images = idx_seed(
        "train-images-idx3-ubyte.gz",
        MNIST_IMAGES,
        784,
        0x803,
        &[3, 28, 28],
    );
    let labels = idx_seed("train-labels-idx1-ubyte.gz", MNIST_IMAGES, 1, 0x801, &[3]);
    vec![images.clone(), labels.clone(), gzip(&images), gzip(&labels)]
}

/// Every sample of a parsed MNIST set can be read, and one past the end is an error.
fn check_mnist(parsed: sinew_data::Result<Mnist>) -> bool {
    match parsed {
        Ok(m) => (0..m.len()).all(|i| m.get(i).is_ok()) && m.get(m.len()).is_err(),
        Err(_) => false,
    }
}

/// Parses the mutated file paired with its valid partner; even seeds are images.
fn run_mnist(seed: usize, input: &[u8], seeds: &[Vec<u8>]) -> bool {
    check_mnist(match seed {
        0 | 2 => Mnist::from_bytes(input, &seeds[seed + 1]),
        _ => Mnist::from_bytes(&seeds[seed - 1], input),
    })
}

/// Mutates the uncompressed IDX and gzips it, to reach the parser through the gzip path.
fn run_mnist_gz_inside(seed: usize, input: &[u8], seeds: &[Vec<u8>]) -> bool {
    let gz = gzip(input);
    check_mnist(match seed {
        0 => Mnist::from_bytes(&gz, &seeds[1]),
        _ => Mnist::from_bytes(&seeds[0], &gz),
    })
}

#[test]
fn fuzz_mnist_idx() {
    fuzz(Target {
        name: "mnist",
        seeds: mnist_seeds(),
        fields: vec![0, 4, 8, 12],
        run: run_mnist,
    });
}

#[test]
fn fuzz_mnist_idx_inside_gzip() {
    fuzz(Target {
        name: "mnist-gz",
        seeds: mnist_seeds()[..2].to_vec(),
        fields: vec![0, 4, 8, 12],
        run: run_mnist_gz_inside,
    });
}

/// Two CIFAR-10 records from the shared test batch (or synthetic), and the same as CIFAR-100.
fn cifar_seeds() -> Vec<Vec<u8>> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cifar-10/test_batch.bin");
    let ten = match std::fs::read(path) {
        Ok(bytes) => bytes[..2 * 3073].to_vec(),
        Err(_) => (0..2 * 3073).map(|i| (i % 7) as u8).collect(),
    };
    let mut hundred = Vec::new();
    for rec in ten.chunks(3073) {
        hundred.extend_from_slice(&[rec[0] + 5, rec[0] * 9]);
        hundred.extend_from_slice(&rec[1..]);
    }
    vec![ten, hundred]
}

fn run_cifar(seed: usize, input: &[u8], _: &[Vec<u8>]) -> bool {
    let kind = [CifarLabels::Cifar10, CifarLabels::Cifar100Fine][seed];
    match Cifar::from_bytes(input, kind) {
        Ok(c) => (0..c.len()).all(|i| c.get(i).is_ok()) && c.image(c.len()).is_none(),
        Err(_) => false,
    }
}

#[test]
fn fuzz_cifar_binary() {
    fuzz(Target {
        name: "cifar",
        seeds: cifar_seeds(),
        fields: vec![0, 3072, 3073, 3074],
        run: run_cifar,
    });
}

fn csv_options(seed: usize) -> CsvOptions {
    match seed {
        0 => CsvOptions::default(),
        1 => CsvOptions {
            target: TargetColumn::Name("species".into()),
            kind: TargetKind::Categorical,
            delimiter: b';',
            ..Default::default()
        },
        _ => CsvOptions {
            target: TargetColumn::Index(0),
            kind: TargetKind::Value,
            has_headers: false,
            ..Default::default()
        },
    }
}

fn run_csv(seed: usize, input: &[u8], _: &[Vec<u8>]) -> bool {
    match CsvDataset::from_reader(input, Path::new("<csv>"), &csv_options(seed)) {
        Ok(ds) => (0..ds.len()).all(|i| ds.get(i).is_ok()),
        Err(_) => false,
    }
}

#[test]
fn fuzz_csv() {
    fuzz(Target {
        name: "csv",
        seeds: vec![
            b"a,b,label\n1.5,2,0\n-3,4e1,2\n7,8,1\n".to_vec(),
            b"x;species;y\n1;setosa;2\n3;virginica;4\n5;setosa;6\n".to_vec(),
            b"0.5,1,2,3\n-1.25,4,5,6\n\"2\",7,8,9\n".to_vec(),
        ],
        fields: vec![],
        run: run_csv,
    });
}

/// A small PNG (RGB and gray) and JPEG, encoded here.
fn image_seeds() -> Vec<Vec<u8>> {
    use image::{ImageFormat, RgbImage};
    let rgb = RgbImage::from_fn(8, 6, |x, y| {
        image::Rgb([(x * 30) as u8, (y * 40) as u8, 99])
    });
    let encode = |img: image::DynamicImage, format| {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    };
    let dynamic = image::DynamicImage::ImageRgb8(rgb);
    vec![
        encode(dynamic.clone(), ImageFormat::Png),
        encode(
            image::DynamicImage::ImageLuma8(dynamic.to_luma8()),
            ImageFormat::Png,
        ),
        encode(dynamic, ImageFormat::Jpeg),
    ]
}

fn run_image(seed: usize, input: &[u8], _: &[Vec<u8>]) -> bool {
    // Both colour modes, chosen by the input so each case stays deterministic.
    let mode = [ColorMode::Rgb, ColorMode::Gray][(seed + input.len()) % 2];
    decode_image_bytes(input, Path::new("<image>"), mode, 4 << 20).is_ok()
}

#[test]
fn fuzz_png_and_jpeg_decoding() {
    fuzz(Target {
        name: "image",
        seeds: image_seeds(),
        // PNG IHDR width and height; the JPEG's SOF is reached by the 16-bit edits.
        fields: vec![16, 20],
        run: run_image,
    });
}

#[test]
fn image_folder_reads_the_seed_images() {
    let root = common::scratch_dir("fuzz-seeds");
    std::fs::create_dir_all(root.join("a")).unwrap();
    for (k, bytes) in image_seeds().iter().enumerate() {
        let ext = ["png", "png", "jpg"][k];
        std::fs::write(root.join("a").join(format!("{k}.{ext}")), bytes).unwrap();
    }
    let folder = sinew_data::ImageFolder::open(&root).unwrap();
    assert_eq!(folder.len(), 3);
    for i in 0..3 {
        assert_eq!(folder.get(i).unwrap().input.tensor_dims(), vec![3, 6, 8]);
    }
}
