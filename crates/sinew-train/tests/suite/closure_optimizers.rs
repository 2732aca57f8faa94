//! `fit` with an optimizer that re-evaluates the loss within a step (L-BFGS): each batch steps
//! through `step_with` and a closure of forward, loss, backward and clipping, as a hand-written
//! loop does; what cannot follow such a step (loss scaling, data-parallel runs) is an error.

use crate::common;

use sinew_nn::{Linear, Module, ModuleExt, functional as F};
use sinew_optim::{LbfgsConfig, Optimizer, clip_grad_norm_, lbfgs};
use sinew_tensor::{DType, Result, Tensor};
use sinew_train::{Distributed, Precision, Trainer, Verbosity};

fn values(model: &dyn Module) -> Result<Vec<Vec<f32>>> {
    model
        .state_dict()
        .iter()
        .map(|(_, t)| t.to_vec::<f32>())
        .collect()
}

#[test]
fn lbfgs_fits_as_a_hand_written_loop_does() -> Result<()> {
    let (epochs, max_norm) = (2, 1.0);
    let config = LbfgsConfig::new(0.5).max_iter(4).strong_wolfe();
    let (model, twin) = (Linear::new(4, 3)?, Linear::new(4, 3)?);
    twin.load_state_dict(&model.state_dict(), true)?;
    let data = common::loader(common::blobs(32, 1), 16, true);

    let opt = lbfgs(model.named_parameters(), config.clone());
    let history = Trainer::new(&model, opt, F::cross_entropy)
        .clip_grad_norm(max_norm)
        .verbosity(Verbosity::Silent)
        .fit(&data, None, epochs)?;

    let mut opt = lbfgs(twin.named_parameters(), config);
    let params = twin.parameters();
    let mut epoch_losses = Vec::new();
    for epoch in 0..epochs {
        let mut sum = 0.0;
        for b in 0..data.num_batches() {
            let batch = data.batch(epoch as u64, b)?;
            let mut closure = || {
                let loss = F::cross_entropy(&twin.forward(&batch.inputs)?, &batch.targets)?;
                loss.backward()?;
                clip_grad_norm_(&params, max_norm, 2.0, false)?;
                Ok(loss)
            };
            sum += opt.step_with(&mut closure)?.item()? * batch.len() as f64;
        }
        epoch_losses.push(sum / 32.0);
    }
    assert_eq!(values(&model)?, values(&twin)?);
    assert_eq!(history.get("loss"), epoch_losses);
    // Several evaluations a batch, and the loss falls.
    assert!(
        opt.evaluations() > 2 * 2 * 2,
        "{} evaluations",
        opt.evaluations()
    );
    assert!(epoch_losses[1] < epoch_losses[0], "{epoch_losses:?}");
    Ok(())
}

/// One process standing in for a data-parallel run.
struct OneRank;

impl Distributed for OneRank {
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, _: &mut [f64]) -> Result<()> {
        Ok(())
    }
    fn after_backward(&self) -> Result<()> {
        Ok(())
    }
    fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>> {
        Ok(vec![tensor.clone()])
    }
}

#[test]
fn lbfgs_refuses_loss_scaling_and_data_parallel_runs() -> Result<()> {
    let model = Linear::new(4, 3)?;
    let data = common::loader(common::blobs(8, 1), 8, false);
    let before = values(&model)?;
    let fit = |trainer: Trainer<'_>| {
        let mut trainer = trainer.verbosity(Verbosity::Silent);
        match trainer.fit(&data, None, 1) {
            Ok(_) => panic!("fit should refuse"),
            Err(e) => e.to_string(),
        }
    };
    let opt = || lbfgs(model.named_parameters(), LbfgsConfig::default());
    let f16 = Trainer::new(&model, opt(), F::cross_entropy).precision(Precision::Mixed(DType::F16));
    assert!(fit(f16).contains("loss scaling"));
    let parallel = Trainer::new(&model, opt(), F::cross_entropy).distributed(OneRank);
    assert!(fit(parallel).contains("data-parallel"));
    assert_eq!(values(&model)?, before);
    Ok(())
}
