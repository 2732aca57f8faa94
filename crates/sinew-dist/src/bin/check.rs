//! `sinew-dist-check`: data-parallel checks and measurements, run under `mpirun` (or alone, as a
//! world of one). Used by the MPI tests and for the figures in `docs/distributed.md`.
//!
//! ```text
//! mpirun -np 4 sinew-dist-check equality [--steps 20] [--batch 8]
//! mpirun -np 3 sinew-dist-check collectives
//! mpirun -np 2 sinew-dist-check timeline
//! mpirun -np 2 sinew-dist-check scaling [--steps 30] [--batch 64]
//! mpirun -np 2 sinew-dist-check syncbn
//! mpirun -np 2 sinew-dist-check train --dir DIR [--epochs 2] [--resume]
//! mpirun -np 2 sinew-dist-check die|hang --rank 1 --after 3
//! ```

use std::sync::Arc;
use std::time::Instant;

use sinew_data::{DataLoader, DistributedSampler, LoaderConfig, Sample, VecDataset};
use sinew_dist::{DdpConfig, DistributedDataParallel, ProcessGroup, init_process_group};
use sinew_nn::{Linear, Module, ModuleExt, ReLU, Sequential, Tanh, functional as F};
use sinew_optim::{Optimizer, SgdConfig, sgd};
use sinew_tensor::{DType, Generator, Result, manual_seed};
use sinew_train::{Trainer, Verbosity, metrics::accuracy};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn text_arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

/// `n` points in 6-d, 3 classes, fixed by the seed (the same on every rank).
fn points(n: usize) -> Result<VecDataset<Sample>> {
    let noise = Generator::new(11)
        .randn([n, 6], DType::F32, &sinew_tensor::Device::cpu())?
        .to_vec::<f32>()?;
    let rows = (0..n)
        .map(|i| {
            let class = (i % 3) as i64;
            let x = (0..6)
                .map(|j| noise[i * 6 + j] + if j % 3 == i % 3 { 1.5 } else { 0.0 })
                .collect();
            Sample::features(x, class)
        })
        .collect();
    Ok(VecDataset::new(rows))
}

fn loader(
    data: &Arc<VecDataset<Sample>>,
    batch: usize,
    sampler: Option<DistributedSampler>,
) -> Result<DataLoader<VecDataset<Sample>>> {
    let config = LoaderConfig {
        batch_size: batch,
        shuffle: true,
        seed: 5,
        num_workers: 0,
        shard: sampler,
        ..Default::default()
    };
    Ok(DataLoader::new(data.clone(), config)?)
}

fn small_model(dtype: DType) -> Result<Sequential> {
    manual_seed(3);
    let model = Sequential::new()
        .append(Linear::new(6, 16)?)
        .append(Tanh)
        .append(Linear::new(16, 3)?);
    model.to_dtype(dtype)?;
    Ok(model)
}

/// `steps` SGD steps over `loader`'s epoch 0 (f64 inputs); the final weights, flattened.
fn train_steps(
    model: &dyn Module,
    loader: &DataLoader<VecDataset<Sample>>,
    steps: usize,
    after_backward: &dyn Fn() -> Result<()>,
) -> Result<Vec<f64>> {
    let mut opt = sgd(model.named_parameters(), SgdConfig::new(0.1).momentum(0.9));
    for batch in loader.epoch(0).take(steps) {
        let batch = batch?;
        let out = model.forward(&batch.inputs.to_dtype(DType::F64)?)?;
        let loss = F::cross_entropy(&out, &batch.targets)?;
        opt.zero_grad();
        loss.backward()?;
        after_backward()?;
        opt.step()?;
    }
    let mut weights = Vec::new();
    for p in model.parameters() {
        weights.extend(p.value().to_vec_f64()?);
    }
    Ok(weights)
}

/// N ranks with batch B against one process with batch N·B, both f64.
fn equality(group: &ProcessGroup) -> Result<bool> {
    let (steps, batch, world) = (arg("--steps", 20), arg("--batch", 8), group.world_size());
    let data = Arc::new(points(steps * batch * world)?);
    let sampler = DistributedSampler::new(group.rank(), world)?;
    let ddp = DistributedDataParallel::new(small_model(DType::F64)?, group)?;
    let parallel = train_steps(&ddp, &loader(&data, batch, Some(sampler))?, steps, &|| {
        ddp.finish_gradient_sync()
    })?;
    let single_model = small_model(DType::F64)?;
    let single = train_steps(
        &single_model,
        &loader(&data, batch * world, None)?,
        steps,
        &|| Ok(()),
    )?;
    let diff = parallel
        .iter()
        .zip(&single)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    let moved = parallel
        .iter()
        .zip(
            small_model(DType::F64)?
                .parameters()
                .iter()
                .flat_map(|p| p.value().to_vec_f64().unwrap_or_default()),
        )
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    let mut worst = [diff];
    group.all_reduce_f64(&mut worst, sinew_dist::ReduceOp::Max)?;
    if group.is_main() {
        println!(
            "equality: world size {world}, batch {batch} per rank vs {} in one process, {steps} SGD steps (f64): max weight difference {:.3e} (weights moved by up to {moved:.3e})",
            batch * world,
            worst[0]
        );
    }
    Ok(worst[0] <= 1e-6 && moved > 1e-3)
}

