#!/usr/bin/env bash
# torch.compile and CUDA graphs for bnn-cifar on a leased GPU (figures in BENCHMARKS.md, session 12).
#
#   bash tests/bench/gpu_compile_checks.sh OUT_DIR STEP...     STEP: data speed16 quick quick-compiled speed64 standard
#
# Needs python3 with torch (CUDA), numpy, attrs, tqdm, Pillow; gpengine runs from this checkout
# (no install, no MLflow). The data step builds CIFAR-10 from the JPEG copy, which must sit in
# .gpudata/ (cifar10-jpeg.tar.gz and make_cifar10.py from ../shared/datasets, carried to the
# machine). Each step has its own time cap and logs to OUT_DIR:
#   speed16   training step at width 16: eager channels-last against torch.compile with and
#             without CUDA graphs (mode reduce-overhead), four activations, research code beside
#   quick     one quick-profile evaluation of the identity: eager, then compiled with CUDA graphs
#   quick-compiled  the same compiled without CUDA graphs
#   speed64   training step at width 64, the same variants and binary bf16
#   standard  one standard-profile evaluation (what `auto` picks on a GPU), compiled with CUDA graphs
set -u
OUT_DIR=${1:?OUT_DIR}
shift
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD GPENGINE_DATA=${GPENGINE_DATA:-/tmp/gpengine-data}
step() { echo; echo "== $* ($(date +%T))"; }
quick() {  # quick() NAME CAP OPTION...: one quick-profile evaluation of the identity on cuda
    local name=$1 cap=$2
    shift 2
    step "quick evaluation, $*"
    timeout "$cap" python3 tests/bench/bench_bnn_quick.py --exprs x --seeds 0 --set device=cuda profile=quick "$@" 2>&1 \
        | tee "$OUT_DIR/$name.log"
}

for s in "$@"; do
    case $s in
    data)
        step "environment and data (in the background)"
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
        python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
        [ -d "$GPENGINE_DATA/cifar-10-batches-py" ] || python3 .gpudata/make_cifar10.py "$GPENGINE_DATA" >"$OUT_DIR/data.log" 2>&1 &
        ;;
    speed16)
        step "training step, width 16"
        timeout 200 python3 tests/bench/bench_bnn_speed.py --device cuda --width 16 --steps 30 --reps 3 \
            --exprs x "sin(x) + x" "gate(x, x)" "blend(sin(x), x)" --variants fp32-cl fp32-cl-graphs 2>&1 \
            | tee "$OUT_DIR/speed16.log"
        ;;
    quick)
        wait  # the data
        quick quick_eager 45 compile=off
        quick quick_graphs 100 compile=on compile_mode=reduce-overhead
        ;;
    quick-compiled)
        wait
        quick quick_compiled 100 compile=on compile_mode=default
        ;;
    speed64)
        step "training step, width 64"
        timeout 150 python3 tests/bench/bench_bnn_speed.py --device cuda --width 64 --steps 20 --reps 3 \
            --exprs x "sin(x) + x" "blend(sin(x), x)" --variants fp32-cl fp32-cl-graphs binbf16-cl-graphs 2>&1 \
            | tee "$OUT_DIR/speed64.log"
        ;;
    standard)
        wait
        step "standard evaluation, compiled with CUDA graphs"
        timeout 120 python3 tests/bench/bench_bnn_quick.py --exprs x --seeds 0 --set device=cuda profile=standard \
            compile=on compile_mode=reduce-overhead 2>&1 | tee "$OUT_DIR/standard.log"
        ;;
    *) echo "unknown step $s" >&2 ;;
    esac
done
step done
