//! The fixed per-op cost (issue 13: "small work must stay cheap"): ops on 1-element f32
//! tensors, timed in batches of [`OPS`] calls, through plain `Tensor` (no gradient), through
//! autograd (inputs that require a gradient, so every call also records a graph node), and a
//! backward pass of a tiny graph. They have no PyTorch counterpart in the reference script.
//!
//! Each line's `median` is the time of one batch of [`OPS`] calls in ms, which is also the time
//! of one call in µs; the throughput column gives the same as `ns/op`.

use sinew_tensor::{Result, Tensor};

use crate::cpu_workloads::{Stats, format_line, timeit};

/// Calls per timed batch.
pub const OPS: usize = 1000;

/// The workload names.
pub const NAMES: [&str; 5] = [
    "op1 add tensor",
    "op1 relu tensor",
    "op1 add autograd",
    "op1 relu autograd",
    "op1 backward",
];

/// The output line of a batch timing `s` of [`OPS`] calls.
fn line(name: &str, s: Stats) -> String {
    let ns = s.median * 1e6 / OPS as f64;
    format_line(name, s, &format!("{ns:.1} ns/op"))
}

/// Times `f` ([`OPS`] calls per batch) with 20 warm-up and 200 timed batches.
fn batches(name: &str, mut f: impl FnMut() -> Result<()>) -> Result<String> {
    let s = timeit(
        || {
            for _ in 0..OPS {
                f()?;
            }
            Ok(())
        },
        20,
        200,
    )?;
    Ok(line(name, s))
}

/// Runs workload `name` (one of [`NAMES`]); `None` for another name.
pub fn run(name: &str) -> Option<Result<String>> {
    let a = Tensor::from_vec(vec![0.5f32], [1]);
    let b = Tensor::from_vec(vec![-0.25f32], [1]);
    let (a, b) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Some(Err(e)),
    };
    let (ga, gb) = (a.clone().requires_grad_(), b.clone().requires_grad_());
    Some(match name {
        "op1 add tensor" => batches(name, || a.add(&b).map(drop)),
        "op1 relu tensor" => batches(name, || a.relu().map(drop)),
        "op1 add autograd" => batches(name, || ga.add(&gb).map(drop)),
        "op1 relu autograd" => batches(name, || ga.relu().map(drop)),
        // Three ops and their backward: mul, relu, sum, then the two leaves' gradients.
        "op1 backward" => batches(name, || {
            let loss = ga.mul(&gb)?.relu()?.sum_all()?;
            loss.backward()?;
            ga.zero_grad();
            gb.zero_grad();
            Ok(())
        }),
        _ => return None,
    })
}
