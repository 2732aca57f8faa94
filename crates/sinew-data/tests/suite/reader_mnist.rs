//! MNIST IDX reader: round trips on generated gzip and raw files, and every corrupt-file case.

use crate::common;

use std::path::Path;

use sinew_data::mnist::{IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_idx, write_idx};
use sinew_data::{DataError, Dataset, Input, Mnist, Split, Target};

/// Writes 5 images of 3×2 and their labels under the standard training names.
fn write_set(dir: &Path, gzip: bool) -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..5 * 6).map(|i| (i * 8) as u8).collect();
    let labels = vec![3u8, 0, 9, 1, 3];
    let ext = if gzip { ".gz" } else { "" };
    write_idx(
        &dir.join(format!("train-images-idx3-ubyte{ext}")),
        &[5, 3, 2],
        &pixels,
        gzip,
    )
    .unwrap();
    write_idx(
        &dir.join(format!("train-labels-idx1-ubyte{ext}")),
        &[5],
        &labels,
        gzip,
    )
    .unwrap();
    (pixels, labels)
}

#[test]
fn round_trip_gzip_and_raw() {
    for gzip in [true, false] {
        let dir = common::scratch_dir("mnist-rt");
        let (pixels, labels) = write_set(&dir, gzip);
        let ds = Mnist::load(&dir, Split::Train).unwrap();
        assert_eq!(ds.len(), 5);
        assert_eq!((ds.rows(), ds.cols()), (3, 2));
        assert_eq!(ds.images(), &pixels[..]);
        assert_eq!(ds.labels(), &labels[..]);
        let s = ds.get(2).unwrap();
        assert_eq!(s.target, Target::Class(9));
        match s.input {
            Input::U8(img) => {
                assert_eq!((img.height, img.width, img.channels), (3, 2, 1));
                assert_eq!(img.data, pixels[12..18].to_vec());
            }
            other => panic!("expected a u8 image, got {other:?}"),
        }
        assert!(matches!(
            ds.get(5),
            Err(DataError::IndexOutOfRange { index: 5, len: 5 })
        ));
    }
}

/// Raw IDX bytes of `count` 2×2 images with the given magic.
fn idx_bytes(magic: u32, dims: &[u32], payload: usize) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend(std::iter::repeat_n(1u8, payload));
    b
}

fn assert_names(err: &DataError, path: &Path) {
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

#[test]
fn wrong_magic_is_reported_with_the_file() {
    let dir = common::scratch_dir("mnist-magic");
    let path = dir.join("images");
    std::fs::write(&path, idx_bytes(0x0000_0801, &[4], 4)).unwrap();
    let err = read_idx(&path, IDX_IMAGES_MAGIC).unwrap_err();
    assert!(matches!(
        err,
        DataError::BadMagic {
            expected: 0x803,
            found: 0x801,
            ..
        }
    ));
    assert_names(&err, &path);
    assert!(err.to_string().contains("wrong magic number"));
}

#[test]
fn truncated_header_and_data() {
    let dir = common::scratch_dir("mnist-trunc");
    let path = dir.join("images");
    std::fs::write(&path, [0u8, 0, 8]).unwrap();
    let err = read_idx(&path, IDX_IMAGES_MAGIC).unwrap_err();
    assert!(matches!(
        err,
        DataError::Truncated {
            expected: 4,
            found: 3,
            ..
        }
    ));
    std::fs::write(&path, &idx_bytes(IDX_IMAGES_MAGIC, &[3, 2, 2], 0)[..10]).unwrap();
    let err = read_idx(&path, IDX_IMAGES_MAGIC).unwrap_err();
    assert!(matches!(
        err,
        DataError::Truncated {
            expected: 16,
            found: 10,
            ..
        }
    ));
    std::fs::write(&path, idx_bytes(IDX_IMAGES_MAGIC, &[3, 2, 2], 11)).unwrap();
    let err = read_idx(&path, IDX_IMAGES_MAGIC).unwrap_err();
    assert!(matches!(
        err,
        DataError::Truncated {
            expected: 28,
            found: 27,
            ..
        }
    ));
    assert_names(&err, &path);
}

#[test]
fn trailing_bytes_are_a_size_mismatch() {
    let dir = common::scratch_dir("mnist-trailing");
    let path = dir.join("labels");
    std::fs::write(&path, idx_bytes(IDX_LABELS_MAGIC, &[3], 5)).unwrap();
    let err = read_idx(&path, IDX_LABELS_MAGIC).unwrap_err();
    assert!(matches!(err, DataError::SizeMismatch { .. }));
    assert!(err.to_string().contains("2 trailing"), "{err}");
}

#[test]
fn label_count_mismatch_names_both_files() {
    let dir = common::scratch_dir("mnist-count");
    let images = dir.join("i.idx");
    let labels = dir.join("l.idx");
    write_idx(&images, &[4, 2, 2], &[0; 16], false).unwrap();
    write_idx(&labels, &[3], &[0, 1, 2], true).unwrap();
    let err = Mnist::from_files(&images, &labels).unwrap_err();
    assert!(matches!(err, DataError::SizeMismatch { .. }));
    assert_names(&err, &labels);
    assert_names(&err, &images);
}

#[test]
fn bad_label_is_reported_with_its_index() {
    let dir = common::scratch_dir("mnist-label");
    let images = dir.join("i.idx");
    let labels = dir.join("l.idx");
    write_idx(&images, &[3, 1, 1], &[0; 3], false).unwrap();
    write_idx(&labels, &[3], &[1, 2, 10], false).unwrap();
    let err = Mnist::from_files(&images, &labels).unwrap_err();
    match &err {
        DataError::BadLabel { index, label, .. } => {
            assert_eq!((*index, label.as_str()), (2, "10"));
        }
        other => panic!("expected BadLabel, got {other:?}"),
    }
    assert_names(&err, &labels);
}

#[test]
fn corrupt_gzip_and_missing_file() {
    let dir = common::scratch_dir("mnist-gzip");
    let path = dir.join("images.gz");
    write_idx(&path, &[2, 2, 2], &[7; 8], true).unwrap();
    let full = std::fs::read(&path).unwrap();
    std::fs::write(&path, &full[..full.len() - 12]).unwrap();
    let err = read_idx(&path, IDX_IMAGES_MAGIC).unwrap_err();
    assert!(matches!(err, DataError::Format { .. }), "{err:?}");
    assert!(err.to_string().contains("gzip"));
    assert_names(&err, &path);
    let missing = dir.join("nope");
    let err = read_idx(&missing, IDX_IMAGES_MAGIC).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }));
    assert_names(&err, &missing);
}
