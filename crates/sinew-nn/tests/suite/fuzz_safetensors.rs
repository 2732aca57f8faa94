//! Hostile safetensors bytes: flipped, truncated, extended or forged headers are errors (or,
//! when still valid, load), never a panic, abort or huge allocation.

use proptest::prelude::*;
use sinew_nn::StateDict;
use sinew_nn::weights::{parse, serialize};
use sinew_tensor::{DType, Device, Tensor};

fn valid_file() -> Vec<u8> {
    let cpu = Device::cpu();
    let sd: StateDict = [
        (
            "w".to_string(),
            Tensor::ones([3, 4], DType::F32, &cpu).unwrap(),
        ),
        (
            "h".to_string(),
            Tensor::ones([5], DType::F16, &cpu).unwrap(),
        ),
        (
            "n".to_string(),
            Tensor::zeros((), DType::I64, &cpu).unwrap(),
        ),
    ]
    .into_iter()
    .collect();
    serialize(&sd).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_never_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
        extra in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut bytes = valid_file();
        for (at, v) in flips {
            let i = at % bytes.len();
            bytes[i] = v;
        }
        let keep = cut % (bytes.len() + 1);
        bytes.truncate(keep);
        bytes.extend(extra);
        if let Ok(sd) = parse(&bytes) {
            for (_, t) in sd.iter() {
                prop_assert!(t.elem_count() <= 12);
            }
        }
    }
}

#[test]
fn forged_headers_are_errors() {
    let header = |json: &str| {
        let mut b = (json.len() as u64).to_le_bytes().to_vec();
        b.extend(json.as_bytes());
        b
    };
    let cases = [
        u64::MAX.to_le_bytes().to_vec(),
        header(r#"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#),
        header(r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,1048576]}}"#),
        header(r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[8,0]}}"#),
        header(r#"{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#),
        header(r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}"#),
    ];
    for (i, bytes) in cases.iter().enumerate() {
        assert!(parse(bytes).is_err(), "case {i} parsed");
    }
}
