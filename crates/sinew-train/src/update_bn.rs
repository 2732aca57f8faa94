//! [`update_bn`]: batch norm's running statistics recomputed for a model's current weights, the
//! last step of stochastic weight averaging (PyTorch's `torch.optim.swa_utils.update_bn`).

use sinew_data::{DataLoader, Dataset, Sample};
use sinew_nn::layers::batch_norm::reset_running_stats;
use sinew_nn::module_ext::walk;
use sinew_nn::{Buffer, Entry, Mode, Module, ModuleExt};
use sinew_tensor::{Result, no_grad};

/// One pass over `loader` in training mode that makes every batch norm's running mean and
/// variance the plain average of the batches' statistics (PyTorch's `update_bn(loader, model)`).
///
/// Averaged weights (an [`sinew_optim::AveragedModel`]) never ran forward, so their running
/// statistics belong to no set of weights; this recomputes them. Each `BatchNorm*` and
/// `SyncBatchNorm` is reset (mean 0, variance 1, no batches) and averages all batches of the
/// pass equally, as with PyTorch's `momentum=None` (frozen ones too: `freeze` has no PyTorch
/// counterpart); afterwards the layers keep their momentum and freeze, and the model its
/// training or evaluation mode. The loader's epoch 0 is read (its inputs
/// only), without gradients. A model without batch norm is left as it is.
pub fn update_bn<D>(loader: &DataLoader<D>, model: &dyn Module) -> Result<()>
where
    D: Dataset<Item = Sample> + 'static,
{
    let modes = batch_norm_modes(model)?;
    if modes.is_empty() {
        return Ok(());
    }
    let was_training = model.is_training();
    model.train();
    // A frozen layer keeps its statistics in training mode; this pass is asked to recompute
    // them, so it lifts the freeze for its duration.
    let frozen: Vec<bool> = modes.iter().map(|m| m.is_frozen()).collect();
    for mode in &modes {
        mode.set_cumulative(true);
        mode.set_frozen(false);
    }
    let pass = || -> Result<()> {
        let _guard = no_grad();
        for batch in loader.epoch(0) {
            model.forward(&batch?.inputs)?;
        }
        Ok(())
    };
    let result = pass();
    for (mode, frozen) in modes.iter().zip(frozen) {
        mode.set_cumulative(false);
        mode.set_frozen(frozen);
    }
    model.set_training(was_training);
    result
}

/// Resets the running statistics of every batch norm below `model` and returns their modes.
fn batch_norm_modes(model: &dyn Module) -> Result<Vec<&Mode>> {
    let mut layers = Vec::new();
    walk(model, |_, entry| {
        if let Entry::Module(m) = entry
            && m.type_name().contains("BatchNorm")
        {
            layers.push(m);
        }
    });
    let mut modes = Vec::new();
    for layer in layers {
        let mut stats: [Option<Buffer>; 3] = [None, None, None];
        walk(layer, |path, entry| match entry {
            Entry::Buffer(b) => {
                let slot = ["running_mean", "running_var", "num_batches_tracked"]
                    .iter()
                    .position(|name| *name == path);
                if let Some(i) = slot {
                    stats[i] = Some(b.clone());
                }
            }
            Entry::Mode(mode) if path.is_empty() => modes.push(mode),
            _ => {}
        });
        let [mean, var, count] = &stats;
        reset_running_stats(mean.as_ref(), var.as_ref(), count.as_ref())?;
    }
    Ok(modes)
}