fn mlp(group: &ProcessGroup, bucket_cap_mb: f64) -> Result<DistributedDataParallel<Sequential>> {
    manual_seed(1);
    let model = Sequential::new()
        .append(Linear::new(784, 512)?)
        .append(ReLU)
        .append(Linear::new(512, 512)?)
        .append(ReLU)
        .append(Linear::new(512, 10)?);
    let config = DdpConfig {
        bucket_cap_mb,
        ..Default::default()
    };
    DistributedDataParallel::with_config(model, group, config)
}

/// Runs `steps` MLP steps of batch `batch` per rank; seconds per step (median).
fn mlp_steps(ddp: &DistributedDataParallel<Sequential>, batch: usize, steps: usize) -> Result<f64> {
    let mut g = Generator::new(7 + ddp.group().rank() as u64);
    let x = g.randn([batch, 784], DType::F32, &sinew_tensor::Device::cpu())?;
    let y = sinew_tensor::Tensor::from_vec(
        (0..batch as i64).map(|i| i % 10).collect::<Vec<_>>(),
        [batch],
    )?;
    let mut opt = sgd(ddp.named_parameters(), SgdConfig::new(0.01).momentum(0.9));
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let start = Instant::now();
        let loss = F::cross_entropy(&ddp.forward(&x)?, &y)?;
        opt.zero_grad();
        loss.backward()?;
        opt.step()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn timeline(group: &ProcessGroup) -> Result<bool> {
    let ddp = mlp(group, arg("--bucket-mb", 1) as f64)?;
    mlp_steps(&ddp, arg("--batch", 64), 5)?;
    if group.is_main() {
        println!("buckets (launch order): {:?}", ddp.buckets());
        for (ms, event) in ddp.last_step_timeline() {
            println!("{ms:9.3} ms  {event:?}");
        }
    }
    Ok(true)
}

fn scaling(group: &ProcessGroup) -> Result<bool> {
    let (batch, steps) = (arg("--batch", 64), arg("--steps", 30));
    let ddp = mlp(group, 25.0)?;
    mlp_steps(&ddp, batch, 3)?;
    let step = mlp_steps(&ddp, batch, steps)?;
    let mut worst = [step];
    group.all_reduce_f64(&mut worst, sinew_dist::ReduceOp::Max)?;
    if group.is_main() {
        let images = (batch * group.world_size()) as f64 / worst[0];
        println!(
            "scaling: world size {}, batch {batch} per rank: median step {:.2} ms, {images:.0} images/s",
            group.world_size(),
            worst[0] * 1e3
        );
    }
    Ok(true)
}

/// Every collective on every float dtype, against values computed from the ranks' numbers.
fn collectives(group: &ProcessGroup) -> Result<bool> {
    use sinew_dist::ReduceOp;
    use sinew_tensor::Tensor;
    let (w, r) = (group.world_size() as f64, group.rank() as f64);
    let mut ok = true;
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let mine = || Tensor::from_vec(vec![r + 1.0, 2.0 * (r + 1.0)], [2])?.to_dtype(dtype);
        let check = |t: &Tensor, expected: [f64; 2]| -> Result<bool> {
            Ok(t.dtype() == dtype && t.to_vec_f64()? == expected)
        };
        let sum = w * (w + 1.0) / 2.0;
        let t = mine()?;
        group.all_reduce(&t, ReduceOp::Sum)?;
        ok &= check(&t, [sum, 2.0 * sum])?;
        let t = mine()?;
        group.all_reduce(&t, ReduceOp::Mean)?;
        ok &= check(&t, [sum / w, 2.0 * sum / w])?;
        let t = mine()?;
        group.all_reduce(&t, ReduceOp::Max)?;
        ok &= check(&t, [w, 2.0 * w])?;
        let t = mine()?;
        let root = group.world_size() - 1;
        group.broadcast(&t, root)?;
        ok &= check(&t, [w, 2.0 * w])?;
        let all = group.all_gather(&mine()?)?;
        for (k, part) in all.iter().enumerate() {
            ok &= check(part, [k as f64 + 1.0, 2.0 * (k as f64 + 1.0)])?;
        }
        group.barrier()?;
    }
    // Unequal lengths are refused on every rank, not truncated.
    let uneven = Tensor::from_vec(vec![0.0f32; group.rank() + 1], [group.rank() + 1])?;
    let refused = group.world_size() == 1 || group.all_gather(&uneven).is_err();
    let mut all_ok = [f64::from(u8::from(ok && refused))];
    group.all_reduce_f64(&mut all_ok, ReduceOp::Min)?;
    if group.is_main() {
        println!(
            "collectives: world size {}: sum, mean, max, broadcast, all_gather on f32/f64/f16/bf16 {}",
            group.world_size(),
            if all_ok[0] == 1.0 { "correct" } else { "WRONG" }
        );
    }
    Ok(all_ok[0] == 1.0)
}

