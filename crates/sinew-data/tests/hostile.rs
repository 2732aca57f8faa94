//! Hostile input: every case here once panicked, aborted, hung or was silently accepted. Each
//! now gives a clear error (whose text is checked), in debug and release builds alike.

mod common;

use std::sync::Arc;

use sinew_data::transforms::functional::{crop, erase, resized_crop};
use sinew_data::transforms::{
    CenterCrop, ColorJitter, Normalize, RandomAffine, RandomCrop, RandomResizedCrop, Resize,
    ToTensor, Transform,
};
use sinew_data::{
    Cifar, CifarLabels, DataError, DataLoader, Dataset, ImageF32, ImageFolder, ImageU8, Input,
    LoaderConfig, Mnist, Sample, ScaleAxis, Statistics, VecDataset, collate, random_split,
};

/// The error's message, failing the test if `result` is `Ok`.
fn err_text<T: std::fmt::Debug>(result: Result<T, DataError>) -> String {
    result.expect_err("expected an error").to_string()
}

fn assert_contains(text: &str, wanted: &str) {
    assert!(text.contains(wanted), "{text:?} lacks {wanted:?}");
}

fn gray_sample(h: usize, w: usize) -> Sample {
    Sample::image_u8(ImageU8::new(h, w, 1, vec![7; h * w]).unwrap(), 1)
}

fn apply(t: &dyn Transform, sample: Sample) -> Result<Sample, DataError> {
    t.apply(sample, &mut sinew_data::rng::sample_rng(1, 0, 0))
}

#[test]
fn image_sizes_that_overflow_are_errors() {
    let text = err_text(ImageU8::new(usize::MAX, 2, 3, vec![]));
    assert_contains(
        &text,
        "ImageU8::new: size [18446744073709551615, 2, 3] overflows usize",
    );
    let text = err_text(ImageF32::new(3, usize::MAX / 2, 3, vec![]));
    assert_contains(&text, "overflows usize");
    let text = err_text(ImageF32::filled(1, 1 << 40, 1 << 40, 0.0));
    assert_contains(&text, "overflows usize");
    // A consistent small image still works.
    assert_eq!(
        ImageU8::new(2, 2, 1, vec![1, 2, 3, 4]).unwrap().at(1, 1, 0),
        Some(4)
    );
}

#[test]
fn huge_resize_and_crop_outputs_are_size_errors() {
    let img = apply(&ToTensor, gray_sample(4, 4)).unwrap();
    let huge = Resize {
        height: 100_000,
        width: 100_000,
    };
    let text = err_text(apply(&huge, img.clone()));
    assert_contains(
        &text,
        "ImageF32::filled: 10000000000 elements of 4 bytes exceed",
    );
    let overflow = Resize {
        height: usize::MAX / 2,
        width: 3,
    };
    assert_contains(&err_text(apply(&overflow, img.clone())), "overflows usize");
    let centre = CenterCrop {
        height: 1 << 20,
        width: 1 << 20,
    };
    assert_contains(&err_text(apply(&centre, img.clone())), "buffer limit");
    let rrc = RandomResizedCrop::new(1 << 20, 1 << 20);
    assert_contains(&err_text(apply(&rrc, img.clone())), "buffer limit");
    let padded = RandomCrop::new(2, 2, usize::MAX / 2);
    assert_contains(
        &err_text(apply(&padded, img.clone())),
        "RandomCrop: padding",
    );
    let wide = RandomCrop::new(1 << 20, 1 << 20, 1 << 19);
    assert_contains(&err_text(apply(&wide, img)), "buffer limit");
}

#[test]
fn functional_windows_outside_the_image_are_errors() {
    let img = ImageF32::filled(1, 3, 3, 0.5).unwrap();
    let text = err_text(resized_crop(&img, 2, 2, 5, 5, 4, 4));
    assert_contains(
        &text,
        "window 5x5 at (2, 2) is empty or outside the 3x3 image",
    );
    let mut m = img.clone();
    let text = err_text(erase(&mut m, 2, 0, 2, 1, |_, _| 0.0));
    assert_contains(&text, "rectangle 2x1 at (2, 0) is outside the 3x3 image");
    // Far-away windows are all fill, without overflow.
    let far = crop(&img, isize::MIN, isize::MAX, 2, 2, 9.0).unwrap();
    assert_eq!(far.data, vec![9.0; 4]);
}

