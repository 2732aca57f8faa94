//! The kernels that promise the CPU backend's values bit for bit (the in-place optimizer
//! building blocks, the fused optimizer steps, batch norm's statistics) must round every
//! product on its own: a plain `mul.f32` / `mul.f64` in PTX lets `ptxas` merge it with the add
//! that follows into an FMA on the GPU (one rounding instead of two), which the CPU never does
//! and the emulator, compiled without contraction, cannot show. These tests read the committed
//! PTX and fail on any such product or explicit FMA in those kernels.

use std::path::PathBuf;

/// The committed PTX of the kernel family `file` (`kernels/<file>.ptx`).
fn ptx(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("kernels")
        .join(format!("{file}.ptx"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Each `.entry` of `text`: its name and its body (up to the next entry or device function,
/// such as the `pow` a kernel calls: a checked kernel may call none, see [`assert_rounded`]).
fn entries(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(".entry ") {
        let after = &rest[at + ".entry ".len()..];
        let name_end = after.find('(').unwrap_or(after.len());
        let body_end = [".entry ", ".func "]
            .iter()
            .filter_map(|marker| after.find(marker))
            .min()
            .unwrap_or(after.len());
        out.push((after[..name_end].trim(), &after[..body_end]));
        rest = &after[body_end..];
    }
    out
}

/// The float instructions of `body` that may round differently from the CPU: products without
/// an explicit rounding mode (contractible into an FMA) and FMAs.
fn contractible(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|line| {
            let opcode = line.split_whitespace().next()?;
            let float = opcode.ends_with(".f32") || opcode.ends_with(".f64");
            let plain_mul = opcode.starts_with("mul.") && !opcode.contains(".rn");
            let fused = opcode.starts_with("fma.") || opcode.starts_with("mad.");
            (float && (plain_mul || fused)).then(|| line.trim().to_string())
        })
        .collect()
}

/// Asserts that the entries of `file` whose names start with one of `prefixes` exist (one per
/// float dtype at least), hold no contractible product and call no device function.
fn assert_rounded(file: &str, prefixes: &[&str]) {
    let text = ptx(file);
    let all = entries(&text);
    for prefix in prefixes {
        let chosen: Vec<_> = all
            .iter()
            .filter(|(name, _)| {
                name.strip_prefix(prefix)
                    .is_some_and(|dtype| ["f32", "f64", "f16", "bf16"].contains(&dtype))
            })
            .collect();
        assert!(
            !chosen.is_empty(),
            "{file}.ptx has no {prefix}<dtype> kernel"
        );
        for (name, body) in chosen {
            let bad = contractible(body);
            assert!(bad.is_empty(), "{file}.ptx {name}: {bad:?}");
            // A called device function's products would escape the check.
            let calls = body.lines().any(|l| l.trim_start().starts_with("call"));
            assert!(!calls, "{file}.ptx {name} calls a device function");
        }
    }
}

#[test]
fn fused_optimizer_steps_round_every_product() {
    let steps = [
        "sgd", "adam", "adamax", "adagrad", "rmsprop", "adadelta", "nadam", "radam",
    ];
    // Each step over one parameter and over a table of them.
    let mut prefixes: Vec<String> = steps.iter().map(|s| format!("fused_{s}_")).collect();
    prefixes.extend(steps.iter().map(|s| format!("fused_{s}_many_")));
    prefixes.push("amp_unscale_".to_string());
    prefixes.push("amp_unscale_many_".to_string());
    // Adafactor's three stages (their f64 sums, in another order than the CPU's, do not promise
    // its bits, but no product is contracted).
    for stage in ["moments", "norm", "apply"] {
        prefixes.push(format!("adafactor_{stage}_"));
    }
    // Gradient clipping's scaling (its norm, summed in another order than the CPU's, does not
    // promise the CPU's bits).
    prefixes.push("mul_many_".to_string());
    // Weight averaging's update (the tensor ops' values).
    prefixes.push("average_many_".to_string());
    let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    assert_rounded("fused_step", &prefixes);
}

#[test]
fn in_place_optimizer_ops_round_every_product() {
    assert_rounded(
        "inplace",
        &[
            "inplace_axpy_",
            "inplace_lerp_",
            "inplace_addcmul_",
            "inplace_addcdiv_",
            "inplace_mul_axpy_",
            "inplace_mul_addcmul_",
            "inplace_addcdiv_sqrt_",
            "inplace_mul_max_abs_",
        ],
    );
}

#[test]
fn batch_norm_statistics_round_every_product() {
    assert_rounded(
        "channel",
        &[
            "channel_norm_forward_",
            "channel_norm_backward_",
            "running_stats_",
        ],
    );
}

#[test]
fn the_checker_finds_a_contractible_product() {
    let body = "\tmul.f32 \t%f3, %f1, %f2;\n\tadd.f32 \t%f4, %f3, %f0;\n\
                \tmul.rn.f64 \t%fd3, %fd1, %fd2;\n\tfma.rn.f64 \t%fd4, %fd1, %fd2, %fd3;\n\
                \tmul.lo.s32 \t%r1, %r2, %r3;";
    assert_eq!(
        contractible(body),
        [
            "mul.f32 \t%f3, %f1, %f2;",
            "fma.rn.f64 \t%fd4, %fd1, %fd2, %fd3;"
        ]
    );
}
