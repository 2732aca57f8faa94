// GEMM kernels for f16/bf16 operands writing f32 (MatmulSpec::out_dtype): accumulated in f32 as
// always, stored without rounding. matmul_<f16|bf16>_f32 (general) and matmul_fast_<f16|bf16>_f32
// (tile multiples). The bodies and the argument struct are in gemm.cuh.
#include "gemm.cuh"

extern "C" __global__ void __launch_bounds__(256, 2) matmul_f16_f32(const __half *A, const __half *B, float *C, GemmArgs p) {
    tc::gemm<__half, float>(A, B, C, p);
}

extern "C" __global__ void __launch_bounds__(256, 2)
    matmul_bf16_f32(const __nv_bfloat16 *A, const __nv_bfloat16 *B, float *C, GemmArgs p) {
    tc::gemm<__nv_bfloat16, float>(A, B, C, p);
}

extern "C" __global__ void __launch_bounds__(128, 2)
    matmul_fast_f16_f32(const __half *A, const __half *B, float *C, GemmArgs p) {
    tcf::dispatch<__half, float>(A, B, C, p);
}

extern "C" __global__ void __launch_bounds__(128, 2)
    matmul_fast_bf16_f32(const __nv_bfloat16 *A, const __nv_bfloat16 *B, float *C, GemmArgs p) {
    tcf::dispatch<__nv_bfloat16, float>(A, B, C, p);
}
