// cuda_bf16.h for the CPU emulator (see emu_runtime.h): bfloat16 as its 16 bits, converted with
// round-to-nearest-even like the device.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

struct __nv_bfloat16 {
    uint16_t bits;
    __nv_bfloat16() = default;
    __nv_bfloat16(float f);
    __nv_bfloat16(double d);
    operator float() const {
        const uint32_t u = (uint32_t)bits << 16;
        float f;
        std::memcpy(&f, &u, 4);
        return f;
    }
};
struct __nv_bfloat162 {
    __nv_bfloat16 x, y;
};

inline uint16_t emu_f32_to_bf16_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);  // quiet NaN
    const uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)((u + rounding) >> 16);
}
inline __nv_bfloat16::__nv_bfloat16(float f) : bits(emu_f32_to_bf16_bits(f)) {}
// Double to bfloat16 with one rounding: to f32 rounding to odd (sticky last bit), then to
// nearest even (exact, f32 keeps 16 more bits than bfloat16).
inline __nv_bfloat16::__nv_bfloat16(double d) {
    float f = (float)d;
    if (std::isfinite(d) && (double)f != d) {
        uint32_t u;
        std::memcpy(&u, &f, 4);
        // (float)d rounded to nearest; step toward zero if it went past d, then set the sticky bit.
        if (std::fabs((double)f) > std::fabs(d)) u -= 1;
        u |= 1u;
        std::memcpy(&f, &u, 4);
    }
    bits = emu_f32_to_bf16_bits(f);
}

inline float __bfloat162float(__nv_bfloat16 h) { return (float)h; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __double2bfloat16(double d) { return __nv_bfloat16(d); }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
    return __nv_bfloat162{__nv_bfloat16(a), __nv_bfloat16(b)};
}
