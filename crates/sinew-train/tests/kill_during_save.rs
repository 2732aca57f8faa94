//! A process killed while writing checkpoints leaves a complete, loadable one. The test runs
//! itself as a child (`SINEW_CHECKPOINT_CHILD=dir`) that saves in a loop, kills it at several
//! moments, and loads what is left each time.

mod common;

use std::process::Command;
use std::time::Duration;

use sinew_nn::ModuleExt;
use sinew_optim::{AdamConfig, Optimizer, adam};
use sinew_tensor::{DType, Device, Result, Tensor};
use sinew_train::TrainingCheckpoint;

/// The child: trains a step and saves, forever, with the epoch counting up.
fn child(dir: &str) -> Result<()> {
    let model = common::model()?;
    let mut opt = adam(model.named_parameters(), AdamConfig::new(0.01));
    let x = Tensor::rand([8, 4], DType::F32, &Device::cpu())?;
    for epoch in 1.. {
        opt.zero_grad();
        sinew_nn::Module::forward(&model, &x)?
            .square()?
            .mean_all()?
            .backward()?;
        opt.step()?;
        TrainingCheckpoint::save(dir, &model, &opt, epoch)?;
    }
    Ok(())
}

#[test]
fn a_kill_during_a_save_leaves_a_loadable_checkpoint() -> Result<()> {
    if let Ok(dir) = std::env::var("SINEW_CHECKPOINT_CHILD") {
        return child(&dir);
    }
    let dir = std::env::temp_dir().join(format!("sinew-train-kill-{}", std::process::id()));
    let exe = std::env::current_exe().unwrap();
    let mut last_epoch = 0;
    for (round, wait_ms) in [150u64, 230, 310, 420].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "a_kill_during_a_save_leaves_a_loadable_checkpoint",
                "--nocapture",
            ])
            .env("SINEW_CHECKPOINT_CHILD", &dir)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(wait_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let model = common::model()?;
        let mut opt = adam(model.named_parameters(), AdamConfig::new(0.01));
        let epoch = TrainingCheckpoint::load(&dir, &model, &mut opt)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(epoch >= 1, "round {round}: epoch {epoch}");
        assert!(
            opt.state_dict()?
                .params
                .values()
                .all(|s| s.step as usize == epoch)
        );
        last_epoch = epoch;
    }
    assert!(last_epoch >= 1);
    for suffix in ["", ".new", ".old"] {
        let mut p = dir.clone().into_os_string();
        p.push(suffix);
        std::fs::remove_dir_all(p).ok();
    }
    Ok(())
}
