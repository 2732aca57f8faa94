//! TMA tensor maps (`CUtensorMap`) for the Hopper GEMM, encoded by the driver's
//! `cuTensorMapEncodeTiled` (CUDA 12), which cust's CUDA 11 bindings lack: it is looked up once
//! by name through `cuGetProcAddress`. A driver without it, or one that rejects a map, leaves
//! the GEMM to the `mma.sync` kernel.

use std::ffi::{CStr, c_void};
use std::sync::OnceLock;

use cust::sys::CUresult;

/// The 128 opaque bytes of a `CUtensorMap`, 64-byte aligned as the driver and the kernel
/// parameter (`const __grid_constant__ TensorMap` in `cuda/gemm_sm90.cu`) require.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub(super) struct TensorMap([u64; 16]);

/// One 3-D tensor of 16-bit elements to describe: sizes and byte strides innermost first (the
/// innermost stride is the element's 2 bytes), and the box one load copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TiledView {
    /// Device address of element (0, 0, 0).
    pub(super) address: u64,
    /// Elements along each dimension, innermost first.
    pub(super) dims: [u64; 3],
    /// Byte strides of dimensions 1 and 2.
    pub(super) strides: [u64; 2],
    /// Elements one load copies along each dimension.
    pub(super) boxed: [u32; 3],
}

/// `cuTensorMapEncodeTiled`'s C signature (enums as their 32-bit values).
type EncodeTiled = unsafe extern "C" fn(
    *mut TensorMap,
    u32,
    u32,
    *mut c_void,
    *const u64,
    *const u64,
    *const u32,
    *const u32,
    u32,
    u32,
    u32,
    u32,
) -> CUresult;

/// `CU_TENSOR_MAP_DATA_TYPE_UINT16`: TMA only moves bytes, so f16 and bf16 alike.
const DATA_TYPE_U16: u32 = 1;
/// `CU_TENSOR_MAP_SWIZZLE_128B`: the 16-byte chunks of each 128-byte row XOR its row (of 8).
const SWIZZLE_128B: u32 = 3;
/// `CU_TENSOR_MAP_L2_PROMOTION_L2_256B`.
const L2_PROMOTION_256B: u32 = 3;

/// The driver's `cuTensorMapEncodeTiled`, or why there is none.
fn encoder() -> Result<EncodeTiled, String> {
    static ENCODER: OnceLock<Result<usize, String>> = OnceLock::new();
    let found = ENCODER.get_or_init(|| {
        const NAME: &CStr = c"cuTensorMapEncodeTiled";
        let mut pointer: *mut c_void = std::ptr::null_mut();
        // SAFETY: NAME is a NUL-terminated string and `pointer` a valid place for the answer;
        // 12000 asks for the CUDA 12.0 version of the entry point, flags 0 the default search.
        let code = unsafe { cust::sys::cuGetProcAddress(NAME.as_ptr(), &mut pointer, 12000, 0) };
        if code != CUresult::CUDA_SUCCESS || pointer.is_null() {
            return Err(format!(
                "the driver has no cuTensorMapEncodeTiled ({code:?})"
            ));
        }
        Ok(pointer as usize)
    });
    let address = found.clone()?;
    // SAFETY: the driver returned this address for cuTensorMapEncodeTiled, whose CUDA 12.0
    // signature EncodeTiled restates (its enum parameters are 32-bit C enums).
    Ok(unsafe { std::mem::transmute::<usize, EncodeTiled>(address) })
}

/// The tensor map of `view` with 128-byte swizzling and zeros for loads outside the tensor, or
/// why the driver would not encode it (an alignment or stride it does not take).
pub(super) fn encode(view: &TiledView) -> Result<TensorMap, String> {
    let encode_tiled = encoder()?;
    let mut map = TensorMap([0; 16]);
    let element_strides = [1u32; 3];
    // SAFETY: `map` is a 64-byte aligned 128-byte CUtensorMap to write; the arrays hold the
    // rank's 3 sizes, 2 strides, 3 box sizes and 3 element strides the call reads. The driver
    // checks the address, sizes and strides itself and answers an error for what it rejects.
    let code = unsafe {
        encode_tiled(
            &mut map,
            DATA_TYPE_U16,
            3,
            view.address as *mut c_void,
            view.dims.as_ptr(),
            view.strides.as_ptr(),
            view.boxed.as_ptr(),
            element_strides.as_ptr(),
            0,
            SWIZZLE_128B,
            L2_PROMOTION_256B,
            0,
        )
    };
    if code != CUresult::CUDA_SUCCESS {
        return Err(format!(
            "cuTensorMapEncodeTiled rejected {view:?} ({code:?})"
        ));
    }
    Ok(map)
}
