"""bnn-cifar on the real CIFAR-10: the smoke profile with the identity activation learns.

The data comes from the shared JPEG copy (../shared/datasets next to the repo,
or /work/shared/datasets), converted once per test session into a tmp folder
with its own make_cifar10.py. Without it the test is skipped, saying why.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from evaluators.bnn_cifar import BnnCifar
from gpengine.evaluator import OK
from gpengine.expr_text import parse

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = [REPO.parent / "shared" / "datasets", Path("/work/shared/datasets")]


@pytest.fixture(scope="session")
def real_cifar(tmp_path_factory) -> Path:
    script = next((d / "make_cifar10.py" for d in CANDIDATES if (d / "make_cifar10.py").is_file()), None)
    if script is None:
        pytest.skip(f"real CIFAR-10 not available: no make_cifar10.py in {', '.join(map(str, CANDIDATES))}")
    pytest.importorskip("PIL", reason="make_cifar10.py needs Pillow (pip install pillow)")
    out = tmp_path_factory.mktemp("real-cifar")
    proc = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"make_cifar10.py failed: {proc.stderr[-2000:]}")
    return out


def test_smoke_profile_identity_scores_clearly_above_chance(real_cifar):
    ev = BnnCifar(profile="smoke", data_dir=str(real_cifar), abort="off")
    r = ev.evaluate(parse("x"), seed=0)
    assert r.status == OK, r.message
    assert r.fitness > 20.0, (r.fitness, dict(r.curves))
    assert ev.dataset().n_validation == 1000
