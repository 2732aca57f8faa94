//! Augmentation properties: involutions, identities at zero strength, shapes and bounds kept.

use proptest::prelude::*;
use sinew_data::rng::{DataRng, sample_rng};
use sinew_data::transforms::functional::{hflip, vflip};
use sinew_data::transforms::{
    CenterCrop, ColorJitter, Compose, EraseValue, Normalize, RandomAffine, RandomApply, RandomCrop,
    RandomErasing, RandomHorizontalFlip, RandomResizedCrop, RandomRotation, RandomVerticalFlip,
    Resize, ToTensor, Transform, apply_batch,
};
use sinew_data::{ImageF32, ImageU8, Input, Sample};

fn image(c: usize, h: usize, w: usize, seed: u64) -> ImageF32 {
    let data = (0..c * h * w)
        .map(|i| {
            ((i as u64)
                .wrapping_mul(2654435761)
                .wrapping_add(seed.wrapping_mul(97))
                % 1000) as f32
                / 999.0
        })
        .collect();
    ImageF32::new(c, h, w, data).unwrap()
}

fn run(t: &dyn Transform, img: &ImageF32, rng: &mut DataRng) -> ImageF32 {
    match t
        .apply(Sample::image_f32(img.clone(), 0), rng)
        .unwrap()
        .input
    {
        Input::F32(out) => out,
        other => panic!("expected f32 image, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn flips_twice_are_the_identity(c in 1usize..4, h in 1usize..9, w in 1usize..9, seed: u64) {
        let img = image(c, h, w, seed);
        let mut x = img.clone();
        hflip(&mut x).unwrap();
        hflip(&mut x).unwrap();
        prop_assert_eq!(&x, &img);
        vflip(&mut x).unwrap();
        prop_assert_eq!(x.at(c - 1, 0, w - 1), img.at(c - 1, h - 1, w - 1));
        vflip(&mut x).unwrap();
        prop_assert_eq!(&x, &img);
    }

    #[test]
    fn random_crop_keeps_shape_and_takes_values_from_image_or_fill(
        h in 2usize..12, w in 2usize..12, pad in 0usize..5, seed: u64,
    ) {
        let img = image(3, h, w, seed);
        let t = RandomCrop { fill: -1.0, ..RandomCrop::new(h, w, pad) };
        let out = run(&t, &img, &mut sample_rng(seed, 0, 0));
        prop_assert_eq!((out.channels, out.height, out.width), (3, h, w));
        prop_assert!(out.data.iter().all(|v| *v == -1.0 || img.data.contains(v)));
    }

    #[test]
    fn resized_crop_hits_the_size_and_stays_within_input_range(
        h in 4usize..20, w in 4usize..20, oh in 1usize..16, ow in 1usize..16, seed: u64,
    ) {
        let img = image(2, h, w, seed);
        let t = RandomResizedCrop::new(oh, ow);
        let mut rng = sample_rng(seed, 1, 0);
        let (top, left, ch, cw) = t.window(h, w, &mut rng);
        prop_assert!(top + ch <= h && left + cw <= w && ch > 0 && cw > 0);
        let out = run(&t, &img, &mut rng);
        prop_assert_eq!((out.channels, out.height, out.width), (2, oh, ow));
        let (lo, hi) = img.data.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        prop_assert!(out.data.iter().all(|&v| v >= lo - 1e-6 && v <= hi + 1e-6));
    }

    #[test]
    fn color_jitter_stays_in_unit_range(seed: u64, b in 0.0f32..2.0, c in 0.0f32..2.0,
                                        s in 0.0f32..2.0, hue in 0.0f32..0.5) {
        let img = image(3, 5, 4, seed);
        let out = run(&ColorJitter::new(b, c, s, hue), &img, &mut sample_rng(seed, 0, 3));
        prop_assert!(out.data.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }
}

#[test]
fn zero_strength_jitter_and_zero_rotation_are_identities() {
    let img = image(3, 7, 5, 1);
    for k in 0..20 {
        let mut rng = sample_rng(5, 0, k);
        assert_eq!(
            run(&ColorJitter::new(0.0, 0.0, 0.0, 0.0), &img, &mut rng),
            img
        );
        assert_eq!(run(&RandomRotation::new(0.0), &img, &mut rng), img);
        let still = RandomAffine::rotation(0.0);
        assert_eq!(run(&still, &img, &mut rng), img);
    }
    // A real rotation changes the image and fills the corners.
    let rot = RandomRotation {
        degrees: (45.0, 45.0),
        fill: 7.0,
        p: 1.0,
    };
    let img = image(3, 8, 8, 4);
    let out = run(&rot, &img, &mut sample_rng(0, 0, 0));
    // The corner of a square turned by 45 degrees comes from well outside the image.
    assert_eq!(out.at(0, 0, 0), Some(7.0));
    // Output pixel (3, 3) samples the source at x = 3.5, y = 3.5 - 0.5 * sqrt(2): bilinear.
    let sy = 3.5 - 0.5 * std::f32::consts::SQRT_2;
    let ly = sy - 2.0;
    let want = |c| {
        let top = 0.5 * (img.at(c, 2, 3).unwrap() + img.at(c, 2, 4).unwrap());
        let bottom = 0.5 * (img.at(c, 3, 3).unwrap() + img.at(c, 3, 4).unwrap());
        top * (1.0 - ly) + bottom * ly
    };
    assert!(
        (out.at(1, 3, 3).unwrap() - want(1)).abs() < 1e-5,
        "{:?} vs {}",
        out.at(1, 3, 3),
        want(1)
    );
    assert_ne!(out, img);
}

#[test]
fn probabilities_zero_and_one() {
    let img = image(1, 4, 6, 2);
    let mut flipped = img.clone();
    hflip(&mut flipped).unwrap();
    let mut rng = sample_rng(1, 1, 1);
    assert_eq!(
        run(&RandomHorizontalFlip { p: 1.0 }, &img, &mut rng),
        flipped
    );
    assert_eq!(run(&RandomHorizontalFlip { p: 0.0 }, &img, &mut rng), img);
    assert_eq!(run(&RandomVerticalFlip { p: 0.0 }, &img, &mut rng), img);
    assert_eq!(
        run(
            &RandomErasing {
                p: 0.0,
                ..Default::default()
            },
            &img,
            &mut rng
        ),
        img
    );
    let skipped = RandomApply {
        transform: RandomHorizontalFlip { p: 1.0 },
        p: 0.0,
    };
    assert_eq!(run(&skipped, &img, &mut rng), img);
    // Not applied, a same-size crop is the centre window: the identity.
    assert_eq!(
        run(
            &RandomCrop {
                p: 0.0,
                ..RandomCrop::new(4, 6, 3)
            },
            &img,
            &mut rng
        ),
        img
    );
    let bad = RandomHorizontalFlip { p: 1.5 };
    assert!(bad.apply(Sample::image_f32(img, 0), &mut rng).is_err());
    // Flipping about half the time.
    let flips = (0..400)
        .filter(|&k| {
            let x = image(1, 1, 2, 0);
            run(
                &RandomHorizontalFlip::default(),
                &x,
                &mut sample_rng(3, 0, k),
            ) != x
        })
        .count();
    assert!((150..250).contains(&flips), "{flips}");
}

#[test]
fn random_erasing_erases_a_rectangle_of_bounded_area() {
    let img = ImageF32::filled(3, 20, 20, 0.5).unwrap();
    let t = RandomErasing {
        p: 1.0,
        value: EraseValue::PerChannel(vec![1.0, 2.0, 3.0]),
        ..Default::default()
    };
    let mut erased_some = 0;
    for k in 0..50 {
        let out = run(&t, &img, &mut sample_rng(9, 0, k));
        let count = out.plane(0).unwrap().iter().filter(|&&v| v == 1.0).count();
        assert_eq!(
            count,
            out.plane(2).unwrap().iter().filter(|&&v| v == 3.0).count()
        );
        if count > 0 {
            erased_some += 1;
            let frac = count as f32 / 400.0;
            assert!((0.015..=0.36).contains(&frac), "{frac}");
        }
    }
    assert!(erased_some > 40);
    let random = RandomErasing {
        p: 1.0,
        value: EraseValue::Random,
        ..Default::default()
    };
    let out = run(&random, &img, &mut sample_rng(1, 0, 0));
    assert!(out.data.iter().any(|&v| v != 0.5));
}

#[test]
fn to_tensor_normalize_resize_center_crop() {
    let u8img = ImageU8::new(1, 2, 3, vec![0, 51, 255, 10, 20, 30]).unwrap();
    let mut rng = sample_rng(0, 0, 0);
    let t = Compose::new()
        .then(ToTensor)
        .then(Normalize::new(&[0.5, 0.0, 0.2], &[0.5, 1.0, 0.1]).unwrap());
    let out = t.apply(Sample::image_u8(u8img, 4), &mut rng).unwrap();
    let Input::F32(img) = out.input else {
        panic!("expected f32")
    };
    assert_eq!((img.channels, img.height, img.width), (3, 1, 2));
    // Channel 0 holds bytes 0 and 10, channel 1 bytes 51 and 20, channel 2 bytes 255 and 30.
    let want = [
        (0.0 - 0.5) / 0.5,
        (10.0 / 255.0 - 0.5) / 0.5,
        0.2,
        20.0 / 255.0,
        (1.0 - 0.2) / 0.1,
        (30.0 / 255.0 - 0.2) / 0.1,
    ];
    for (g, w) in img.data.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{g} vs {w}");
    }
    assert!(Normalize::new(&[0.0], &[0.0]).is_err());
    let mismatched = Normalize::new(&[0.0, 0.0], &[1.0, 1.0]).unwrap();
    assert!(
        mismatched
            .apply(Sample::image_f32(img.clone(), 0), &mut rng)
            .is_err()
    );
    let big = image(2, 6, 8, 3);
    let r = run(
        &Resize {
            height: 3,
            width: 4,
        },
        &big,
        &mut rng,
    );
    assert_eq!((r.height, r.width), (3, 4));
    let cc = run(
        &CenterCrop {
            height: 2,
            width: 4,
        },
        &big,
        &mut rng,
    );
    assert_eq!(cc.at(1, 0, 0), big.at(1, 2, 2));
    // Augmentations refuse u8 images with a hint.
    let raw = Sample::image_u8(ImageU8::new(2, 2, 1, vec![0; 4]).unwrap(), 0);
    let err = RandomHorizontalFlip::default()
        .apply(raw, &mut rng)
        .unwrap_err();
    assert!(err.to_string().contains("ToTensor"));
}

#[test]
fn batch_application_matches_one_by_one() {
    let samples: Vec<Sample> = (0..16)
        .map(|k| Sample::image_f32(image(3, 8, 8, k), 0))
        .collect();
    let t = Compose::new()
        .then(RandomResizedCrop::new(6, 6))
        .then(RandomAffine {
            translate: (0.2, 0.2),
            scale: (0.9, 1.1),
            ..RandomAffine::rotation(30.0)
        })
        .then(ColorJitter::new(0.3, 0.3, 0.3, 0.05));
    let batch = apply_batch(&t, samples.clone(), 11, 2, 100).unwrap();
    for (k, s) in samples.into_iter().enumerate() {
        let one = t.apply(s, &mut sample_rng(11, 2, 100 + k as u64)).unwrap();
        assert_eq!(one, batch[k]);
    }
}

/// Resizing and the colour adjustments against torchvision 0.29 (`torchvision.transforms.v2.
/// functional` on tensors): `x = (torch.arange(12.) / 11).reshape(1, 3, 4)`,
/// `y = torch.stack([x[0], x[0].flip(1), 1 - x[0]])`.
#[test]
fn resize_and_colour_adjustments_match_torchvision() {
    use sinew_data::transforms::functional::{
        adjust_contrast, adjust_hue, adjust_saturation, resize,
    };
    let ramp: Vec<f32> = (0..12).map(|v| v as f32 / 11.0).collect();
    let x = ImageF32::new(1, 3, 4, ramp.clone()).unwrap();
    let close = |got: &[f32], want: &[f64], what: &str| {
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                (f64::from(*g) - w).abs() < 2e-6,
                "{what}: {got:?} vs {want:?}"
            );
        }
    };
    // F.resize(x, [2, 3], antialias=False)
    let want = [
        0.1060606, 0.2272727, 0.3484849, 0.6515152, 0.7727273, 0.8939394,
    ];
    close(&resize(&x, 2, 3).unwrap().data, &want, "resize 2x3");
    // F.resize(x, [5, 6], antialias=False)[0, 1]: the second of the five rows
    let row1 = [
        0.1454546, 0.1909091, 0.2515152, 0.3121212, 0.3727273, 0.4181818,
    ];
    close(&resize(&x, 5, 6).unwrap().data[6..12], &row1, "resize 5x6");
    let mut flipped = Vec::new();
    for r in ramp.chunks(4) {
        flipped.extend(r.iter().rev());
    }
    let inverse: Vec<f32> = ramp.iter().map(|v| 1.0 - v).collect();
    let y = ImageF32::new(3, 3, 4, [ramp, flipped, inverse].concat()).unwrap();
    let adjusted = |f: &dyn Fn(&mut ImageF32)| {
        let mut img = y.clone();
        f(&mut img);
        img.data[..12].to_vec()
    };
    // F.adjust_hue(y, 0.2)[0]
    let hue = [
        0.9272733, 0.9090909, 0.8181818, 0.7272727, 0.4181818, 0.4727272, 0.5272727, 0.5818182,
        0.2727273, 0.1818182, 0.0909091, 0.0727273,
    ];
    close(&adjusted(&|i| adjust_hue(i, 0.2).unwrap()), &hue, "hue");
    // F.adjust_saturation(y, 1.7)[0]
    let saturation = [
        0.0, 0.0, 0.1684036, 0.3485373, 0.2298345, 0.4099682, 0.5901018, 0.7702355, 0.6515327,
        0.8316664, 1.0, 1.0,
    ];
    close(
        &adjusted(&|i| adjust_saturation(i, 1.7).unwrap()),
        &saturation,
        "saturation",
    );
    // F.adjust_contrast(y, 0.6)[0]
    let contrast = [
        0.1999800, 0.2545255, 0.3090709, 0.3636164, 0.4181618, 0.4727073, 0.5272527, 0.5817982,
        0.6363437, 0.6908891, 0.7454346, 0.7999800,
    ];
    close(
        &adjusted(&|i| adjust_contrast(i, 0.6).unwrap()),
        &contrast,
        "contrast",
    );
}
