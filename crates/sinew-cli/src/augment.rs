//! `--augment flip,crop,jitter,rotate`: random augmentation of training images, drawn from the
//! loader's seeded per-sample generators (so a run is reproducible with `--seed`).

use sinew::data::transforms::{
    ColorJitter, Compose, RandomCrop, RandomHorizontalFlip, RandomRotation, ToTensor,
};
use sinew::prelude::*;

use crate::datasets::DataInfo;

/// The augmentations `--augment` accepts.
pub const NAMES: [&str; 4] = ["flip", "crop", "jitter", "rotate"];

/// The training transform for a comma-separated list: ToTensor, then each augmentation in the
/// order given: `flip` (horizontal, p = 0.5), `crop` (random crop back to the input size after
/// zero padding by 1/8 of the side, 4 pixels on CIFAR), `jitter` (brightness, contrast and
/// saturation ±0.2), `rotate` (±15°).
pub fn parse(list: &str, info: &DataInfo) -> Result<Compose> {
    if !info.image {
        return Err(Error::invalid(
            "--augment",
            "augmentation applies to image datasets; this one has feature rows",
        ));
    }
    let [_, h, w] = info.input;
    let mut pipeline = Compose::new().then(ToTensor);
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        pipeline = match name {
            "flip" => pipeline.then(RandomHorizontalFlip::default()),
            "crop" => pipeline.then(RandomCrop::new(h, w, (h.min(w) / 8).max(1))),
            "jitter" => pipeline.then(ColorJitter::new(0.2, 0.2, 0.2, 0.0)),
            "rotate" => pipeline.then(RandomRotation::new(15.0)),
            other => {
                return Err(Error::invalid(
                    "--augment",
                    format!("unknown augmentation {other:?}; expected some of {NAMES:?}"),
                ));
            }
        };
    }
    Ok(pipeline)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGES: DataInfo = DataInfo {
        input: [3, 32, 32],
        image: true,
        classes: Some(10),
    };

    #[test]
    fn every_name_parses_and_adds_one_step() {
        let all = parse("flip, crop,jitter,rotate", &IMAGES).unwrap();
        assert_eq!(all.len(), 5); // ToTensor + 4
        assert_eq!(parse("flip", &IMAGES).unwrap().len(), 2);
    }

    #[test]
    fn unknown_names_and_feature_data_are_errors() {
        let err = parse("flip,blur", &IMAGES).err().unwrap().to_string();
        assert!(err.contains("\"blur\""), "{err}");
        let rows = DataInfo {
            input: [2, 1, 1],
            image: false,
            classes: Some(2),
        };
        let err = parse("flip", &rows).err().unwrap().to_string();
        assert!(err.contains("image datasets"), "{err}");
    }
}
