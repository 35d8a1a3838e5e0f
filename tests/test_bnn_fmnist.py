"""bnn-fmnist: IDX loading, the grey stem, and the evaluator on tiny synthetic Fashion-MNIST files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluators.bnn_cifar.data import Augment
from evaluators.bnn_fmnist import BnnFmnist
from evaluators.bnn_fmnist.data import DEBIAN_DIR, FILES, IMAGE_MAGIC, LABEL_MAGIC, _complete, find_fmnist, \
    load_fmnist, read_idx
from evaluators.bnn_fmnist.model import GreyBinaryResNet18, grey_stem
from gpengine.contract import check_evaluator
from gpengine.errors import ConfigError, DataError
from gpengine.evaluator import OK
from gpengine.expr_text import parse
from primitives import get_set

TINY = {"profile": "smoke", "width": 4, "train_size": 96, "val_size": 40, "batch_size": 32, "epochs": 1,
        "abort": "off", "threads": 1}


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def fake_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each class a bright horizontal band at its own height, plus noise: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 40, (n, 28, 28))
    for i, c in enumerate(labels):
        images[i, 2 + 2 * c: 5 + 2 * c, 4:24] = 230
    return images.astype(np.uint8), labels.astype(np.uint8)


def write_fake_fmnist(folder: Path, n_train: int = 160, n_test: int = 50, compress: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = fake_split(n, seed=len(split))
        for stem, array, magic in zip(FILES[split], (images, labels), (IMAGE_MAGIC, LABEL_MAGIC)):
            data = idx_bytes(array, magic)
            if compress:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / stem).write_bytes(data)
    return folder


@pytest.mark.parametrize("compress", [True, False])
def test_idx_files_load_padded_and_split(tmp_path, compress):
    folder = write_fake_fmnist(tmp_path / "fm", compress=compress)
    data = load_fmnist(folder, n_train=100, n_val=30)
    assert data.train_x.shape == (100, 1, 32, 32) and data.train_x.dtype == torch.uint8
    assert data.eval_x.shape == (30, 1, 32, 32) and data.eval_split == "validation"
    assert data.train_x[:, :, :2].sum() == 0 and data.train_x[:, :, :, -2:].sum() == 0  # zero padding
    assert sorted(np.bincount(data.eval_y.numpy())) == [3] * 10  # stratified
    test = load_fmnist(folder, n_train=None, n_val=30, split="test")
    assert len(test.eval_y) == 50 and len(test.train_y) == 130
    assert load_fmnist(folder, 100, 30).digest == data.digest


def test_bad_files_are_data_errors(tmp_path):
    good = idx_bytes(np.zeros((2, 28, 28), np.uint8), IMAGE_MAGIC)
    import gzip

    packed = bytearray(gzip.compress(idx_bytes(np.tile(np.arange(28, dtype=np.uint8), (2, 28, 1)), IMAGE_MAGIC)))
    packed[10:18] = b"\xff" * 8  # a corrupt deflate stream: zlib.error ("invalid block type"), not an OSError
    cases = {"magic": good[:3] + b"\x01" + good[4:], "short": good[:-5], "gzip": b"\x1f\x8bnot gzip",
             "deflate": bytes(packed)}
    for name, data in cases.items():
        path = tmp_path / (name + (".gz" if name in ("gzip", "deflate") else ""))
        path.write_bytes(data)
        with pytest.raises(DataError):
            read_idx(path, IMAGE_MAGIC)


def test_missing_data_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.delenv("GPENGINE_DATA", raising=False)
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        find_fmnist(tmp_path / "nothing")
    with pytest.raises(DataError, match="data_dir"):
        BnnFmnist(data_dir=str(tmp_path / "nothing"))


def test_data_found_through_the_environment(tmp_path, monkeypatch):
    write_fake_fmnist(tmp_path / "root" / "fashion-mnist")
    monkeypatch.setenv("GPENGINE_DATA", str(tmp_path / "root"))
    assert find_fmnist(None) == tmp_path / "root" / "fashion-mnist"


def test_sizes_checked_against_the_training_set(tmp_path):
    folder = write_fake_fmnist(tmp_path / "fm")
    with pytest.raises(ConfigError, match="60000"):
        BnnFmnist(data_dir=str(folder), train_size=59_000, val_size=5000)


def test_grey_stem_sees_the_standardised_image_whatever_the_normalisation():
    torch.manual_seed(0)
    stem = grey_stem(4).train()
    x = torch.rand(8, 1, 32, 32)
    a = stem(torch.cat([x, x * 3, x], 1))
    b = stem(torch.cat([(x - 0.4) / 0.25, x, x], 1))  # another affine map of the same image
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_model_trains_on_the_loops_normalised_batches():
    pset = get_set("gaaf")
    model = GreyBinaryResNet18(parse("sin(x) + x", pset), pset, width=4)
    batch = torch.randint(0, 255, (6, 1, 32, 32), dtype=torch.uint8)
    x = Augment(torch.device("cpu"))(batch, torch.Generator().manual_seed(0))
    out = model(x)
    assert out.shape == (6, 10)
    out.sum().backward()
    assert model.stem[2].weight.grad is not None and model.stem[2].in_channels == 1


def test_evaluator_learns_the_synthetic_classes(tmp_path):
    folder = write_fake_fmnist(tmp_path / "fm")
    ev = BnnFmnist(data_dir=str(folder), **TINY, primitives="gaaf")
    r = ev.evaluate(parse("x", ev.pset), budget=1.0, seed=0)
    assert r.status == OK, r.message
    assert 0.0 <= r.fitness <= 100.0 and r.metrics["epochs_run"] == 1
    assert ev.dataset().name == "Fashion-MNIST (validation split)" and ev.dataset().n_train == 96


@pytest.mark.slow
def test_bnn_fmnist_honours_the_contract(tmp_path):
    """Every check, with a failing expression that overflows float32 (torch) but not float64 (numpy)."""
    folder = write_fake_fmnist(tmp_path / "fm")
    checks = check_evaluator("bnn-fmnist", {**TINY, "data_dir": str(folder)},
                             failing="cube(cube(cube(cube(cube(2.0)))))")
    assert [c.name for c in checks][-1] == "failure"


@pytest.mark.slow
def test_constants_beyond_float32_fail_instead_of_raising(tmp_path):
    folder = write_fake_fmnist(tmp_path / "fm")
    ev = BnnFmnist(data_dir=str(folder), **TINY)
    r = ev.evaluate(parse("square(1e308)", ev.pset), budget=1.0, seed=0)
    assert not r.ok


@pytest.mark.slow
@pytest.mark.skipif(not _complete(DEBIAN_DIR), reason=f"real Fashion-MNIST not installed in {DEBIAN_DIR} "
                    "(apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist_learns_above_chance():
    ev = BnnFmnist(profile="smoke", width=8, train_size=1000, val_size=500, epochs=1, abort="off")
    r = ev.evaluate(parse("x", ev.pset), budget=1.0, seed=0)
    assert r.status == OK, r.message
    assert r.fitness > 25.0  # chance is 10%
