//! `load_pytorch` against files PyTorch wrote (`tests/reference/torch_save_ref.py`): a state
//! dict of every dtype with views, a training checkpoint in pickle protocol 4 that loads into a
//! module and gives PyTorch's output, the files it must refuse, and hostile archives.

use std::io::Write;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use sinew_nn::torch_file::parse_pytorch;
use sinew_nn::*;
use sinew_tensor::{DType, Result, Tensor};

fn reference(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/reference")
        .join(name)
}

fn expected() -> StateDict {
    load_safetensors(reference("torch_save_expected.safetensors")).unwrap()
}

/// Same dtype, dims and values (compared in f64, exact for every dtype here).
fn assert_same(key: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.dtype(), want.dtype(), "{key}: dtype");
    assert_eq!(got.dims(), want.dims(), "{key}: dims");
    let values = |t: &Tensor| t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
    assert_eq!(values(got), values(want), "{key}: values");
}

#[test]
fn a_state_dict_loads_bit_for_bit_with_its_views_copied_out() -> Result<()> {
    let sd = load_pytorch(reference("torch_save_state.pt"))?;
    let keys: Vec<&str> = sd.keys().collect();
    assert_eq!(
        keys,
        [
            "conv.weight",
            "half",
            "bfloat",
            "double",
            "bn.num_batches_tracked",
            "bytes",
            "mask",
            "transposed",
            "rows",
            "column",
            "scalar",
            "empty"
        ]
    );
    let want = expected();
    for (key, t) in sd.iter() {
        assert!(t.is_contiguous(), "{key}");
        assert_same(key, t, want.get(key).unwrap());
    }
    assert_eq!(sd.get("transposed").unwrap().dims(), &[6, 4]);
    assert_eq!(
        sd.get("bn.num_batches_tracked").unwrap().dims(),
        &[] as &[usize]
    );
    Ok(())
}

