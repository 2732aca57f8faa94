// GEMM kernels writing the operands' dtype, one per dtype for every shape and layout: matmul_f32
// (SIMT), matmul_f16 / matmul_bf16 (tensor cores) and matmul_f64; and matmul_tf32_f32 (f32 on the
// tensor cores with TF32 inputs, when allowed). Bodies and the argument struct are in gemm.cuh,
// gemm_tc.cuh and tf32_tc.cuh.
#include "tf32_tc.cuh"

extern "C" __global__ void __launch_bounds__(256, 2) matmul_f32(const float *A, const float *B, float *C, GemmArgs p) {
    if (p.edge)
        simt_fast_gemm<true>(A, B, C, p);
    else
        simt_fast_gemm<false>(A, B, C, p);
}

extern "C" __global__ void __launch_bounds__(256) matmul_f64(const double *A, const double *B, double *C, GemmArgs p) {
    simt_gemm<double>(A, B, C, p);
}

// Two blocks per SM so one block's loads overlap the other's MMAs.
extern "C" __global__ void __launch_bounds__(128, 2) matmul_f16(const __half *A, const __half *B, __half *C, GemmArgs p) {
    tcf::dispatch<__half, __half>(A, B, C, p);
}

extern "C" __global__ void __launch_bounds__(128, 2)
    matmul_bf16(const __nv_bfloat16 *A, const __nv_bfloat16 *B, __nv_bfloat16 *C, GemmArgs p) {
    tcf::dispatch<__nv_bfloat16, __nv_bfloat16>(A, B, C, p);
}

extern "C" __global__ void __launch_bounds__(128, 2)
    matmul_tf32_f32(const float *A, const float *B, float *C, GemmArgs p) {
    ctf::dispatch(A, B, C, p);
}