#[test]
fn inconsistent_public_fields_are_errors_not_panics() {
    let liar = ImageU8 {
        height: 1000,
        width: 1000,
        channels: 3,
        data: vec![0; 5],
    };
    let text = err_text(collate(&[Sample::image_u8(liar.clone(), 0)], vec![0]));
    assert_contains(&text, "ImageU8: 5 bytes for a 1000x1000x3 image");
    assert_contains(
        &err_text(apply(&ToTensor, Sample::image_u8(liar, 0))),
        "5 bytes",
    );
    let liar = ImageF32 {
        channels: 2,
        height: 4,
        width: 4,
        data: vec![0.0; 3],
    };
    let sample = Sample::image_f32(liar.clone(), 0);
    let text = err_text(apply(
        &Resize {
            height: 2,
            width: 2,
        },
        sample,
    ));
    assert_contains(&text, "ImageF32: 3 values for a 2x4x4 image");
    assert_eq!(liar.plane(1), None);
    assert_eq!(liar.at(1, 3, 3), None);
    assert!(Input::F32(liar).to_f32_vec().is_err());
}

#[test]
fn loader_configs_that_would_hang_or_overflow_are_rejected() {
    let ds = Arc::new(VecDataset::new(vec![gray_sample(2, 2); 10]));
    let with = |f: &dyn Fn(&mut LoaderConfig)| {
        let mut config = LoaderConfig::default();
        f(&mut config);
        DataLoader::new(ds.clone(), config).map(|_| ())
    };
    let text = err_text(with(&|c| {
        c.num_workers = 2;
        c.prefetch = usize::MAX;
    }));
    assert_contains(
        &text,
        "LoaderConfig: num_workers 2 x prefetch 18446744073709551615 overflows",
    );
    let text = err_text(with(&|c| c.batch_size = 0));
    assert_contains(&text, "LoaderConfig: batch_size must be positive, got 0");
    let text = err_text(with(&|c| c.prefetch = 0));
    assert_contains(&text, "prefetch must be positive with 2 workers");
    let text = err_text(with(&|c| c.num_workers = usize::MAX));
    assert_contains(&text, "exceeds the limit of 1024 threads");
    // The largest accepted window does not wrap: one worker, prefetch usize::MAX, all batches.
    let config = LoaderConfig {
        batch_size: 3,
        num_workers: 1,
        prefetch: usize::MAX,
        ..Default::default()
    };
    let loader = DataLoader::new(ds, config).unwrap();
    let sizes: Vec<usize> = loader.epoch(0).map(|b| b.unwrap().len()).collect();
    assert_eq!(sizes, vec![3, 3, 3, 1]);
}

/// A dataset whose `get` panics at one index, with a message naming it.
struct Exploding;

impl Dataset for Exploding {
    type Item = Sample;
    fn len(&self) -> usize {
        8
    }
    fn get(&self, index: usize) -> sinew_data::Result<Sample> {
        if index == 5 {
            panic!("sample {index} is cursed");
        }
        Ok(gray_sample(2, 2))
    }
}

#[test]
fn a_panicking_worker_gives_an_error_with_the_panic_message() {
    for workers in [0, 2] {
        let config = LoaderConfig {
            batch_size: 2,
            num_workers: workers,
            ..Default::default()
        };
        let loader = DataLoader::new(Arc::new(Exploding), config).unwrap();
        let results: Vec<_> = loader.epoch(0).collect();
        assert_eq!(results.len(), 4);
        assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
        let text = results[2].as_ref().unwrap_err().to_string();
        assert_contains(&text, "building batch 2 panicked: sample 5 is cursed");
    }
}

#[test]
fn normalize_rejects_bad_statistics() {
    let cases: [(&[f32], &[f32], &str); 6] = [
        (
            &[0.5],
            &[f32::NAN],
            "std[0] = NaN must be finite and positive",
        ),
        (
            &[0.5, 0.5],
            &[0.2, 0.0],
            "std[1] = 0 must be finite and positive",
        ),
        (&[0.5], &[-0.2], "std[0] = -0.2 must be finite and positive"),
        (
            &[0.5],
            &[f32::INFINITY],
            "std[0] = inf must be finite and positive",
        ),
        (&[0.5], &[1e-45], "must be finite and positive"),
        (&[f32::NAN], &[0.2], "mean[0] = NaN is not finite"),
    ];
    for (mean, std, wanted) in cases {
        assert_contains(&err_text(Normalize::new(mean, std)), wanted);
    }
    assert!(Normalize::new(&[0.5], &[0.25]).is_ok());
}

