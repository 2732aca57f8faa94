//! safetensors weights: a PyTorch-saved CNN loads and gives PyTorch's logits and running
//! statistics; Sinew's files round-trip in every float dtype; damaged files are named errors.

use crate::common;

use common::{assert_no_failures, get, mismatch, reference, reference_path};
use sinew_nn::*;
use sinew_tensor::{DType, Device, Result, Tensor};

/// `SmallCnn` of `tests/reference/small_cnn.py`, written the Sinew way.
pub struct SmallCnn {
    features: Sequential,
    classifier: Sequential,
}

impl SmallCnn {
    fn new() -> Result<Self> {
        Ok(SmallCnn {
            features: Sequential::new()
                .append(Conv2d::with_options(
                    1,
                    4,
                    (3, 3),
                    Conv2dOptions::default().padding(1),
                )?)
                .append(BatchNorm2d::new(4)?)
                .append(ReLU)
                .append(MaxPool2d::new(2))
                .append(Dropout::new(0.25)),
            classifier: Sequential::new()
                .append(Flatten::new())
                .append(Linear::new(64, 10)?),
        })
    }
}

impl Module for SmallCnn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.classifier.forward(&self.features.forward(x)?)
    }
    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.child("features", &self.features);
        v.child("classifier", &self.classifier);
    }
}

#[test]
fn a_pytorch_checkpoint_loads_strictly_and_reproduces_pytorch_outputs() -> Result<()> {
    let model = SmallCnn::new()?;
    let weights = load_safetensors(reference_path("small_cnn.safetensors"))?;
    assert!(model.load_state_dict(&weights, true)?.is_clean());
    let io = reference("small_cnn_io.safetensors");
    let x = get(&io, "x");
    model.eval();
    let logits = model.forward(&x)?;
    let mut failures = Vec::new();
    failures.extend(mismatch(
        "logits_eval",
        &logits,
        &get(&io, "logits_eval"),
        1e-5,
        0.0,
    ));
    model.train();
    model.forward(&x)?;
    let sd = model.state_dict();
    for (key, want) in [
        ("features.1.running_mean", "running_mean_after"),
        ("features.1.running_var", "running_var_after"),
    ] {
        failures.extend(mismatch(
            key,
            sd.get(key).unwrap(),
            &get(&io, want),
            1e-5,
            0.0,
        ));
    }
    assert_no_failures(&failures);
    Ok(())
}

