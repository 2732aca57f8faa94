// cuda_fp16.h for the CPU emulator (see emu_runtime.h): __half is the compiler's IEEE binary16.
#pragma once
#include <cstdint>

typedef _Float16 __half;
struct __half2 {
    __half x, y;
};

inline float __half2float(__half h) { return (float)h; }
inline __half __float2half_rn(float f) { return (__half)f; }
inline __half __float2half(float f) { return (__half)f; }
// Rounds once, from double (the compiler's conversion is direct).
inline __half __double2half(double d) { return (__half)d; }
inline __half2 __floats2half2_rn(float a, float b) { return __half2{(__half)a, (__half)b}; }
