#!/bin/bash
# Issue 19's one device check, run on the CUDA node from the repository root, with .whl and .cuda-data
# carried (staged here by ../shared/tools/cuda-stage.sh): installs the wheels as that script's header
# says, runs tests/integration/test_cuda.py (the fp16 engine, the GPU data path against the CPU
# conversions and the host path, CUDA graphs against eager, the CUDA bring-up), then bench/gpu_node.py (encoder
# ceilings, network, rvm-render matte as a process, the official reference, a warm render node). Everything is
# printed with the seconds since start and teed into $OUT (3 files). Under 9 minutes: the wheels
# about 20 s, the tests at most 150 s, the bench at most 360 s (it shortens its long run to fit 330 s).
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/rvm-gpu-node}"
mkdir -p "$OUT"
started=$(date +%s)
stamp() { echo "[gpu_node.sh +$(( $(date +%s) - started )) s] $*"; }
{
  stamp "installing the staged wheels"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { stamp "wheel install failed"; exit 1; }
  export PYTHONPATH="/tmp/site:$PWD" RVM_RENDER_SHARED="$PWD/.cuda-data"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import sys, torch, av; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'PyAV', av.__version__)"
  stamp "tests/integration/test_cuda.py"
  timeout 150 python3 -m pytest tests/integration/test_cuda.py -q -rs -p no:cacheprovider 2>&1 | tee "$OUT/test_cuda.txt"
  stamp "tests: exit ${PIPESTATUS[0]}"
  stamp "bench/gpu_node.py"
  timeout 360 python3 bench/gpu_node.py --frames 96 --long-frames 480 --budget-s 330 2>&1 | tee "$OUT/gpu_node.txt"
  stamp "bench: exit ${PIPESTATUS[0]}"
} 2>&1 | tee "$OUT/gpu_node_sh.txt"