#[test]
fn other_augmentations_reject_non_finite_parameters() {
    let img = apply(&ToTensor, gray_sample(4, 4)).unwrap();
    let jitter = ColorJitter::new(f32::NAN, 0.0, 0.0, 0.0);
    assert_contains(
        &err_text(apply(&jitter, img.clone())),
        "ColorJitter: strengths [NaN",
    );
    let mut affine = RandomAffine::rotation(10.0);
    affine.degrees = (f32::NEG_INFINITY, f32::INFINITY);
    assert_contains(&err_text(apply(&affine, img)), "RandomAffine: bad ranges");
}

#[test]
fn image_folder_with_empty_classes_is_an_error_naming_them() {
    let root = common::scratch_dir("hostile-empty-classes");
    for class in ["cat", "dog"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
    }
    std::fs::write(root.join("dog").join("notes.txt"), "not an image").unwrap();
    let text = err_text(ImageFolder::open(&root));
    assert_contains(&text, &root.display().to_string());
    assert_contains(
        &text,
        "Found no valid file for the classes cat, dog. Supported extensions are: .png, .jpg, .jpeg",
    );
}

#[test]
fn tiny_gzip_files_are_errors_not_panics() {
    let dir = common::scratch_dir("hostile-tiny-gz");
    for bytes in [&[0x1f, 0x8b][..], &[0x1f, 0x8b, 0x08][..]] {
        std::fs::write(dir.join("train-images-idx3-ubyte.gz"), bytes).unwrap();
        std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), bytes).unwrap();
        let text = err_text(Mnist::load(&dir, sinew_data::Split::Train));
        assert_contains(
            &text,
            "train-images-idx3-ubyte.gz: corrupt or truncated gzip stream",
        );
        assert_contains(
            &err_text(Mnist::from_bytes(bytes, bytes)),
            "<images>: corrupt",
        );
    }
}

#[test]
fn indexed_accessors_past_the_end_are_none_or_errors() {
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
    images.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let labels = [0, 0, 8, 1, 0, 0, 0, 2, 3, 9];
    let mnist = Mnist::from_bytes(&images, &labels).unwrap();
    assert_eq!(mnist.image(1), Some(&[5u8, 6, 7, 8][..]));
    assert_eq!(mnist.image(2), None);
    assert_eq!(mnist.image(usize::MAX), None);
    let text = err_text(mnist.get(2));
    assert_eq!(text, "index 2 out of range for a dataset of length 2");
    let mut record = vec![4u8];
    record.extend(std::iter::repeat_n(9, sinew_data::cifar::CIFAR_PIXELS));
    let cifar = Cifar::from_bytes(&record, CifarLabels::Cifar10).unwrap();
    assert_eq!(cifar.image(0).map(|p| p[0]), Some(9));
    assert_eq!(cifar.image(1), None);
    assert_eq!(cifar.image(usize::MAX), None);
    assert_contains(&err_text(cifar.get(1)), "index 1 out of range");
}

#[test]
fn split_lengths_and_statistics_edge_cases_are_errors() {
    let ds = Arc::new(VecDataset::new(vec![gray_sample(1, 1); 3]));
    let text = err_text(random_split(ds, &[usize::MAX, 4], 0));
    assert_contains(&text, "random_split: lengths");
    let empty = VecDataset::new(vec![Sample::image_u8(
        ImageU8::new(2, 2, 0, vec![]).unwrap(),
        0,
    )]);
    let text = err_text(Statistics::compute(&empty, ScaleAxis::Channel));
    assert_contains(&text, "have no values");
}

#[test]
fn data_errors_convert_into_tensor_errors_with_their_message() {
    fn load() -> sinew_tensor::Result<()> {
        Normalize::new(&[0.5], &[0.0])?;
        Ok(())
    }
    let err = load().unwrap_err();
    assert!(matches!(
        err,
        sinew_tensor::Error::External {
            context: "data",
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "data: Normalize: std[0] = 0 must be finite and positive"
    );
    // Tensor errors wrapped in a DataError come back out unchanged.
    let inner = sinew_tensor::Error::invalid("op", "bad");
    let back: sinew_tensor::Error = DataError::Tensor(inner.clone()).into();
    assert_eq!(back, inner);
}
