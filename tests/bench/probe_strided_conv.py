"""Is torch's channels-last strided 1x1 convolution right on this CPU? (why model.py subsamples below 8 channels)

    python tests/bench/probe_strided_conv.py [--channels 1 2 3 4 5 6 7 8 16] [--threads 1 2] [--repeats 2]

For each input channel count and thread count, a fresh interpreter runs the
forward and backward of a 1x1 stride-2 convolution on a channels-last
(64, C, 32, 32) fp32 input, in two forms, and compares output, input gradient
and weight gradient with the same convolution in fp64 NCHW:

    strided     F.conv2d(x, w, stride=2), what the shortcut ran before session 31
    subsampled  F.conv2d(x[:, :, ::2, ::2], w), what it runs below 8 channels now
    nchw        the strided form on an NCHW input (eager training's layout on a CPU)

Each probe runs in its own process because the failure can be a heap
corruption: a crash is reported as such, not taken for this script's own.
torch 2.13.0 on an AVX2-only CPU (session 31): for 2-7 channels (1 now and then)
the strided form's weight gradient came out wrong by 3-100% or hung with two
threads and crashed with one; the subsampled form and NCHW were exact in every probe. Run it again after a torch upgrade: when every row is
exact, model.py's workaround can go.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

PROBE = r"""
import sys, torch, torch.nn.functional as F
cin, threads, form = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(threads)
torch.manual_seed(0)
layout = torch.contiguous_format if form == "nchw" else torch.channels_last
x = torch.randn(64, cin, 32, 32).contiguous(memory_format=layout).requires_grad_()
w = torch.randn(2 * cin, cin, 1, 1).contiguous(memory_format=layout).requires_grad_()
y = F.conv2d(x[:, :, ::2, ::2], w) if form == "subsampled" else F.conv2d(x, w, stride=2)
g = torch.randn_like(y)
y.backward(g)
xr, wr = (t.detach().double().contiguous().requires_grad_() for t in (x, w))
yr = F.conv2d(xr, wr, stride=2)
yr.backward(g.double().contiguous())
errs = [float((a.double() - b).abs().max() / b.abs().max()) for a, b in ((y, yr), (x.grad, xr.grad), (w.grad, wr.grad))]
print(" ".join(f"{e:.1e}" for e in errs))
"""


def probe(cin: int, threads: int, form: str) -> str:
    try:
        out = subprocess.run([sys.executable, "-c", PROBE, str(cin), str(threads), form],
                             capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "hung"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]
        return f"crashed ({last[:40]})"
    errs = [float(e) for e in out.stdout.split()]
    worst = max(errs)
    return f"{'exact' if worst < 1e-4 else 'WRONG'} (y/dx/dw {' '.join(f'{e:.0e}' for e in errs)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--channels", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 7, 8, 16])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    import torch

    print(f"torch {torch.__version__}, CPU kernels: {torch.backends.cpu.get_cpu_capability()}, "
          f"relative max error against fp64 NCHW (exact: under 1e-4)")
    for cin in args.channels:
        for threads in args.threads:
            for form in ("strided", "subsampled", "nchw"):
                seen = [probe(cin, threads, form) for _ in range(args.repeats)]
                print(f"  {cin:3d} channels, {threads} threads, {form:10s}: " + "; ".join(seen))


if __name__ == "__main__":
    main()
