//! `trace [--model NAME] [--batch N] [--mixed] [--steps N]` (GPU builds): one training step at a
//! time on `cuda:0`, each phase (batch upload, forward and loss, backward, optimizer, the
//! `loss.item()` read) timed on the stream with CUDA events and next to the host time the phase
//! took to queue, the kernels it launched and the host's waits for the stream it made
//! (`CudaBackend::stream_synchronizations`; both of the last traced step). A phase whose host
//! time matches its stream time made the host wait too; in a sync-free step only `item` does. Issue 14's event-timer trace of one
//! ResNet step: `sinew-devtools trace --model resnet18 --batch 128`.

/// Parses the options and prints the trace (an error without the `cuda` feature or a GPU).
pub fn run(args: &[String]) -> Result<(), String> {
    let mut model = "resnet18".to_string();
    let (mut batch, mut steps, mut mixed) = (128usize, 5usize, false);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("trace: {arg} needs a value"))
        };
        match arg.as_str() {
            "--model" => model = value()?,
            "--batch" => {
                batch = value()?
                    .parse()
                    .map_err(|e| format!("trace: --batch: {e}"))?
            }
            "--steps" => {
                steps = value()?
                    .parse()
                    .map_err(|e| format!("trace: --steps: {e}"))?
            }
            "--mixed" => mixed = true,
            _ => {
                return Err(format!(
                    "trace: unknown option {arg:?}; usage: trace [--model mlp|lenet5|resnet18|vgg16] \
                     [--batch N] [--steps N] [--mixed]"
                ));
            }
        }
    }
    if batch == 0 || steps == 0 {
        return Err("trace: --batch and --steps must be positive".into());
    }
    imp::trace(&model, batch, steps, mixed)
}

#[cfg(not(feature = "cuda"))]
mod imp {
    pub fn trace(_: &str, _: usize, _: usize, _: bool) -> Result<(), String> {
        Err("trace: needs a GPU build (`cargo run --release -p sinew-devtools --features cuda -- trace`)".into())
    }
}

#[cfg(feature = "cuda")]
mod imp {
    use std::time::Instant;

    use sinew_cuda::CudaBackend;
    use sinew_nn::ModuleExt;
    use sinew_nn::functional::cross_entropy;
    use sinew_optim::Optimizer;
    use sinew_tensor::{Device, Generator, autocast};

    use crate::gpu_workloads::{half_type, mixed_scope, model_on, sgd_and_scaler};

    const PHASES: [&str; 5] = [
        "upload",
        "forward+loss",
        "backward",
        "optimizer",
        "loss.item",
    ];

    pub fn trace(model: &str, batch: usize, steps: usize, mixed: bool) -> Result<(), String> {
        let fail = |e: sinew_tensor::Error| format!("trace: {e}");
        sinew_cuda::register();
        let gpu = Device::cuda(0).map_err(fail)?;
        let cuda = CudaBackend::of(&gpu).ok_or("trace: cuda:0 is not a CUDA device")?;
        let mut g = Generator::new(0);
        let cpu = Device::cpu();
        // The batch stays on the host: its upload is the first traced phase.
        let (net, x) = model_on("trace", model, batch, &cpu, &mut g).map_err(fail)?;
        net.to_device(&gpu).map_err(fail)?;
        let y = g.randint([batch], 0, 10, &cpu).map_err(fail)?;
        let (mut opt, mut scaler) = sgd_and_scaler(net.as_ref(), &gpu, mixed);
        let half = half_type(&gpu);
        let mut host = vec![0.0f64; PHASES.len()];
        let mut stream = vec![0.0f64; PHASES.len()];
        let mut kernels = vec![0u64; PHASES.len()];
        let mut syncs = vec![0u64; PHASES.len()];
        let traced = steps;
        // Traced steps the loss scaler skipped (inf/NaN gradients: the optimizer's kernels ran
        // and wrote nothing).
        let mut skipped = 0;
        // The weights the last forward pass cast, cast ahead in the next (as the Trainer does).
        let mut casts = Vec::new();
        for step in 0..3 + traced {
            let scale = scaler.scale_value().map_err(fail)?;
            let mut timer = cuda.timer().map_err(fail)?;
            let mut marks = Vec::with_capacity(PHASES.len());
            let mut launched = Vec::with_capacity(PHASES.len());
            let mut waited = Vec::with_capacity(PHASES.len());
            let mut t = Instant::now();
            let mut launches = cuda.kernel_launches();
            let mut waits = cuda.stream_synchronizations();
            let mut lap = |timer: &mut sinew_cuda::EventTimer, label: &str| {
                timer.lap(cuda, label).map_err(fail)?;
                marks.push(t.elapsed().as_secs_f64() * 1e3);
                launched.push(cuda.kernel_launches() - launches);
                waited.push(cuda.stream_synchronizations() - waits);
                t = Instant::now();
                launches = cuda.kernel_launches();
                waits = cuda.stream_synchronizations();
                Ok::<(), String>(())
            };
            let (xs, ys) = (
                x.to_device(&gpu).map_err(fail)?,
                y.to_device(&gpu).map_err(fail)?,
            );
            lap(&mut timer, PHASES[0])?;
            opt.zero_grad();
            let loss = {
                let _autocast = mixed_scope(mixed, half, &casts).map_err(fail)?;
                let loss = cross_entropy(&net.forward(&xs).map_err(fail)?, &ys).map_err(fail)?;
                casts = autocast::cached_sources();
                loss
            };
            lap(&mut timer, PHASES[1])?;
            scaler.backward(&loss).map_err(fail)?;
            lap(&mut timer, PHASES[2])?;
            scaler.step(&mut opt).map_err(fail)?;
            scaler.update();
            lap(&mut timer, PHASES[3])?;
            let value = loss.item().map_err(fail)?;
            lap(&mut timer, PHASES[4])?;
            let laps = timer.laps().map_err(fail)?;
            // The flag came back in loss.item()'s wait: reading the new scale waits for nothing.
            if step >= 3 && scaler.scale_value().map_err(fail)? < scale {
                skipped += 1;
            }
            if step >= 3 {
                for (k, (_, ms)) in laps.iter().enumerate() {
                    host[k] += marks[k] / traced as f64;
                    stream[k] += f64::from(*ms) / traced as f64;
                    kernels[k] = launched[k];
                    syncs[k] = waited[k];
                }
            }
            if step + 1 == 3 + traced {
                println!("last loss {value:.4}");
            }
        }
        let precision = if mixed { "mixed" } else { "f32" };
        println!(
            "{model} b{batch} {precision} on {gpu} ({}), mean of {traced} steps after 3 warm-up:",
            cuda.name()
        );
        println!(
            "{:<14} {:>12} {:>12} {:>8} {:>6}",
            "phase", "host ms", "stream ms", "kernels", "syncs"
        );
        for (k, phase) in PHASES.iter().enumerate() {
            println!(
                "{phase:<14} {:>12.3} {:>12.3} {:>8} {:>6}",
                host[k], stream[k], kernels[k], syncs[k]
            );
        }
        println!(
            "{:<14} {:>12.3} {:>12.3} {:>8} {:>6}",
            "step",
            host.iter().sum::<f64>(),
            stream.iter().sum::<f64>(),
            kernels.iter().sum::<u64>(),
            syncs.iter().sum::<u64>()
        );
        if mixed {
            println!("steps skipped by the loss scaler: {skipped} of {traced}");
        }
        println!("memory: {:?}", cuda.memory_stats());
        Ok(())
    }
}
