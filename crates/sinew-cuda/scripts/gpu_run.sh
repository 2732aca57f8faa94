#!/usr/bin/env bash
# Runs the sinew-cuda GPU tests and the GEMM benchmark on a GPU machine with the real driver.
# Expects, next to it: the release test binaries and the gemm_tflops example (built elsewhere
# against the stub, see docs in crates/sinew-cuda/src/lib.rs) and torch_matmul.py. Logs go to $OUT.
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/sinew-gpu-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
ldd ./gpu_mlp | grep libcuda | tee -a "$OUT/gpu.txt"
status=0
for t in no_device gpu_device gpu_elementwise gpu_reduce gpu_matmul gpu_mlp gpu_index gpu_conv gpu_autograd; do
    echo "=== $t"
    timeout 300 "./$t" --include-ignored --test-threads=1 --nocapture >"$OUT/$t.log" 2>&1 || status=1
    grep -E "max error|^test |test result|panicked|GPU:|allocation" "$OUT/$t.log" | head -60
done
echo "=== gemm_tflops"
timeout 200 ./gemm_tflops 2>&1 | tee "$OUT/gemm.log" || status=1
if command -v python3 >/dev/null && python3 -c "import torch" 2>/dev/null; then
    echo "=== torch"
    timeout 200 python3 torch_matmul.py 2>&1 | tee "$OUT/torch.log"
fi
exit $status
