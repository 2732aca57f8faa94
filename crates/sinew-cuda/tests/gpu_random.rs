//! Counter-based random numbers on the GPU: the Philox kernel gives the CPU's bits, so dropout
//! masks (`Generator::keep_mask`) are the same on both devices for the same seed.

#![cfg(feature = "cuda")]

mod common;

use common::{gpu, poison};
use sinew_tensor::{DType, Device, Generator, Tensor};

#[test]
#[ignore = "needs a CUDA GPU"]
fn philox_uniforms_equal_the_cpu_bits() {
    let dev = gpu();
    let cpu = Device::cpu();
    // Empty, inside one block, a partial last block, and more blocks than one grid pass.
    for (len, key) in [(0, 1), (3, 2), (5, 0xDEAD_BEEF), ((1 << 22) + 7, u64::MAX)] {
        poison(&dev, len * 4);
        let on_gpu = Tensor::philox_uniform([len], key, &dev).unwrap();
        assert_eq!(on_gpu.device(), &dev);
        let on_gpu = on_gpu.to_vec::<f32>().unwrap();
        let on_cpu = Tensor::philox_uniform([len], key, &cpu)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let mismatches = on_gpu
            .iter()
            .zip(&on_cpu)
            .filter(|(g, c)| g.to_bits() != c.to_bits())
            .count();
        println!("philox len {len} key {key:#x}: {mismatches} mismatches");
        assert_eq!(mismatches, 0, "len {len}, key {key:#x}");
        assert!(on_gpu.iter().all(|u| (0.0..1.0).contains(u)));
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn dropout_masks_are_the_same_on_both_devices() {
    let dev = gpu();
    for (dtype, keep) in [(DType::F32, 0.9), (DType::F16, 0.5), (DType::BF16, 0.2)] {
        let shape = [64, 3, 17, 19];
        let on_gpu = Generator::new(11)
            .keep_mask(shape, keep, dtype, &dev)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let on_cpu = Generator::new(11)
            .keep_mask(shape, keep, dtype, &Device::cpu())
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(on_gpu, on_cpu, "{dtype} keep {keep}");
        let kept = on_gpu.iter().filter(|&&m| m == 1.0).count() as f64 / on_gpu.len() as f64;
        println!("keep_mask {dtype} keep {keep}: kept {kept:.4} on both devices");
        assert!((kept - keep).abs() < 0.01);
    }
}
