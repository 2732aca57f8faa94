//! DistributedDataParallel in a world of one (no launcher needed): names, buckets, no_sync,
//! unused parameters, and the trainer's reductions. The multi-process runs are in `mpirun.rs`.

use std::sync::Arc;

use sinew_data::{DataLoader, LoaderConfig, Sample, VecDataset};
use sinew_dist::{DdpConfig, DistributedDataParallel, ProcessGroup};
use sinew_nn::{Linear, Module, ModuleExt, ReLU, Sequential, Visit, functional as F};
use sinew_optim::{SgdConfig, sgd};
use sinew_tensor::{Result, Tensor, manual_seed};
use sinew_train::{Trainer, Verbosity, metrics::accuracy};

fn mlp() -> Sequential {
    manual_seed(0);
    Sequential::new()
        .append(Linear::new(4, 8).unwrap())
        .append(ReLU)
        .append(Linear::new(8, 3).unwrap())
}

fn input() -> Tensor {
    Tensor::from_vec((0..8).map(|i| i as f32 / 4.0 - 1.0).collect(), [2, 4]).unwrap()
}

#[test]
fn names_are_the_wrapped_modules_and_buckets_run_last_layer_first() {
    let group = ProcessGroup::single().unwrap();
    let plain: Vec<String> = mlp().state_dict().keys().map(String::from).collect();
    // f32 bytes, last layer first: 2.bias 12, 2.weight 96, 0.bias 32 (140 in all), then
    // 0.weight 128 would pass the 150-byte cap and opens a second bucket.
    let config = DdpConfig {
        bucket_cap_mb: 150.0 / (1024.0 * 1024.0),
        ..Default::default()
    };
    let ddp = DistributedDataParallel::with_config(mlp(), &group, config).unwrap();
    let wrapped: Vec<String> = ddp.state_dict().keys().map(String::from).collect();
    assert_eq!(wrapped, plain);
    assert_eq!(
        ddp.buckets(),
        vec![
            vec![
                "2.bias".to_string(),
                "2.weight".to_string(),
                "0.bias".to_string()
            ],
            vec!["0.weight".to_string()],
        ]
    );
    let bad = DdpConfig {
        bucket_cap_mb: 0.0,
        ..Default::default()
    };
    assert!(DistributedDataParallel::with_config(mlp(), &group, bad).is_err());
}

#[test]
fn the_first_bucket_is_small_so_communication_starts_early() {
    let group = ProcessGroup::single().unwrap();
    let model = Sequential::new()
        .append(Linear::new(784, 512).unwrap())
        .append(ReLU)
        .append(Linear::new(512, 512).unwrap())
        .append(ReLU)
        .append(Linear::new(512, 10).unwrap());
    let ddp = DistributedDataParallel::new(model, &group).unwrap();
    // 4.* and 2.bias come to 22.5 KB; adding 2.weight (1 MiB) would pass the first bucket's
    // 1 MiB cap, and everything else fits the 25 MiB default.
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ddp.buckets(),
        vec![
            names(&["4.bias", "4.weight", "2.bias"]),
            names(&["2.weight", "0.bias", "0.weight"]),
        ]
    );
}

#[test]
fn gradients_match_the_plain_model_and_no_sync_accumulates() {
    let group = ProcessGroup::single().unwrap();
    let plain = mlp();
    plain
        .forward(&input())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    // Tests run in parallel and share the default generator: copy the weights, not the seed.
    let twin = mlp();
    twin.load_state_dict(&plain.state_dict(), true).unwrap();
    let ddp = DistributedDataParallel::new(twin, &group).unwrap();
    {
        let _local = ddp.no_sync();
        ddp.forward(&input())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
    }
    ddp.forward(&input())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for ((name, p), (_, q)) in plain.named_parameters().iter().zip(ddp.named_parameters()) {
        let once = p.grad().unwrap().to_vec::<f32>().unwrap();
        let twice = q.grad().unwrap().to_vec::<f32>().unwrap();
        for (a, b) in once.iter().zip(&twice) {
            assert!(
                (2.0 * a - b).abs() < 1e-5,
                "{name}: {a} accumulated twice is not {b}"
            );
        }
    }
    // The averaged gradients are views of one bucket (one bucket holds this small model).
    let grads: Vec<Tensor> = ddp
        .named_parameters()
        .iter()
        .map(|(_, p)| p.grad().unwrap())
        .collect();
    assert!(grads.iter().all(|g| g.same_storage(&grads[0])));
    let timeline = ddp.last_step_timeline();
    assert_eq!(
        timeline.first().map(|e| &e.1),
        Some(&sinew_dist::StepEvent::Forward)
    );
    assert_eq!(
        timeline.last().map(|e| &e.1),
        Some(&sinew_dist::StepEvent::Synced)
    );
}

