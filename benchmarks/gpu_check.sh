#!/usr/bin/env bash
# GPU check for issue 6, about 5 minutes on one H100 or H200 (see benchmarks/gpu_check.py):
#   1. eager: ModernBERT-base-sized and MiniLM-L6 cross-encoders, lengths 256 and 1024, Lion and
#      AdamW, bf16 autocast: samples/s, MFU, NVML GPU utilisation, memory (at most 140 s);
#   2. torch.compile: ModernBERT-base at length 1024, Lion and AdamW (at most 130 s).
# Needs python3 with torch, transformers and accelerate (nvidia-ml-py for NVML; lion-pytorch
# optional). Run from anywhere:  bash benchmarks/gpu_check.sh [arguments for both gpu_check.py runs]
# Writes everything it prints to gpu_check.log in the current directory (or $OUT if set).
set -uo pipefail
log="$(cd "${OUT:-.}" && pwd)/gpu_check.log"
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
python="${PYTHON:-python3}"
{
  date -u +"%Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || echo "nvidia-smi failed"
  "$python" -c "import importlib.util as u; print('nvidia-ml-py:', u.find_spec('pynvml') is not None, '| lion-pytorch:', u.find_spec('lion_pytorch') is not None)"
  echo "== eager =="
  timeout 140 "$python" benchmarks/gpu_check.py "$@" || echo "eager run failed or timed out (exit $?)"
  echo "== torch.compile, ModernBERT-base at 1024 =="
  timeout 130 "$python" benchmarks/gpu_check.py --models modernbert-base --lengths 1024 --compile "$@" \
    || echo "compiled run failed or timed out (exit $?)"
} 2>&1 | tee "$log"