/// The format before PyTorch 1.6 (older torchvision weights): the same state dict, the same
/// tensors; cut anywhere, it is an error (mutations: `mutated_torch_files_never_panic`).
#[test]
fn the_format_before_pytorch_1_6_loads_too() -> Result<()> {
    let legacy = load_pytorch(reference("torch_save_legacy.pt"))?;
    let zip = load_pytorch(reference("torch_save_state.pt"))?;
    assert_eq!(
        legacy.keys().collect::<Vec<_>>(),
        zip.keys().collect::<Vec<_>>()
    );
    for (key, t) in zip.iter() {
        assert_same(key, legacy.get(key).unwrap(), t);
    }
    let bytes = std::fs::read(reference("torch_save_legacy.pt")).unwrap();
    for cut in (0..bytes.len()).step_by(7) {
        assert!(parse_pytorch(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    Ok(())
}

#[test]
fn a_checkpoint_gives_dotted_keys_and_its_model_loads_strictly() -> Result<()> {
    let sd = load_pytorch(reference("torch_save_checkpoint.pt"))?;
    let want = expected();
    let mut compared = 0;
    for (key, t) in want.iter() {
        if key.starts_with("model.") || key.starts_with("optimizer.") {
            assert_same(key, sd.get(key).unwrap_or_else(|| panic!("{key}")), t);
            compared += 1;
        }
    }
    // 4 parameters, and Adam's step, exp_avg and exp_avg_sq for each.
    assert_eq!(compared, 4 + 4 * 3);
    // Numbers, strings, the argparse.Namespace and the float list are not tensors.
    assert_eq!(sd.len(), compared);
    let model = Sequential::new()
        .append(Linear::new(4, 3)?)
        .append(ReLU)
        .append(Linear::new(3, 2)?);
    model.load_state_dict(&sd.select("model."), true)?;
    let y = model.forward(want.get("io.x").unwrap())?;
    let (got, pytorch) = (
        y.to_vec::<f32>()?,
        want.get("io.y").unwrap().to_vec::<f32>()?,
    );
    for (a, b) in got.iter().zip(&pytorch) {
        assert!(
            (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
            "{got:?} vs {pytorch:?}"
        );
    }
    Ok(())
}

/// `torch.save(model)`: the pickled module gives what its `state_dict()` would, in its order
/// (parameters, persistent buffers, then children), without importing its class.
#[test]
fn a_pickled_module_gives_its_state_dict() -> Result<()> {
    let sd = load_pytorch(reference("torch_save_module.pt"))?;
    let want = expected().select("whole.");
    let keys: Vec<&str> = sd.keys().collect();
    assert_eq!(
        keys,
        [
            "features.0.weight",
            "features.0.bias",
            "features.1.weight",
            "features.1.bias",
            "features.1.running_mean",
            "features.1.running_var",
            "features.1.num_batches_tracked",
            "fc.weight"
        ]
    );
    assert_eq!(want.len(), keys.len());
    for (key, t) in sd.iter() {
        assert_same(key, t, want.get(key).unwrap());
    }
    Ok(())
}

#[test]
fn unsupported_dtypes_and_missing_files_are_errors_naming_the_file() {
    let err = load_pytorch(reference("torch_save_int32.pt"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("torch_save_int32.pt") && err.contains("IntStorage"),
        "{err}"
    );
    let err = load_pytorch(reference("missing.pt"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.pt"), "{err}");
}

#[test]
fn load_weights_tells_the_formats_apart() -> Result<()> {
    let torch = load_weights(reference("torch_save_state.pt"))?;
    assert_eq!(
        torch.len(),
        load_pytorch(reference("torch_save_state.pt"))?.len()
    );
    let expected = reference("torch_save_expected.safetensors");
    let st = load_weights(&expected)?;
    assert_eq!(
        st.keys().collect::<Vec<_>>(),
        load_safetensors(&expected)?.keys().collect::<Vec<_>>()
    );
    // save_weights picks the format from the extension.
    let dir = std::env::temp_dir();
    let (pt, st) = (
        dir.join(format!("sinew-{}.pth", std::process::id())),
        dir.join(format!("sinew-{}.safetensors", std::process::id())),
    );
    save_weights(&torch, &pt)?;
    save_weights(&torch, &st)?;
    let heads = [&pt, &st].map(|p| std::fs::read(p).unwrap()[..2].to_vec());
    let back = [&pt, &st].map(|p| load_weights(p).map(|sd| sd.len()));
    std::fs::remove_file(&pt).unwrap();
    std::fs::remove_file(&st).unwrap();
    assert_eq!(heads[0], b"PK");
    assert_ne!(heads[1], b"PK");
    assert_eq!(back.map(|n| n.unwrap()), [torch.len(), torch.len()]);
    let err = load_weights(reference("README.md"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("README.md") && err.contains("safetensors"),
        "{err}"
    );
    Ok(())
}

/// `save_pytorch` writes what `load_pytorch` reads back exactly (PyTorch's `torch.load` reads it
/// too: checked with `tests/reference/check_torch_load.py`), every dtype and shape included.
#[test]
fn saved_files_load_back_exactly() -> Result<()> {
    let want = load_pytorch(reference("torch_save_state.pt"))?;
    let path = std::env::temp_dir().join(format!("sinew-state-{}.pt", std::process::id()));
    save_pytorch(&want, &path)?;
    let got = load_pytorch(&path);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let got = got?;
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (key, t) in want.iter() {
        assert_same(key, got.get(key).unwrap(), t);
    }
    // The archive's folder is the file's stem, as torch.save names it.
    let stem = format!("sinew-state-{}/", std::process::id());
    for entry in ["data.pkl", "byteorder", "version", "data/0", "data/11"] {
        let name = format!("{stem}{entry}");
        assert!(
            bytes.windows(name.len()).any(|w| w == name.as_bytes()),
            "{name}"
        );
    }
    Ok(())
}

/// A zip archive of stored entries, as torch.save writes.
fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The pickle of `{"w": <tensor over storage "0" of `numel` floats, `size`, `stride`>}`.
fn tensor_pickle(numel: u8, offset: u8, size: &[u8], stride: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'X', 1, 0, 0, 0, b'w'];
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
    p.extend(
        b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu",
    );
    p.extend([b'K', numel, b't', b'Q', b'K', offset, b'(']);
    for &s in size {
        p.extend([b'K', s]);
    }
    p.extend([b't', b'(']);
    for &s in stride {
        p.extend([b'K', s]);
    }
    p.extend(b"t\x89NtRs.");
    p
}

#[test]
fn hand_made_tensors_load_and_views_outside_their_storage_are_errors() {
    let floats: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let load = |pickle: Vec<u8>| {
        parse_pytorch(&archive(&[("a/data.pkl", &pickle), ("a/data/0", &floats)]))
    };
    // [2, 2] with strides [1, 2] from element 1: [[1, 3], [2, 4]].
    let sd = load(tensor_pickle(6, 1, &[2, 2], &[1, 2])).unwrap();
    let w = sd.get("w").unwrap();
    assert_eq!(w.to_vec::<f32>().unwrap(), [1.0, 3.0, 2.0, 4.0]);
    let err = load(tensor_pickle(6, 3, &[2, 2], &[1, 2])).unwrap_err();
    assert!(err.contains("reaches element 6 of a storage of 6"), "{err}");
    let err = load(tensor_pickle(7, 0, &[7], &[1])).unwrap_err();
    assert!(err.contains("holds 24 bytes, not the 28"), "{err}");
    let err = load(tensor_pickle(6, 0, &[2, 2], &[1])).unwrap_err();
    assert!(err.contains("2 dims and 1 strides"), "{err}");
}

/// A file in the format before PyTorch 1.6, by hand: the magic, `version`, the system info
/// (`little` or not), the object (one tensor over storage "0"), the keys, then the storage's
/// element count and its floats.
fn legacy_file(version: u16, little: bool, count: i64, floats: &[u8]) -> Vec<u8> {
    let mut f = vec![
        0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
    ];
    f.extend([0x80, 2, b'M']);
    f.extend(version.to_le_bytes());
    f.extend([b'.', 0x80, 2, b'}', b'X', 13, 0, 0, 0]);
    f.extend(b"little_endian");
    f.extend([if little { 0x88 } else { 0x89 }, b's', b'.']);
    f.extend(tensor_pickle(6, 0, &[6], &[1]));
    f.extend([0x80, 2, b']', b'X', 1, 0, 0, 0, b'0', b'a', b'.']);
    f.extend(count.to_le_bytes());
    f.extend(floats);
    f
}

#[test]
fn hand_made_files_of_the_format_before_pytorch_1_6() {
    let floats: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let sd = parse_pytorch(&legacy_file(1001, true, 6, &floats)).unwrap();
    let w = sd.get("w").unwrap().to_vec::<f32>().unwrap();
    assert_eq!(w, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    // The magic number in protocol 4: PROTO 4, a FRAME, then the same.
    let mut framed = vec![0x80, 4, 0x95];
    framed.extend(13u64.to_le_bytes());
    framed.extend(&legacy_file(1001, true, 6, &floats)[2..]);
    assert_eq!(
        parse_pytorch(&framed).unwrap().get("w").unwrap().dims(),
        &[6]
    );
    for (file, fault) in [
        (
            legacy_file(1001, true, 7, &floats),
            "holds 7 elements, its tensors say 6",
        ),
        (legacy_file(1001, true, -1, &floats), "holds -1 elements"),
        (
            legacy_file(1001, true, 6, &floats[..20]),
            "ends inside storage",
        ),
        (
            legacy_file(1001, false, 6, &floats),
            "not written little-endian",
        ),
        (
            legacy_file(1000, true, 6, &floats),
            "protocol version is not 1001",
        ),
    ] {
        let err = parse_pytorch(&file).unwrap_err();
        assert!(err.contains(fault), "{fault}: {err}");
    }
}

#[test]
fn hostile_pickles_are_errors_not_crashes() {
    let run = |pickle: Vec<u8>| parse_pytorch(&archive(&[("a/data.pkl", &pickle)]));
    // A million nested tuples: built and dropped without deep recursion; too deep to walk.
    let mut deep = vec![0x80, 2, b']'];
    deep.extend(std::iter::repeat_n(0x85, 1_000_000));
    deep.push(b'.');
    let err = run(deep).unwrap_err();
    assert!(err.contains("nested deeper"), "{err}");
    // A list holding itself.
    let err = run(vec![0x80, 2, b']', b'q', 0, b'h', 0, b'a', b'.']).unwrap_err();
    assert!(err.contains("nested deeper"), "{err}");
    // Shared lists doubling at each level: 2^60 paths.
    let mut wide = vec![0x80, 2, b']'];
    for _ in 0..60 {
        wide.extend([b'2', 0x86]); // DUP, TUPLE2: (x, x)
    }
    wide.push(b'.');
    let err = run(wide).unwrap_err();
    assert!(err.contains("more than 4194304 values"), "{err}");
    for (pickle, fault) in [
        (
            vec![0x80, 2, b'X', 0xff, 0xff, 0xff, 0x7f, b'.'],
            "ends inside",
        ),
        (
            vec![
                0x80, 2, 0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            "ends inside",
        ),
        (vec![0x80, 2, b'h', 9, b'.'], "memo entry 9"),
        (vec![0x80, 2, b'a', b'.'], "stack is empty"),
        (vec![0x80, 2, b'e', b'.'], "no MARK"),
        (vec![0x80, 2, b'I', b'.'], "does not write"),
        (vec![0x80, 9, b'.'], "protocol 9"),
        (vec![0x80, 2, b'N', b'.'], "pickled object"),
        (
            b"\x80\x02c__main__\nThing\n)\x81}b.".to_vec(),
            "pickled object",
        ),
        (vec![0x80, 2, b'}'], "ends inside"),
    ] {
        let err = run(pickle).unwrap_err();
        assert!(err.contains(fault), "{fault}: {err}");
    }
    let err = parse_pytorch(&[0x80, 2, 0x8a, 10]).unwrap_err();
    assert!(err.contains("not a torch.save file"), "{err}");
    let err = parse_pytorch(b"not a zip").unwrap_err();
    assert!(err.contains("not a torch.save file"), "{err}");
    let big = archive(&[("a/data.pkl", &b"\x80\x02}."[..]), ("a/byteorder", b"big")]);
    let err = parse_pytorch(&big).unwrap_err();
    assert!(err.contains("byte order \"big\""), "{err}");
    let little = archive(&[
        ("a/data.pkl", &b"\x80\x02}."[..]),
        ("a/byteorder", b"little"),
    ]);
    assert!(parse_pytorch(&little).unwrap().is_empty());
    let err = parse_pytorch(&archive(&[("a/other", b"x")])).unwrap_err();
    assert!(err.contains("without data.pkl"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Flipped bytes, a cut or a tail added to a real file: an error or a load, never a panic.
    #[test]
    fn mutated_torch_files_never_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
        extra in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let file = if cut % 2 == 0 { "torch_save_checkpoint.pt" } else { "torch_save_legacy.pt" };
        let mut bytes = std::fs::read(reference(file)).unwrap();
        for (at, v) in flips {
            let len = bytes.len();
            bytes[at % len] ^= v;
        }
        if cut % 3 == 0 {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        bytes.extend(extra);
        let _ = parse_pytorch(&bytes);
    }
}
