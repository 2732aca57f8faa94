//! `sinew train` on the user's own data (`--dataset csv`, `--dataset folder`), augmentation,
//! the perceptron, weights in PyTorch's format and `sinew convert`, and the one-line errors,
//! run through the built binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sinew(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sinew"))
        .args(args)
        .output()
        .expect("the sinew binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The percentage on the final `test accuracy: NN.NN%` line.
fn test_accuracy(out: &Output) -> f64 {
    assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
    let text = stdout(out);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("test accuracy: "))
        .unwrap_or_else(|| panic!("no accuracy line in {text}"));
    line.trim_end_matches('%').parse().expect("a percentage")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sinew-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 200 rows `a,b,label`: the label is whether a + b > 0 (or the value a - 2b with `regression`).
fn write_csv(path: &Path, regression: bool) {
    let mut text = String::from("a,b,target\n");
    for i in 0..200 {
        let a = ((i * 37) % 101) as f32 / 50.0 - 1.0;
        let b = ((i * 59) % 97) as f32 / 48.0 - 1.0;
        let target = if regression {
            format!("{}", a - 2.0 * b)
        } else {
            format!("{}", u8::from(a + b > 0.0))
        };
        text.push_str(&format!("{a},{b},{target}\n"));
    }
    std::fs::write(path, text).unwrap();
}

/// `dir/<dark|light>/k.png`: 12x10 images, dark ones near black and light ones near white.
fn write_folder(dir: &Path) {
    for (class, base) in [("dark", 20u8), ("light", 230u8)] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for k in 0..20u8 {
            let img = image::RgbImage::from_fn(12, 10, |x, y| {
                let v = base.wrapping_add(((x + y) as u8 + k) % 16);
                image::Rgb([v, v / 2 + 10, v])
            });
            img.save(dir.join(class).join(format!("{k}.png"))).unwrap();
        }
    }
}

