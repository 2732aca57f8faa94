//! A training program's data side written with nothing but `use sinew::prelude::*;`: MNIST is
//! loaded and batched with `?` in a function returning `sinew::Result<()>`.

use std::sync::Arc;

use sinew::prelude::*;

/// The shared data folder (`../shared/data` beside the checkout, or `SINEW_DATA`).
fn data_dir() -> std::path::PathBuf {
    std::env::var_os("SINEW_DATA").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        std::path::PathBuf::from,
    )
}

/// Loads MNIST and walks three batches, all errors flowing through `?` into `sinew::Error`.
fn train_three_batches(dir: &std::path::Path) -> Result<Vec<(Vec<usize>, f32)>> {
    let train = Arc::new(Mnist::load(dir, Split::Train)?);
    let config = LoaderConfig {
        batch_size: 32,
        shuffle: true,
        seed: 7,
        ..Default::default()
    };
    let transform = Compose::new()
        .then(ToTensor)
        .then(Normalize::new(&[0.1307], &[0.3081])?);
    let loader = DataLoader::new(train, config)?.with_transform(transform);
    let mut seen = Vec::new();
    for batch in loader.epoch(0).take(3) {
        let batch: Batch = batch?;
        let labels = batch.targets.to_vec::<i64>()?;
        assert!(labels.iter().all(|&l| (0..10).contains(&l)));
        let max = batch
            .inputs
            .to_vec::<f32>()?
            .into_iter()
            .fold(f32::MIN, f32::max);
        seen.push((batch.inputs.dims().to_vec(), max));
    }
    Ok(seen)
}

#[test]
fn mnist_batches_through_the_prelude() -> Result<()> {
    let dir = data_dir().join("mnist");
    if !dir.exists() {
        eprintln!(
            "note: {} is absent; skipping the MNIST prelude test",
            dir.display()
        );
        return Ok(());
    }
    let batches = train_three_batches(&dir)?;
    assert_eq!(batches.len(), 3);
    for (dims, max) in batches {
        assert_eq!(dims, vec![32, 1, 28, 28]);
        // Full ink (255) normalised: (1 - 0.1307) / 0.3081.
        assert!((max - 2.8215).abs() < 1e-3, "{max}");
    }
    Ok(())
}

#[test]
fn data_errors_surface_through_question_mark() {
    let err = train_three_batches(std::path::Path::new("/nonexistent/mnist")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("data: /nonexistent/mnist/train-images-idx3-ubyte"),
        "{text}"
    );
    // The two-parameter std `Result` is not shadowed by the prelude's.
    let parsed: Result<u8, std::num::ParseIntError> = "7".parse();
    assert_eq!(parsed, Ok(7));
}
