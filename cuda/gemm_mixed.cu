// GEMM kernels for f16/bf16 operands writing f32 (MatmulSpec::out_dtype): accumulated in f32 as
// always, stored without rounding. matmul_f16_f32 and matmul_bf16_f32, for every shape and layout.
// The bodies and the argument struct are in gemm.cuh and gemm_tc.cuh.
#include "gemm_tc.cuh"

extern "C" __global__ void __launch_bounds__(128, 2) matmul_f16_f32(const __half *A, const __half *B, float *C, GemmArgs p) {
    tcf::dispatch<__half, float>(A, B, C, p);
}

extern "C" __global__ void __launch_bounds__(128, 2)
    matmul_bf16_f32(const __nv_bfloat16 *A, const __nv_bfloat16 *B, float *C, GemmArgs p) {
    tcf::dispatch<__nv_bfloat16, float>(A, B, C, p);
}
