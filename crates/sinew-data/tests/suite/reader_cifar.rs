//! CIFAR-10/100 binary reader: generated batches, planar-to-HWC conversion, corrupt files.

use crate::common;

use std::path::Path;

use sinew_data::cifar::CIFAR_PIXELS;
use sinew_data::{Cifar, CifarLabels, DataError, Dataset, Input, Split, Target};

/// A record: label bytes then planes R = 10 + k, G = 100 + k, B = 200 (k = pixel mod 50).
fn record(labels: &[u8]) -> Vec<u8> {
    let mut r = labels.to_vec();
    for plane in 0..3 {
        for k in 0..1024 {
            r.push(match plane {
                0 => 10 + (k % 50) as u8,
                1 => 100 + (k % 50) as u8,
                _ => 200,
            });
        }
    }
    r
}

fn write_records(path: &Path, labels: &[&[u8]]) {
    let bytes: Vec<u8> = labels.iter().flat_map(|l| record(l)).collect();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn cifar10_round_trip_converts_planes_to_hwc() {
    let dir = common::scratch_dir("cifar10");
    for i in 1..=5u8 {
        write_records(&dir.join(format!("data_batch_{i}.bin")), &[&[i], &[9]]);
    }
    write_records(&dir.join("test_batch.bin"), &[&[0]]);
    std::fs::write(dir.join("batches.meta.txt"), "airplane\nautomobile\n\n").unwrap();
    let train = Cifar::cifar10(&dir, Split::Train).unwrap();
    assert_eq!(train.len(), 10);
    assert_eq!(train.labels(), &[1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
    assert_eq!(train.class_names(), &["airplane", "automobile"]);
    let s = train.get(4).unwrap();
    assert_eq!(s.target, Target::Class(3));
    let Input::U8(img) = s.input else {
        panic!("expected u8 image")
    };
    assert_eq!((img.height, img.width, img.channels), (32, 32, 3));
    // Pixel (y=1, x=3) is plane index 35: R = 10 + 35, G = 135, B = 200.
    assert_eq!(
        [img.at(1, 3, 0), img.at(1, 3, 1), img.at(1, 3, 2)].map(Option::unwrap),
        [45, 135, 200]
    );
    assert_eq!(train.image(0).unwrap().len(), CIFAR_PIXELS);
    let test = Cifar::cifar10(&dir, Split::Test).unwrap();
    assert_eq!(test.len(), 1);
}

#[test]
fn cifar100_coarse_and_fine() {
    let dir = common::scratch_dir("cifar100");
    write_records(&dir.join("train.bin"), &[&[3, 99], &[19, 0]]);
    let fine = Cifar::cifar100(&dir, Split::Train, CifarLabels::Cifar100Fine).unwrap();
    let coarse = Cifar::cifar100(&dir, Split::Train, CifarLabels::Cifar100Coarse).unwrap();
    assert_eq!(fine.labels(), &[99, 0]);
    assert_eq!(coarse.labels(), &[3, 19]);
    assert_eq!(fine.coarse_labels(), &[3, 19]);
    assert_eq!(coarse.get(1).unwrap().target, Target::Class(19));
    assert_eq!(fine.get(0).unwrap().target, Target::Class(99));
    let Input::U8(img) = fine.get(0).unwrap().input else {
        panic!("expected u8 image")
    };
    assert_eq!(
        [img.at(0, 0, 0), img.at(0, 0, 1), img.at(0, 0, 2)].map(Option::unwrap),
        [10, 100, 200]
    );
    assert!(Cifar::cifar100(&dir, Split::Train, CifarLabels::Cifar10).is_err());
}

#[test]
fn truncated_batch() {
    let dir = common::scratch_dir("cifar-trunc");
    let path = dir.join("b.bin");
    let mut bytes = record(&[1]);
    bytes.extend_from_slice(&record(&[2])[..100]);
    std::fs::write(&path, bytes).unwrap();
    let err = Cifar::from_files(&[&path], CifarLabels::Cifar10).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 6146,
                found: 3173,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&path.display().to_string()));
    std::fs::write(&path, []).unwrap();
    let err = Cifar::from_files(&[&path], CifarLabels::Cifar10).unwrap_err();
    assert!(matches!(err, DataError::Format { .. }));
}

#[test]
fn bad_labels() {
    let dir = common::scratch_dir("cifar-label");
    let path = dir.join("b.bin");
    write_records(&path, &[&[1], &[10]]);
    let err = Cifar::from_files(&[&path], CifarLabels::Cifar10).unwrap_err();
    assert!(
        matches!(err, DataError::BadLabel { index: 1, .. }),
        "{err:?}"
    );
    write_records(&path, &[&[20, 5]]);
    let err = Cifar::from_files(&[&path], CifarLabels::Cifar100Fine).unwrap_err();
    assert!(matches!(err, DataError::BadLabel { index: 0, .. }));
    assert!(err.to_string().contains("0..20"), "{err}");
    write_records(&path, &[&[2, 100]]);
    let err = Cifar::from_files(&[&path], CifarLabels::Cifar100Coarse).unwrap_err();
    assert!(err.to_string().contains("0..100"), "{err}");
    let missing = dir.join("missing.bin");
    assert!(matches!(
        Cifar::from_files(&[&missing], CifarLabels::Cifar10),
        Err(DataError::Io { .. })
    ));
}
