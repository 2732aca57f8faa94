// Kernels by name for the emulated driver: each kernel file's generated footer registers its
// `extern "C"` kernels with a trampoline that unpacks cuLaunchKernel's parameter array into
// the kernel's own argument types.
#pragma once
#include <cstddef>
#include <type_traits>
#include <utility>

struct dim3;

namespace emu {
using KernelFn = void (*)(void **);
KernelFn find_kernel(const char *name);
// The name a kernel was registered under ("" for none).
const char *kernel_name(KernelFn f);
void register_kernel(const char *name, KernelFn f);
void launch(KernelFn kernel, dim3 grid, dim3 block, void **params, uint32_t shared_bytes);

template <typename... A> constexpr std::size_t arity(void (*)(A...)) { return sizeof...(A); }

template <typename... A, std::size_t... I>
inline void call_with(void (*f)(A...), void **params, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>> *>(params[I])...);
}

template <auto F> void trampoline(void **params) {
    call_with(F, params, std::make_index_sequence<arity(F)>{});
}

struct Registrar {
    Registrar(const char *name, KernelFn f) { register_kernel(name, f); }
};
}  // namespace emu

#define EMU_REGISTER(name) static emu::Registrar emu_registered_##name(#name, &emu::trampoline<&name>);