/// Two layers, only the first used in forward.
struct HalfUsed {
    used: Linear,
    unused: Linear,
}

impl Module for HalfUsed {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.used.forward(x)
    }
    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.child("used", &self.used);
        v.child("unused", &self.unused);
    }
}

#[test]
fn an_unused_parameter_is_reported_and_finish_gradient_sync_completes_the_step() {
    let group = ProcessGroup::single().unwrap();
    let model = HalfUsed {
        used: Linear::new(4, 2).unwrap(),
        unused: Linear::new(4, 2).unwrap(),
    };
    let ddp = DistributedDataParallel::new(model, &group).unwrap();
    ddp.forward(&input())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let err = ddp.forward(&input()).unwrap_err().to_string();
    assert!(
        err.contains("unused.weight") && err.contains("finish_gradient_sync"),
        "{err}"
    );
    ddp.forward(&input())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    ddp.finish_gradient_sync().unwrap();
    let unused = ddp.module().unused.weight.grad().unwrap();
    assert_eq!(unused.to_vec::<f32>().unwrap(), vec![0.0; 8]);
    ddp.forward(&input()).unwrap(); // a clean step again
}

#[test]
fn a_second_backward_through_the_graph_synchronises_again() {
    let group = ProcessGroup::single().unwrap();
    let ddp = DistributedDataParallel::new(mlp(), &group).unwrap();
    let loss = ddp.forward(&input()).unwrap().sum_all().unwrap();
    let keep = sinew_tensor::BackwardOptions {
        retain_graph: true,
        ..Default::default()
    };
    loss.backward_with(None, keep).unwrap();
    let once = ddp.module().named_parameters()[0]
        .1
        .grad()
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    // The first backward completed its step, so the second is a step of its own: every rank
    // runs it, and the accumulated gradients are averaged again.
    loss.backward_with(None, keep).unwrap();
    let twice = ddp.module().named_parameters()[0]
        .1
        .grad()
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    for (a, b) in once.iter().zip(&twice) {
        assert!((2.0 * a - b).abs() < 1e-5);
    }
}

#[test]
fn the_trainer_in_a_world_of_one_logs_what_it_logs_alone() {
    let rows: Vec<Sample> = (0..60)
        .map(|i| {
            let x = i as f32 / 30.0 - 1.0;
            Sample::features(
                vec![x, 1.0 - x, x * x, 0.5],
                i64::from(x > 0.0) + i64::from(x > 0.5),
            )
        })
        .collect();
    let config = LoaderConfig {
        batch_size: 16,
        shuffle: true,
        num_workers: 0,
        ..Default::default()
    };
    let data = DataLoader::new(Arc::new(VecDataset::new(rows)), config).unwrap();
    let initial = mlp().state_dict();
    let run = |distributed: bool| {
        let model = mlp();
        model.load_state_dict(&initial, true).unwrap();
        let group = ProcessGroup::single().unwrap();
        let ddp = DistributedDataParallel::new(model, &group).unwrap();
        let opt = sgd(ddp.named_parameters(), SgdConfig::new(0.1));
        let mut trainer = Trainer::new(&ddp, opt, F::cross_entropy)
            .metric(accuracy())
            .verbosity(Verbosity::Silent);
        if distributed {
            trainer = trainer.distributed(&ddp);
        }
        trainer.fit(&data, Some(&data), 3).unwrap()
    };
    let (alone, reduced) = (run(false), run(true));
    for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
        assert_eq!(alone.get(key), reduced.get(key), "{key}");
    }
    assert!(alone.get("val_accuracy").last().copied().unwrap() > 0.5);
}
