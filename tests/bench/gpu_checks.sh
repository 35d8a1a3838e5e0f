#!/usr/bin/env bash
# The GPU checks of bnn-cifar, as one script for a leased CUDA machine (figures in BENCHMARKS.md).
#
#   CIFAR_JPEG_DIR=../shared/datasets bash tests/bench/gpu_checks.sh [OUT_DIR]
#
# Needs python3 with torch (CUDA), numpy, attrs, tqdm; gpengine runs from this
# checkout (no install, no MLflow). Each step has its own time cap and logs to
# OUT_DIR, so a step that overruns costs only itself:
#   1. CIFAR-10 in the standard layout from the JPEG copy (make_cifar10.py)
#   2. one bnn-cifar evaluation on cuda, quick profile (the GPU defaults: bf16 autocast +
#      channels-last when this ran in session 2; fp32 channels-last since), then the same in fp32 NCHW, then the standard profile
#      (what `--evaluator bnn-cifar` picks on a GPU): images per second and accuracy
#   3. training speed: the evaluator's step against research-style code (bench_bnn_speed)
#   4. the fidelity check of issue 6 at full size (quick vs 16 epochs, 11 activations,
#      2 seeds), six runs sharing the card at once
set -u
OUT_DIR=${1:-${OUT:-/tmp/gpu-checks}}
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD GPENGINE_DATA=${GPENGINE_DATA:-/tmp/gpengine-data}
step() { echo; echo "== $* ($(date +%T))"; }

step environment
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(), torch.get_num_threads(), 'threads')"

step data
[ -d "$GPENGINE_DATA/cifar-10-batches-py" ] || python3 "${CIFAR_JPEG_DIR:-../shared/datasets}/make_cifar10.py" "$GPENGINE_DATA"

step "evaluation on cuda, quick profile, GPU defaults"
timeout 90 python3 tests/bench/bench_bnn_quick.py --seeds 0 --set device=cuda profile=quick 2>&1 | tee "$OUT_DIR/eval_quick.log"
step "evaluation on cuda, quick profile, fp32 NCHW"
timeout 60 python3 tests/bench/bench_bnn_quick.py --seeds 0 --set device=cuda profile=quick amp=off channels_last=off 2>&1 \
    | tee "$OUT_DIR/eval_quick_fp32.log"
step "evaluation on cuda, standard profile"
timeout 130 python3 tests/bench/bench_bnn_quick.py --seeds 0 --set device=cuda profile=standard 2>&1 | tee "$OUT_DIR/eval_standard.log"

step "training speed against research code"
timeout 80 python3 tests/bench/bench_bnn_speed.py --device cuda --width 64 16 --steps 20 --reps 3 2>&1 | tee "$OUT_DIR/speed.log"

step "fidelity check, quick vs 16 epochs"
timeout 220 python3 tests/bench/bench_fidelity.py --jobs 6 --seeds 0 1 --set device=cuda amp=off channels_last=off 2>&1 \
    | tee "$OUT_DIR/fidelity.log"
step done
