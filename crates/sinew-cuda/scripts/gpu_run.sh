#!/usr/bin/env bash
# Runs on a GPU machine, with the real driver, everything that target/gpu-bundle holds (built
# elsewhere by gpu_bundle.sh), in two parts that each fit one device call (10 minutes at most):
#   figures: issue 14's numbers first: the GEMM example, the event-timer trace of a ResNet-18
#            step (and an Nsight Systems summary when nsys exists) and the bench table against
#            PyTorch eager when `import torch` works;
#   tests:   the GPU tests with --include-ignored, the whole-model curves last.
# Logs go to $OUT. Usage: bash gpu_run.sh [figures|tests|all] [quick]   (default all; quick:
# the bench in --quick mode, to check that it runs).
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/sinew-gpu-out}
part=all
quick=()
for arg in "$@"; do
    case "$arg" in
        figures | tests | all) part=$arg ;;
        quick) quick=(--quick) ;;
        *) echo "gpu_run.sh: unknown argument $arg (figures, tests, all, quick)"; exit 2 ;;
    esac
done
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
ldd ./gpu_mlp | grep libcuda | tee -a "$OUT/gpu.txt"
status=0

figures() {
    echo "=== gemm_tflops"
    timeout 120 ./gemm_tflops 2>&1 | tee "$OUT/gemm.log" || status=1
    local torch=()
    if command -v python3 >/dev/null && python3 -c "import torch" 2>/dev/null; then
        torch=(--vs-torch python3 --torch-script ./torch_gpu_bench.py)
        echo "=== torch matmul"
        timeout 120 python3 torch_matmul.py 2>&1 | tee "$OUT/torch.log"
    fi
    echo "=== trace (one ResNet-18 step, phases timed with CUDA events)"
    for m in "" --mixed; do
        timeout 60 ./sinew-devtools trace --model resnet18 --batch 128 $m 2>&1 | tee -a "$OUT/trace.log" || status=1
    done
    if command -v nsys >/dev/null; then
        echo "=== nsys"
        timeout 120 nsys profile --stats=true -o "$OUT/resnet18" ./sinew-devtools trace --steps 2 \
            >"$OUT/nsys.log" 2>&1 || status=1
        grep -A25 "cuda_gpu_kern_sum\|CUDA Kernel Statistics" "$OUT/nsys.log" | head -40
    fi
    echo "=== bench"
    timeout 360 ./sinew-devtools bench "${quick[@]}" "${torch[@]}" 2>&1 | tee "$OUT/bench.log" || status=1
}

tests() {
    # NCCL for sinew-dist's test: the copy that PyTorch's wheels install, unless SINEW_NCCL_LIB
    # is set.
    if [ -z "${SINEW_NCCL_LIB:-}" ] && command -v python3 >/dev/null; then
        local lib
        lib=$(python3 -c "import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], 'lib', 'libnccl.so.2'))" 2>/dev/null || true)
        if [ -n "$lib" ] && [ -f "$lib" ]; then export SINEW_NCCL_LIB="$lib"; fi
    fi
    echo "SINEW_NCCL_LIB=${SINEW_NCCL_LIB:-}" | tee -a "$OUT/gpu.txt"
    # Every GPU test binary of the bundle (so none is forgotten), the whole-model curves last.
    local kernels t
    kernels=$(ls gpu_* | grep -v -e '^gpu_run\.sh$' -e '^gpu_models$' | sort)
    for t in no_device $kernels gpu_models nccl; do
        [ -x "./$t" ] || { echo "=== $t: missing"; status=1; continue; }
        echo "=== $t"
        timeout 240 "./$t" --include-ignored --test-threads=1 --nocapture >"$OUT/$t.log" 2>&1 || status=1
        grep -E "max error|wgmma|^test |test result|panicked|GPU:|allocation|loss|memory|nccl|keep_mask|philox|deferred" "$OUT/$t.log" | head -60
    done
}

case "$part" in
    figures) figures ;;
    tests) tests ;;
    all) figures; tests ;;
esac
exit $status