/// SyncBatchNorm on each rank's part of a batch against BatchNorm on the whole batch (f64):
/// outputs, input gradients, the summed weight gradient and the running statistics.
fn syncbn(group: &ProcessGroup) -> Result<bool> {
    use sinew_dist::SyncBatchNorm;
    use sinew_nn::BatchNorm;
    use sinew_tensor::Tensor;
    let (world, rank, per) = (group.world_size(), group.rank(), 3);
    let cpu = sinew_tensor::Device::cpu();
    let mut g = Generator::new(21);
    let x = g
        .randn([per * world, 4, 3, 3], DType::F64, &cpu)?
        .mul_scalar(2.0)?
        .add_scalar(1.0)?;
    let weights = g.randn([per * world, 4, 3, 3], DType::F64, &cpu)?;
    let run = |bn: &dyn Module, x: &Tensor, w: &Tensor| -> Result<(Vec<f64>, Vec<f64>, Tensor)> {
        let x = x.detach().requires_grad_();
        let y = bn.forward(&x)?;
        y.mul(w)?.sum_all()?.backward()?;
        let xg = x
            .grad()
            .map(|t| t.to_vec_f64())
            .transpose()?
            .unwrap_or_default();
        Ok((y.detach().to_vec_f64()?, xg, y))
    };
    let plain = BatchNorm::new(4)?;
    plain.to_dtype(DType::F64)?;
    let (y_full, xg_full, _) = run(&plain, &x, &weights)?;
    let inner = BatchNorm::new(4)?;
    inner.to_dtype(DType::F64)?;
    let sync = SyncBatchNorm::new(inner, group);
    let mine = |t: &Tensor| t.narrow(0, rank * per, per);
    let (y, xg, _) = run(&sync, &mine(&x)?, &mine(&weights)?)?;
    let n = y.len();
    let mut diff = 0.0f64;
    for (a, b) in y.iter().zip(&y_full[rank * n..(rank + 1) * n]) {
        diff = diff.max((a - b).abs());
    }
    for (a, b) in xg.iter().zip(&xg_full[rank * n..(rank + 1) * n]) {
        diff = diff.max((a - b).abs());
    }
    let wg = sync.inner().weight.as_ref().and_then(|p| p.grad());
    if let Some(wg) = wg {
        group.all_reduce(&wg, sinew_dist::ReduceOp::Sum)?;
        let full = plain
            .weight
            .as_ref()
            .and_then(|p| p.grad())
            .map(|t| t.to_vec_f64())
            .transpose()?;
        for (a, b) in wg.to_vec_f64()?.iter().zip(full.unwrap_or_default()) {
            diff = diff.max((a - b).abs());
        }
    }
    let stats = |bn: &BatchNorm| -> Result<Vec<f64>> {
        let mut v = bn
            .running_mean
            .as_ref()
            .map(|b| b.value().to_vec_f64())
            .transpose()?
            .unwrap_or_default();
        v.extend(
            bn.running_var
                .as_ref()
                .map(|b| b.value().to_vec_f64())
                .transpose()?
                .unwrap_or_default(),
        );
        Ok(v)
    };
    for (a, b) in stats(sync.inner())?.iter().zip(stats(&plain)?) {
        diff = diff.max((a - b).abs());
    }
    let mut worst = [diff];
    group.all_reduce_f64(&mut worst, sinew_dist::ReduceOp::Max)?;
    if group.is_main() {
        println!(
            "syncbn: world size {world}, {per} images per rank vs {} in one BatchNorm: max difference {:.3e} (outputs, input and weight gradients, running statistics)",
            per * world,
            worst[0]
        );
    }
    Ok(worst[0] <= 1e-9)
}

