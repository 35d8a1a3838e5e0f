#!/usr/bin/env bash
# Issue 6's "does it find something real", at a higher fidelity on a leased CUDA machine:
# the search's best activations retrained under the `standard` profile (width 32, the whole
# training set less the 5,000-image validation split, 10 epochs) with 3 seeds, beside the identity
# and shift(x) with the same seeds. Figures in BENCHMARKS.md.
#
#   bash tests/bench/gpu_retrain_checks.sh [OUT_DIR]
#
# Needs python3 with torch (CUDA), numpy, attrs, tqdm, Pillow; gpengine runs from this checkout
# (no install, no MLflow). CIFAR-10 is built from the JPEG copy, which must sit in .gpudata/
# (cifar10-jpeg.tar.gz and make_cifar10.py from ../shared/datasets, carried to the machine).
# bench_fidelity's "high" level is the standard profile as it ships (the activation's parameters at
# the weights' learning rate), its "low" level the same with them at 10x, as the quick profile
# trains them; the high runs go first, eight runs share the card at once.
set -u
OUT_DIR=${1:-${OUT:-/tmp/gpu-retrain}}
CAP=${CAP:-420}
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD GPENGINE_DATA=${GPENGINE_DATA:-/tmp/gpengine-data}
echo "== environment ($(date +%T))"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
echo "== data ($(date +%T))"
[ -d "$GPENGINE_DATA/cifar-10-batches-py" ] || python3 .gpudata/make_cifar10.py "$GPENGINE_DATA"
echo "== retrain at the standard profile ($(date +%T))"
timeout "$CAP" python3 tests/bench/bench_fidelity.py \
    --exprs x "shift(x)" "scale(x) + lconst(x)" "sigmoid(x) - shift(x)" --random 0 --seeds 100 101 102 \
    --high profile=standard --low profile=standard act_lr_scale=10 --set device=cuda --jobs 8 2>&1 \
    | tee "$OUT_DIR/retrain_standard.log"
echo "== done ($(date +%T))"
