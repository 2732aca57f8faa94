//! The committed PTX of every kernel family, embedded in the binary.
//!
//! Generated from `cuda/<family>.cu` by `cargo xtask kernels` (nvcc 13.0, compute_80, PTX ISA 9.0;
//! `gemm_sm90` compute_90a); CI regenerates and compares byte for byte. Modules are loaded
//! lazily, per device, on first use.

use crate::names::Family;

/// `(family, PTX text)` for every kernel module, in [`Family::ALL`] order.
pub const MODULES: [(Family, &str); 19] = [
    (Family::Unary, include_str!("../kernels/unary.ptx")),
    (Family::Binary, include_str!("../kernels/binary.ptx")),
    (Family::Compare, include_str!("../kernels/compare.ptx")),
    (Family::Cast, include_str!("../kernels/cast.ptx")),
    (Family::Reduce, include_str!("../kernels/reduce.ptx")),
    (Family::Softmax, include_str!("../kernels/softmax.ptx")),
    (Family::Gemm, include_str!("../kernels/gemm.ptx")),
    (Family::GemmMixed, include_str!("../kernels/gemm_mixed.ptx")),
    (Family::Index, include_str!("../kernels/index.ptx")),
    (Family::Conv, include_str!("../kernels/conv.ptx")),
    (Family::Inplace, include_str!("../kernels/inplace.ptx")),
    (Family::Random, include_str!("../kernels/random.ptx")),
    (Family::Channel, include_str!("../kernels/channel.ptx")),
    (Family::Xent, include_str!("../kernels/xent.ptx")),
    (Family::ConvGemm, include_str!("../kernels/conv_gemm.ptx")),
    (Family::ConvWgrad, include_str!("../kernels/conv_wgrad.ptx")),
    (Family::SortedSum, include_str!("../kernels/sorted_sum.ptx")),
    (Family::GemmSm90, include_str!("../kernels/gemm_sm90.ptx")),
    (Family::FusedStep, include_str!("../kernels/fused_step.ptx")),
];

/// The PTX text of a family's module.
pub fn ptx(family: Family) -> &'static str {
    MODULES[family.index()].1
}

/// Names of the kernel entry points (`.entry <name>(`) in a PTX text.
pub fn entry_names(ptx: &str) -> Vec<&str> {
    ptx.lines()
        .filter_map(|l| {
            l.trim_start()
                .strip_prefix(".visible .entry ")
                .or_else(|| l.trim_start().strip_prefix(".entry "))
        })
        .filter_map(|rest| rest.split('(').next())
        .map(str::trim)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::every_kernel;

    #[test]
    fn module_table_is_in_family_order() {
        for (i, (family, text)) in MODULES.iter().enumerate() {
            assert_eq!(family.index(), i);
            assert!(
                text.contains(".version 9.0"),
                "{} PTX is not ISA 9.0",
                family.file_stem()
            );
            // Hopper-only instructions need sm_90a; everything else runs from the A100 on.
            let target = if *family == Family::GemmSm90 {
                ".target sm_90a"
            } else {
                ".target sm_80"
            };
            assert!(
                text.contains(target),
                "{} PTX lacks {target}",
                family.file_stem()
            );
        }
    }

    #[test]
    fn ptx_has_every_kernel() {
        let kernels = every_kernel();
        assert!(kernels.len() > 400, "only {} kernels", kernels.len());
        // The in-place family covers every InplaceOp variant for every float dtype.
        for dtype in ["f32", "f64", "f16", "bf16"] {
            for stem in [
                "inplace_binary_add",
                "inplace_unary_clamp",
                "inplace_axpy",
                "inplace_addcmul",
                "inplace_addcdiv",
                "inplace_lerp",
            ] {
                let name = format!("{stem}_{dtype}");
                assert!(
                    kernels.iter().any(|k| k.name() == name),
                    "{name} not listed"
                );
            }
        }
        let missing: Vec<_> = kernels
            .iter()
            .filter(|k| !entry_names(ptx(k.family)).contains(&k.name().as_str()))
            .map(|k| format!("{k} (in {}.ptx)", k.family.file_stem()))
            .collect();
        assert!(
            missing.is_empty(),
            "kernels missing from the embedded PTX: {missing:?}"
        );
    }

    #[test]
    fn every_cu_file_has_a_module() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cuda");
        let mut stems: Vec<String> = std::fs::read_dir(&dir)
            .expect("cuda/ folder")
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                (p.extension()? == "cu").then(|| p.file_stem()?.to_str().map(String::from))?
            })
            .collect();
        stems.sort();
        let mut families: Vec<String> = Family::ALL
            .iter()
            .map(|f| f.file_stem().to_string())
            .collect();
        families.sort();
        assert_eq!(stems, families);
    }
}
