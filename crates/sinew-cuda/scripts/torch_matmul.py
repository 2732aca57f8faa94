"""torch.matmul throughput at 1024/2048/4096 for f32 (TF32 off), f16 and bf16, timed like
examples/gemm_tflops.rs (CUDA events around a loop after warm-up), for side-by-side numbers."""
import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
for dtype in (torch.float32, torch.float16, torch.bfloat16):
    for n in (1024, 2048, 4096):
        a = torch.randn(n, n, device="cuda", dtype=dtype)
        b = torch.randn(n, n, device="cuda", dtype=dtype)
        for _ in range(3):
            torch.matmul(a, b)
        torch.cuda.synchronize()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        torch.matmul(a, b)
        stop.record()
        stop.synchronize()
        iters = max(3, min(200, int(300.0 / max(start.elapsed_time(stop), 1e-3))))
        start.record()
        for _ in range(iters):
            torch.matmul(a, b)
        stop.record()
        stop.synchronize()
        ms = start.elapsed_time(stop) / iters
        print(f"torch matmul {str(dtype).split('.')[-1]:>8} {n:>5}: {2 * n**3 / (ms * 1e-3) / 1e12:7.2f} TFLOP/s ({ms:.3f} ms)")