#[test]
fn a_csv_file_trains_a_classifier_and_a_regressor() {
    let dir = scratch("csv");
    let csv = dir.join("points.csv");
    write_csv(&csv, false);
    let csv_arg = csv.to_str().unwrap();
    let out = sinew(&[
        "train",
        "--dataset",
        "csv",
        "--data",
        csv_arg,
        "--epochs",
        "30",
    ]);
    assert!(test_accuracy(&out) >= 90.0, "{}", stdout(&out));
    let out = sinew(&[
        "summary",
        "--model",
        "logreg",
        "--dataset",
        "csv",
        "--data",
        csv_arg,
    ]);
    assert!(stdout(&out).contains("Total params: 6"), "{}", stdout(&out)); // 2x2 + 2

    write_csv(&csv, true);
    let args = [
        "train",
        "--dataset",
        "csv",
        "--data",
        csv_arg,
        "--regression",
    ];
    let out = sinew(
        &[
            &args[..],
            &["--epochs", "60", "--lr", "0.1", "--model", "logreg"],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let loss: f64 = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("test loss: "))
        .expect("a test loss line")
        .parse()
        .unwrap();
    // A linear target: the fitted line is close (the target's variance is about 1.7).
    assert!(loss < 0.05, "test loss {loss}");
}

/// `--balanced`: class-balanced draws train a classifier; a regression has no classes to balance.
#[test]
fn balanced_sampling_trains_and_needs_classes() {
    let dir = scratch("balanced");
    let csv = dir.join("points.csv");
    write_csv(&csv, false);
    let csv_arg = csv.to_str().unwrap();
    let args = ["train", "--dataset", "csv", "--data", csv_arg, "--balanced"];
    let out = sinew(&[&args[..], &["--epochs", "30"]].concat());
    assert!(test_accuracy(&out) >= 90.0, "{}", stdout(&out));
    write_csv(&csv, true);
    let out = sinew(&[&args[..], &["--regression", "--epochs", "1"]].concat());
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--balanced: balances classes"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_image_folder_trains_with_augmentation() {
    let dir = scratch("folder");
    write_folder(&dir);
    let out = sinew(&[
        "train",
        "--dataset",
        "folder",
        "--data",
        dir.to_str().unwrap(),
        "--image-size",
        "8",
        "--epochs",
        "10",
        "--augment",
        "flip,crop,jitter,rotate",
        "--val-split",
        "0.2",
    ]);
    assert!(test_accuracy(&out) >= 99.0, "{}", stdout(&out));
}

#[test]
fn the_perceptron_learns_separable_data_with_its_rule() {
    let dir = scratch("perceptron");
    let csv = dir.join("points.csv");
    write_csv(&csv, false);
    let weights = dir.join("p.safetensors");
    let (csv_arg, w_arg) = (csv.to_str().unwrap(), weights.to_str().unwrap());
    let base = [
        "--model",
        "perceptron",
        "--dataset",
        "csv",
        "--data",
        csv_arg,
    ];
    let out = sinew(&[&["train"][..], &base, &["--epochs", "100", "--save", w_arg]].concat());
    let trained = test_accuracy(&out);
    assert!(stdout(&out).contains("converged"), "{}", stdout(&out));
    assert!(trained >= 95.0, "{trained}");
    let out = sinew(&[&["eval"][..], &base, &["--weights", w_arg]].concat());
    assert_eq!(test_accuracy(&out), trained);
}

/// Weights saved as `.pt` (PyTorch's `torch.save` format), converted to safetensors and back,
/// evaluate to the accuracy they were trained to; a PyTorch checkpoint's model converts with
/// `--select`.
#[test]
fn weights_convert_between_pytorch_and_safetensors() {
    let dir = scratch("convert");
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let trained = test_accuracy(&sinew(&["train", "--epochs", "2", "--save", &path("w.pt")]));
    for (from, to) in [("w.pt", "w.safetensors"), ("w.safetensors", "back.pth")] {
        let out = sinew(&["convert", &path(from), &path(to)]);
        assert!(
            stdout(&out).starts_with("converted 6 tensors"),
            "{}",
            stderr(&out)
        );
        let eval = sinew(&["eval", "--weights", &path(to)]);
        assert_eq!(test_accuracy(&eval), trained, "{to}");
    }
    assert_eq!(&std::fs::read(path("back.pth")).unwrap()[..2], b"PK");
    let checkpoint = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sinew-nn/tests/reference/torch_save_checkpoint.pt");
    let checkpoint = checkpoint.to_str().unwrap();
    let out = sinew(&[
        "convert",
        checkpoint,
        &path("mlp.safetensors"),
        "--select",
        "model.",
    ]);
    assert!(
        stdout(&out).starts_with("converted 4 tensors"),
        "{}",
        stderr(&out)
    );
    let out = sinew(&[
        "convert",
        checkpoint,
        &path("none.pt"),
        "--select",
        "nothing.",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no tensors under \"nothing.\""),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_requests_are_one_line_errors() {
    let cases: [(&[&str], &str); 7] = [
        (&["train", "--dataset", "csv"], "needs --data FILE.csv"),
        (
            &["train", "--dataset", "xor", "--augment", "flip"],
            "image datasets",
        ),
        (
            &["train", "--model", "perceptron", "--dataset", "sin"],
            "two classes",
        ),
        (
            &["train", "--val-split", "0", "--early-stopping", "2"],
            "give a validation split above 0",
        ),
        (
            &["train", "--val-split", "1"],
            "fit: the training data gave no examples",
        ),
        (
            &["train", "--limit", "0"],
            "fit: the training data gave no examples",
        ),
        (&["train", "--lr=-1"], "Adam: invalid learning rate -1"),
    ];
    for (args, expected) in cases {
        let out = sinew(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `--val-split 0` trains on all the training data with no validation pass: no `val_*`
/// figures (they read NaN and 0 from an empty split before).
#[test]
fn no_validation_split_reports_no_validation_figures() {
    let out = sinew(&["train", "--epochs", "2", "--val-split", "0"]);
    let accuracy = test_accuracy(&out);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!text.contains("val_"), "{text}");
    assert!(accuracy > 50.0, "{accuracy}");
}

/// `predict` refuses CSV rows it cannot use: non-finite values (they printed `NaN%`) and files
/// with no rows (they printed nothing).
#[test]
fn predict_refuses_non_finite_or_missing_rows() {
    let dir = scratch("predict-rows");
    let weights = dir.join("w.safetensors");
    let w = weights.to_str().unwrap();
    let out = sinew(&["train", "--epochs", "1", "--save", w]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cases = [
        (
            "nan.csv",
            "0.5,nan\n",
            "nan.csv line 1, column 1: not a finite number",
        ),
        (
            "inf.csv",
            "0.5,1\ninf,2\n",
            "inf.csv line 2, column 0: not a finite number",
        ),
        ("empty.csv", "", "empty.csv: no rows of numbers"),
        ("header.csv", "a,b\n", "header.csv: no rows of numbers"),
    ];
    for (name, text, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let out = sinew(&["predict", "--weights", w, path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains(expected), "{name}: {err}");
    }
    let path = dir.join("ok.csv");
    std::fs::write(&path, "a,b\n0.5,-0.25\n").unwrap();
    let out = sinew(&["predict", "--weights", w, path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("ok.csv:2: class"), "{}", stdout(&out));
}
