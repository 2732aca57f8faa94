#!/usr/bin/env bash
# Runs on a GPU machine, with the real driver, everything that target/gpu-bundle holds (built
# elsewhere by gpu_bundle.sh): the GPU tests with --include-ignored, the GEMM example, and issue
# 14's bench table against PyTorch eager when `import torch` works. Logs go to $OUT.
# Usage: bash gpu_run.sh [quick]   (quick: the bench in --quick mode, to check it runs)
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/sinew-gpu-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
ldd ./gpu_mlp | grep libcuda | tee -a "$OUT/gpu.txt"
status=0
for t in no_device gpu_device gpu_elementwise gpu_reduce gpu_matmul gpu_matmul_spec gpu_mlp \
    gpu_index gpu_conv gpu_inplace gpu_custom gpu_autograd gpu_random gpu_models; do
    [ -x "./$t" ] || { echo "=== $t: missing"; status=1; continue; }
    echo "=== $t"
    timeout 300 "./$t" --include-ignored --test-threads=1 --nocapture >"$OUT/$t.log" 2>&1 || status=1
    grep -E "max error|^test |test result|panicked|GPU:|allocation|loss|memory" "$OUT/$t.log" | head -60
done
echo "=== gemm_tflops"
timeout 200 ./gemm_tflops 2>&1 | tee "$OUT/gemm.log" || status=1
torch=()
if command -v python3 >/dev/null && python3 -c "import torch" 2>/dev/null; then
    torch=(--vs-torch python3 --torch-script ./torch_gpu_bench.py)
    echo "=== torch matmul"
    timeout 200 python3 torch_matmul.py 2>&1 | tee "$OUT/torch.log"
fi
quick=()
[ "${1:-}" = quick ] && quick=(--quick)
echo "=== bench"
timeout 400 ./sinew-devtools bench "${quick[@]}" "${torch[@]}" 2>&1 | tee "$OUT/bench.log" || status=1
exit $status