/// A Sinew-initialised SmallCnn, after one training step of statistics, saved with its eval
/// logits for `tests/reference/small_cnn.py check` (PyTorch loads it with `strict=True` and
/// compares the logits). The files go to `$SINEW_INTEROP_OUT` when set (to run the script on
/// them), else to a temporary directory; either way they must read back identically.
#[test]
fn a_sinew_checkpoint_is_written_for_pytorch_with_its_logits() -> Result<()> {
    let dir = match std::env::var("SINEW_INTEROP_OUT") {
        Ok(d) => std::path::PathBuf::from(d),
        Err(_) => temp_dir("interop"),
    };
    let model = SmallCnn::new()?;
    let x = get(&reference("small_cnn_io.safetensors"), "x");
    model.forward(&x)?; // training mode: running statistics and num_batches_tracked move
    model.eval();
    let logits = model.forward(&x)?;
    let weights = dir.join("sinew_small_cnn.safetensors");
    save_safetensors(&model.state_dict(), &weights)?;
    let io: StateDict = [("logits".to_string(), logits.clone())]
        .into_iter()
        .collect();
    save_safetensors(&io, dir.join("sinew_small_cnn.logits.safetensors"))?;
    let back = load_safetensors(&weights)?;
    assert_eq!(
        back.get("features.1.num_batches_tracked")
            .unwrap()
            .to_vec::<i64>()?,
        vec![1]
    );
    let reloaded = SmallCnn::new()?;
    assert!(reloaded.load_state_dict(&back, true)?.is_clean());
    reloaded.eval();
    assert_eq!(
        reloaded.forward(&x)?.to_vec::<f32>()?,
        logits.to_vec::<f32>()?
    );
    Ok(())
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sinew-nn-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn saved_files_round_trip_in_every_dtype_and_leave_no_temporary_file() -> Result<()> {
    let dir = temp_dir("roundtrip");
    let model = SmallCnn::new()?;
    for dtype in [DType::F32, DType::F16, DType::BF16, DType::F64] {
        model.to_dtype(dtype)?;
        let path = dir.join(format!("{dtype:?}.safetensors"));
        save_safetensors(&model.state_dict(), &path)?;
        let back = load_safetensors(&path)?;
        for (name, t) in model.state_dict().iter() {
            let loaded = back.get(name).unwrap();
            assert_eq!(loaded.dtype(), t.dtype(), "{name}");
            assert_eq!(loaded.to_vec_f64()?, t.to_vec_f64()?, "{name} in {dtype:?}");
        }
    }
    // A f16 file loads into an f32 model (converted to the model's dtype).
    let f16_file = load_safetensors(dir.join("F16.safetensors"))?;
    let fresh = SmallCnn::new()?;
    assert!(fresh.load_state_dict(&f16_file, true)?.is_clean());
    assert_eq!(
        fresh
            .state_dict()
            .get("classifier.1.weight")
            .unwrap()
            .dtype(),
        DType::F32
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}

#[test]
fn truncated_corrupt_and_missing_files_are_errors_naming_the_file() -> Result<()> {
    let dir = temp_dir("corrupt");
    let good = std::fs::read(reference_path("small_cnn.safetensors")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() - 10].to_vec()),
        ("header-only", good[..8].to_vec()),
        ("empty", Vec::new()),
        (
            "garbage",
            b"\xff\xff\xff\xff\xff\xff\xff\x7fnot json".to_vec(),
        ),
        ("bad-json", {
            let mut b = good.clone();
            b[10] = b'!';
            b
        }),
    ];
    for (name, bytes) in cases {
        let path = dir.join(format!("{name}.safetensors"));
        std::fs::write(&path, bytes).unwrap();
        let err = load_safetensors(&path)
            .err()
            .unwrap_or_else(|| panic!("{name} loaded"))
            .to_string();
        assert!(
            err.contains(&format!("{name}.safetensors")),
            "{name}: {err}"
        );
    }
    let err = load_safetensors(dir.join("absent.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent.safetensors"), "{err}");
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}

#[test]
fn saving_replaces_an_existing_file_whole() -> Result<()> {
    let dir = temp_dir("replace");
    let path = dir.join("w.safetensors");
    std::fs::write(&path, b"old contents").unwrap();
    let sd: StateDict = [(
        "a".to_string(),
        Tensor::ones([3], DType::F32, &Device::cpu())?,
    )]
    .into_iter()
    .collect();
    save_safetensors(&sd, &path)?;
    assert_eq!(
        load_safetensors(&path)?.get("a").unwrap().to_vec::<f32>()?,
        vec![1.0; 3]
    );
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}

/// Threads saving to one path at once each write a temporary file of their own: every save
/// succeeds, the file left is one thread's whole state dict, and no temporary file remains.
#[test]
fn concurrent_saves_to_one_path_leave_one_whole_file() -> Result<()> {
    let dir = temp_dir("concurrent");
    let path = dir.join("w.safetensors");
    std::thread::scope(|s| {
        let path = &path;
        let threads: Vec<_> = (0..6u8)
            .map(|t| {
                s.spawn(move || {
                    let value = Tensor::full([50_000], f64::from(t), DType::F32, &Device::cpu())?;
                    let sd: StateDict = [("a".to_string(), value)].into_iter().collect();
                    for _ in 0..4 {
                        save_safetensors(&sd, path)?;
                    }
                    Ok::<(), sinew_tensor::Error>(())
                })
            })
            .collect();
        threads
            .into_iter()
            .try_for_each(|t| t.join().expect("a saving thread panicked"))
    })?;
    let values = load_safetensors(&path)?.get("a").unwrap().to_vec::<f32>()?;
    assert_eq!(values.len(), 50_000);
    assert!(values.iter().all(|&v| v == values[0]) && values[0] < 6.0);
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}
