//! Image folder reader on PNG and JPEG files the test writes, and on a corrupt file.

use crate::common;

use sinew_data::{ColorMode, DataError, Dataset, ImageFolder, Input, Target};

#[test]
fn classes_labels_and_pixels() {
    let root = common::scratch_dir("folder");
    for class in ["cat", "dog"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
    }
    // A 3×2 PNG whose pixel (x, y) is (10x, 20y, 7).
    let png = image::RgbImage::from_fn(3, 2, |x, y| image::Rgb([10 * x as u8, 20 * y as u8, 7]));
    png.save(root.join("dog/b.png")).unwrap();
    png.save(root.join("cat/a.PNG")).unwrap();
    let flat = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 100, 50]));
    flat.save(root.join("dog/a.jpg")).unwrap();
    std::fs::write(root.join("dog/notes.txt"), "not an image").unwrap();

    let ds = ImageFolder::open(&root).unwrap();
    assert_eq!(ds.classes(), &["cat", "dog"]);
    assert_eq!(ds.len(), 3);
    let labels: Vec<i64> = ds.files().iter().map(|(_, l)| *l).collect();
    assert_eq!(labels, vec![0, 1, 1]);
    let s = ds.get(2).unwrap();
    assert_eq!(s.target, Target::Class(1));
    let Input::U8(img) = s.input else {
        panic!("expected u8 image")
    };
    assert_eq!((img.height, img.width, img.channels), (2, 3, 3));
    assert_eq!(
        [img.at(1, 2, 0), img.at(1, 2, 1), img.at(1, 2, 2)].map(Option::unwrap),
        [20, 20, 7]
    );
    // JPEG is lossy: a flat colour comes back within a few levels.
    let Input::U8(jpg) = ds.get(1).unwrap().input else {
        panic!("expected u8 image")
    };
    assert_eq!((jpg.height, jpg.width), (8, 8));
    for (got, want) in jpg
        .data
        .chunks(3)
        .next()
        .unwrap()
        .iter()
        .zip([200, 100, 50])
    {
        assert!((i32::from(*got) - want).abs() <= 3, "{got} vs {want}");
    }
    let gray = ImageFolder::open_with(&root, ColorMode::Gray).unwrap();
    let Input::U8(g) = gray.get(0).unwrap().input else {
        panic!("expected u8 image")
    };
    assert_eq!(g.channels, 1);
}

#[test]
fn corrupt_image_and_empty_root() {
    let root = common::scratch_dir("folder-bad");
    std::fs::create_dir_all(root.join("x")).unwrap();
    std::fs::write(root.join("x/broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let ds = ImageFolder::open(&root).unwrap();
    let err = ds.get(0).unwrap_err();
    assert!(matches!(err, DataError::Format { .. }));
    assert!(err.to_string().contains("broken.png"), "{err}");
    let empty = common::scratch_dir("folder-empty");
    assert!(ImageFolder::open(&empty).is_err());
    assert!(matches!(
        ImageFolder::open(empty.join("missing")),
        Err(DataError::Io { .. })
    ));
}