/// `Trainer::fit` on sharded data with checkpoints (rank 0 writes), optionally resumed.
fn train(group: &ProcessGroup) -> Result<bool> {
    let dir = text_arg("--dir").unwrap_or_else(|| "target/dist-check".into());
    let data = Arc::new(points(600)?);
    let rank_sampler = DistributedSampler::new(group.rank(), group.world_size())?;
    let train = loader(&data, 16, Some(rank_sampler))?;
    let val = loader(&data, 64, Some(rank_sampler.without_padding()))?;
    let ddp = DistributedDataParallel::new(small_model(DType::F32)?, group)?;
    let opt = sgd(ddp.named_parameters(), SgdConfig::new(0.1).momentum(0.9));
    let mut trainer = Trainer::new(&ddp, opt, F::cross_entropy)
        .metric(accuracy())
        .verbosity(Verbosity::Auto)
        .checkpoint_every_epoch(&dir)
        .distributed(&ddp);
    if flag("--resume") {
        let epoch = trainer.resume(&dir)?;
        println!("rank {} resumed at epoch {epoch}", group.rank());
    }
    let history = trainer.fit(&train, Some(&val), arg("--epochs", 2))?;
    if let Some(acc) = history.get("val_accuracy").last() {
        println!("rank {} val_accuracy {acc:.6}", group.rank());
    }
    Ok(true)
}

/// `Trainer::predict` on sharded loaders (padded, unpadded, and with `drop_last`) against one
/// process predicting the whole loader: every rank must get all rows, in the same order.
fn predict(group: &ProcessGroup) -> Result<bool> {
    let data = Arc::new(points(arg("--examples", 101))?);
    let model = small_model(DType::F32)?;
    let whole = loader(&data, 7, None)?;
    let expected = Trainer::new(
        &model,
        sgd(model.named_parameters(), SgdConfig::new(0.1)),
        F::cross_entropy,
    )
    .predict(&whole)?
    .to_vec_f64()?;
    let sampler = DistributedSampler::new(group.rank(), group.world_size())?;
    let mut ok = true;
    for (name, sampler, drop_last) in [
        ("padded", sampler, false),
        ("unpadded", sampler.without_padding(), false),
        ("drop_last", sampler, true),
    ] {
        let mut sharded = loader(&data, 7, Some(sampler))?;
        if drop_last {
            let config = LoaderConfig {
                drop_last: true,
                ..sharded.config().clone()
            };
            sharded = DataLoader::new(data.clone(), config)?;
        }
        let opt = sgd(model.named_parameters(), SgdConfig::new(0.1));
        let got = Trainer::new(&model, opt, F::cross_entropy)
            .distributed(group)
            .predict(&sharded)?
            .to_vec_f64()?;
        let rows = got.len() / 3;
        let diff = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!(
            "rank {} predict {name} rows {rows} max_diff {diff:e}",
            group.rank()
        );
        // drop_last predicts a prefix of the sequence; the others all of it.
        ok &= diff <= 1e-6 && (drop_last || rows * 3 == expected.len()) && rows > 0;
    }
    Ok(ok)
}

/// One rank fails (exits, or stops answering) after `--after` steps; the others keep training.
fn failure(group: &ProcessGroup, hang: bool) -> Result<bool> {
    let (victim, after) = (arg("--rank", 1), arg("--after", 3));
    let ddp = mlp(group, 25.0)?;
    for step in 0.. {
        if group.rank() == victim && step == after {
            if hang {
                eprintln!("rank {victim}: stopping (simulated hang)");
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
            eprintln!("rank {victim}: exiting (simulated crash)");
            std::process::exit(3);
        }
        mlp_steps(&ddp, 8, 1)?;
    }
    Ok(true)
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let result = init_process_group().and_then(|group| {
        let ok = match mode.as_str() {
            "equality" => equality(&group),
            "timeline" => timeline(&group),
            "scaling" => scaling(&group),
            "train" => train(&group),
            "predict" => predict(&group),
            "syncbn" => syncbn(&group),
            "collectives" => collectives(&group),
            "die" => failure(&group, false),
            "hang" => failure(&group, true),
            other => {
                eprintln!("unknown mode {other:?}: equality, collectives, timeline, scaling, syncbn, train, predict, die or hang");
                Ok(false)
            }
        }?;
        Ok((ok, group))
    });
    match result {
        Ok((true, _group)) => {}
        Ok((false, _)) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
