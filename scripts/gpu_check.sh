#!/usr/bin/env bash
# GPU checks for a session with a lent GPU, in one call of under 10 minutes:
#   bash scripts/gpu_check.sh [extra tools/benchmark.py flags, passed to every benchmark run]
# 1. toolchain facts; build the extension (CUDA) in place
# 2. the direct-op bad-argument call (the segfault once seen) in fresh processes, with the exit signal
# 3. the CUDA tests of tests/test_ops.py (both forward kernels) and the model tests
# 4. tools/benchmark.py on CUDA: ResNet-50, 480x854, 2 objects, bank held at 10k entries (--fill
#    --budget 10000) in fp32, bf16 and bf16 + --compile; the bf16 + compile run goes on for
#    10,000 frames (300 rendered frames looped) with --check (CUDA max allocated at frame 10000
#    within 10% of frame 500's)
# 5. the same at the full 300000 budget in fp32, bf16 and bf16 + compile (graphs cached by now)
# 6. tools/bench_urr.py --device cuda with the tile and the streaming forward kernel
# 7. --compare-precision on CUDA: random ResNet-50 at 480x854 and the demo weights
# Logs go to $OUT (else ./gpu_check_logs); summary.txt lists every step's exit status.
# The whole run stops within GPU_CHECK_SECONDS (default 540): each step gets at most its own
# limit and what is left; a step with under 15 s left is skipped (and says so).
set -u
cd "$(dirname "$0")/.."
LOGS="${OUT:-$PWD/gpu_check_logs}"
BUDGET_SECONDS="${GPU_CHECK_SECONDS:-540}"
source scripts/steps.sh
BENCH_FLAGS=("$@")

toolchain() {
  echo "g++ on PATH: $(command -v g++)"; g++ --version | head -1
  echo "CXX=${CXX:-unset} CC=${CC:-unset} CUDA_HOME=${CUDA_HOME:-unset}"
  command -v nvcc && nvcc --version | tail -2
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python - <<'PY'
import torch, sys
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "cxx11 abi", torch._C._GLIBCXX_USE_CXX11_ABI)
print("torch lib:", torch.__file__)
PY
  for so in afb_urr/_C*.so; do
    [ -e "$so" ] || continue
    echo "--- $so"
    readelf -p .comment "$so" 2>/dev/null | grep -i gcc | sort -u
    ldd "$so" | grep -E "stdc\+\+|gcc_s|gomp|c10" || true
  done
}

repro() {  # the direct torch.ops call with a bad argument, each in a fresh process
  for device in cpu cuda; do
    for op in local_refine local_refine_stream; do
      [ "$device" = cpu ] && [ "$op" = local_refine_stream ] && continue
      python -c "
import torch, afb_urr.ops
f, w = torch.randn(2, 3, 8, 8, device='$device'), torch.rand(2, 1, 8, 8, device='$device')
try:
    getattr(torch.ops.afb_urr, '$op')(f, w, 6, 1e-8)
    print('NO ERROR RAISED')
except RuntimeError as e:
    print('raised RuntimeError:', str(e).splitlines()[0])
"
      rc=$?
      if [ "$rc" -gt 128 ]; then
        echo "$device $op: CRASHED, signal $(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
      else
        echo "$device $op: exit $rc"
      fi
    done
  done
  echo "(python, loaded C++ runtime:)"
  python -c "import afb_urr.ops; print(''.join(sorted({l.split()[-1] + chr(10) for l in open('/proc/self/maps') if 'stdc++' in l or 'gcc_s' in l})))"
}

build() {
  if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDA_HOME=/usr/local/cuda; fi
  FORCE_CUDA=1 MAX_JOBS="${MAX_JOBS:-16}" python setup.py build_ext --inplace
}

export -f toolchain repro build
step toolchain 30 bash -c toolchain
step build 240 bash -c build
step repro 60 bash -c repro
step tests_cuda 120 python -m pytest -q -x tests/test_ops.py tests/test_model.py tests/test_model_fold.py
BENCH=(python tools/benchmark.py --device cuda --backbone resnet50 --size 480x854 --objects 2 --fill)
step bench10k_fp32 45 "${BENCH[@]}" --budget 10000 --frames 300 --profile 3 "${BENCH_FLAGS[@]}"
step bench10k_bf16 40 "${BENCH[@]}" --budget 10000 --frames 300 --precision bf16 "${BENCH_FLAGS[@]}"
step bench10k_bf16_compile_10000frames 230 "${BENCH[@]}" --budget 10000 --frames 10000 --loop 300 --check \
  --precision bf16 --compile "${BENCH_FLAGS[@]}"
step full_fp32 50 "${BENCH[@]}" --budget 300000 --frames 40 "${BENCH_FLAGS[@]}"
step full_bf16 45 "${BENCH[@]}" --budget 300000 --frames 40 --precision bf16 "${BENCH_FLAGS[@]}"
step full_bf16_compile 60 "${BENCH[@]}" --budget 300000 --frames 40 --precision bf16 --compile "${BENCH_FLAGS[@]}"
for kernel in tile stream; do
  step "bench_urr_$kernel" 40 env AFB_URR_CUDA_KERNEL=$kernel python tools/bench_urr.py --device cuda
done
step compare_resnet50 60 python tools/benchmark.py --device cuda --compare-precision --backbone resnet50 \
  --size 480x854 --videos 4 --frames 20 --floor
step compare_demo 40 python tools/benchmark.py --device cuda --compare-precision \
  --weights weights/demo_synthetic_resnet18.pth --videos 16
if grep -q CRASHED "$LOGS/repro.log" && [ -x /usr/bin/g++ ] && [ "$(command -v g++)" != /usr/bin/g++ ]; then
  # The crash depends on the toolchain if the system compiler's build does not crash.
  step build_system_gxx 200 env CXX=/usr/bin/g++ CC=/usr/bin/gcc bash -c "rm -rf build; build"
  step repro_system_gxx 40 bash -c repro
fi
echo "=== done in $SECONDS s; logs in $LOGS" | tee -a "$SUMMARY"
