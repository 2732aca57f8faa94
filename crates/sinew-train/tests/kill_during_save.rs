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

/// An optimizer whose state cannot be read: a save with it fails once it has started writing.
struct Unsaveable;

impl Optimizer for Unsaveable {
    fn step(&mut self) -> Result<()> {
        Ok(())
    }
    fn zero_grad(&self) {}
    fn lrs(&self) -> Vec<f64> {
        Vec::new()
    }
    fn set_lr(&mut self, _: usize, _: f64) -> Result<()> {
        Ok(())
    }
    fn state_dict(&self) -> Result<sinew_optim::OptimizerState> {
        Err(sinew_tensor::Error::invalid("state_dict", "unreadable"))
    }
    fn load_state_dict(
        &mut self,
        _: &sinew_optim::OptimizerState,
    ) -> Result<sinew_optim::StateReport> {
        Ok(sinew_optim::StateReport::default())
    }
    fn parameters(&self) -> Vec<sinew_tensor::Parameter> {
        Vec::new()
    }
}

/// A save killed between its two renames leaves the latest checkpoint in `<dir>.new` (and
/// none at `<dir>`): the next save moves it in place before it starts, so even when that save
/// fails too the checkpoint is still there to load.
#[test]
fn a_save_after_one_stopped_between_its_renames_keeps_the_latest_checkpoint() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("sinew-train-renames-{}", std::process::id()));
    let new = std::path::PathBuf::from(format!("{}.new", dir.display()));
    let model = common::model()?;
    let opt = adam(model.named_parameters(), AdamConfig::new(0.01));
    TrainingCheckpoint::save(&dir, &model, &opt, 7)?;
    std::fs::rename(&dir, &new).unwrap();
    let err = TrainingCheckpoint::save(&dir, &model, &Unsaveable, 8).unwrap_err();
    assert!(err.to_string().contains("unreadable"), "{err}");
    let mut opt = adam(model.named_parameters(), AdamConfig::new(0.01));
    assert_eq!(TrainingCheckpoint::load(&dir, &model, &mut opt)?, 7);
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&new).ok();
    Ok(())
}
