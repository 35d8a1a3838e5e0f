"""bnn-cifar data: loader, where the data is looked for, splits, errors, augmentation."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from evaluators.bnn_cifar import data as D
from gpengine.errors import DataError
from tests.bnn_fakes import fake_images, write_fake_cifar


def test_reads_the_standard_layout(tmp_path):
    folder = write_fake_cifar(tmp_path, per_batch=40, n_test=30)
    x, y = D.load_split(folder, train=True)
    assert x.dtype == torch.uint8 and x.shape == (200, 3, 32, 32)
    assert y.dtype == torch.int64 and y.shape == (200,)
    raw, labels = fake_images(40, seed=0)  # data_batch_1: rows of R, G, B planes, 32x32 each
    assert torch.equal(x[:40], torch.from_numpy(raw.reshape(40, 3, 32, 32)))
    assert y[:40].tolist() == labels
    tx, ty = D.load_split(folder, train=False)
    assert tx.shape == (30, 3, 32, 32) and len(ty) == 30


def test_data_dir_option_then_env_then_cache(tmp_path, monkeypatch):
    write_fake_cifar(tmp_path / "opt")
    write_fake_cifar(tmp_path / "env")
    monkeypatch.setenv("GPENGINE_DATA", str(tmp_path / "env"))
    assert D.data_root(str(tmp_path / "opt")) == tmp_path / "opt"
    assert D.data_root(None) == tmp_path / "env"
    monkeypatch.delenv("GPENGINE_DATA")
    monkeypatch.setenv("GPENGINE_CACHE", str(tmp_path / "cache"))
    assert D.data_root(None) == tmp_path / "cache" / "data"
    # the folder itself or its parent both work
    assert D.ensure_cifar10(tmp_path / "opt") == tmp_path / "opt" / D.FOLDER
    assert D.ensure_cifar10(tmp_path / "opt" / D.FOLDER) == tmp_path / "opt" / D.FOLDER


def test_stratified_split_is_disjoint_balanced_and_seeded():
    labels = np.repeat(np.arange(10), [100, 100, 100, 100, 100, 100, 100, 100, 100, 300])  # one big class
    train, val = D.stratified_split(labels, n_val=120, n_train=240, seed=3)
    assert len(val) == 120 and len(train) == 240
    assert not set(train) & set(val)
    assert np.bincount(labels[val], minlength=10).tolist() == [10] * 9 + [30]
    assert np.bincount(labels[train], minlength=10).tolist() == [20] * 9 + [60]
    again = D.stratified_split(labels, n_val=120, n_train=240, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val), again))
    other = D.stratified_split(labels, n_val=120, n_train=240, seed=4)
    assert not np.array_equal(val, other[1])
    rest, val2 = D.stratified_split(labels, n_val=120, n_train=None, seed=3)
    assert len(rest) == len(labels) - 120 and np.array_equal(val2, val)


def test_extra_scoring_images_follow_the_split_and_change_neither_it_nor_the_training_images():
    labels = np.repeat(np.arange(10), [100, 100, 100, 100, 100, 100, 100, 100, 100, 300])
    train, val = D.stratified_split(labels, n_val=120, n_train=240, seed=3)
    train2, scored = D.stratified_split(labels, n_val=120, n_train=240, seed=3, n_extra=360)
    assert np.array_equal(train2, train) and np.array_equal(scored[:120], val)
    extra = scored[120:]
    assert len(extra) == 360 and not set(extra) & (set(train) | set(val))
    assert np.bincount(labels[extra], minlength=10).tolist() == [30] * 9 + [90]  # stratified too
    with pytest.raises(DataError, match="all other training images \\+ 10 more to score"):
        D.stratified_split(labels, n_val=120, n_train=None, seed=3, n_extra=10)
    with pytest.raises(DataError, match="\\+ 900 more to score, the training set has 1200"):
        D.stratified_split(labels, n_val=120, n_train=240, seed=3, n_extra=900)


def test_load_cifar10_final_images_extend_the_validation_split(tmp_path):
    folder = write_fake_cifar(tmp_path, per_batch=60, n_test=50)
    d = D.load_cifar10(folder, n_train=100, n_val=50)
    e = D.load_cifar10(folder, n_train=100, n_val=50, n_final=150)
    assert e.n_split == 50 and len(e.eval_y) == 150 and d.n_split is None
    assert torch.equal(e.train_x, d.train_x) and torch.equal(e.eval_x[:50], d.eval_x)
    only = e.split_only()
    assert torch.equal(only.eval_x, d.eval_x) and only.n_split is None and only.digest not in (d.digest, e.digest)
    assert d.split_only() is d
    # the official test set is scored whole: nothing to extend
    t = D.load_cifar10(folder, n_train=100, n_val=50, split="test", n_final=150)
    assert t.n_split is None and len(t.eval_y) == 50


def test_split_larger_than_the_data_is_a_data_error():
    with pytest.raises(DataError, match="training set has 50"):
        D.stratified_split(np.arange(50) % 10, n_val=40, n_train=20, seed=0)


def test_load_cifar10_validation_comes_from_training_set_and_test_only_on_request(tmp_path):
    folder = write_fake_cifar(tmp_path, per_batch=60, n_test=50)
    d = D.load_cifar10(folder, n_train=100, n_val=50)
    assert d.eval_split == "validation" and len(d.train_y) == 100 and len(d.eval_y) == 50
    assert torch.bincount(d.eval_y, minlength=10).tolist() == [5] * 10
    train_rows = {bytes(r) for r in d.train_x.reshape(100, -1).numpy()}
    assert not any(bytes(r) in train_rows for r in d.eval_x.reshape(50, -1).numpy())
    t = D.load_cifar10(folder, n_train=100, n_val=50, split="test")
    assert t.eval_split == "test" and torch.equal(t.eval_x, D.load_split(folder, train=False)[0])
    assert t.digest != d.digest and D.load_cifar10(folder, n_train=100, n_val=50).digest == d.digest


def test_a_training_subset_is_stratified_seeded_and_keeps_the_scored_split(tmp_path):
    folder = write_fake_cifar(tmp_path, per_batch=60, n_test=50)
    d = D.load_cifar10(folder, n_train=200, n_val=50)
    sub = d.with_train_subset(40)
    assert torch.bincount(sub.train_y, minlength=10).tolist() == [4] * 10
    full_rows = {bytes(r) for r in d.train_x.reshape(200, -1).numpy()}
    assert all(bytes(r) in full_rows for r in sub.train_x.reshape(40, -1).numpy())  # drawn from the training images
    assert sub.eval_x is d.eval_x and sub.eval_y is d.eval_y
    assert torch.equal(d.with_train_subset(40).train_x, sub.train_x)  # same seed, same images
    assert not torch.equal(d.with_train_subset(40, seed=1).train_x, sub.train_x)
    assert len({d.digest, sub.digest, d.with_train_subset(40, seed=1).digest}) == 3


def test_truncated_batch_is_a_clear_data_error(tmp_path):
    folder = write_fake_cifar(tmp_path)
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="data_batch_3 is corrupt or truncated"):
        D.load_split(folder, train=True)


def test_garbage_and_wrong_shape_batches_are_data_errors(tmp_path):
    folder = write_fake_cifar(tmp_path)
    (folder / "data_batch_1").write_bytes(os.urandom(500))
    with pytest.raises(DataError, match="data_batch_1"):
        D.read_batch(folder / "data_batch_1")
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}, f)
    with pytest.raises(DataError, match="unexpected shape"):
        D.read_batch(folder / "data_batch_2")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    folder = write_fake_cifar(tmp_path)
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": []}, f)
    with pytest.raises(DataError, match="unexpected object"):
        D.read_batch(folder / "data_batch_1")


def test_offline_download_fails_with_one_clear_message(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as info:
        D.ensure_cifar10(tmp_path / "nowhere")
    msg = str(info.value)
    assert "\n" not in msg
    assert str(tmp_path / "nowhere") in msg and "cifar-10-batches-py" in msg and "data_dir" in msg
    assert "GPENGINE_DATA" in msg and "download" in msg
    assert not any(p.name.endswith(".part") for p in (tmp_path / "nowhere").iterdir())


def test_no_download_when_turned_off(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(DataError, match="CIFAR-10 not found"):
        D.ensure_cifar10(tmp_path, download=False)


def test_a_half_copied_folder_is_called_incomplete_and_its_missing_batches_named(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("must not download"))
    folder = write_fake_cifar(tmp_path, per_batch=10, n_test=10)
    (folder / "data_batch_3").unlink()
    (folder / D.TEST_FILE).unlink()
    with pytest.raises(DataError) as info:
        D.ensure_cifar10(tmp_path, download=False)
    assert str(info.value).startswith(f"CIFAR-10 incomplete in {folder} (missing data_batch_3, test_batch): put the folder ")


def _fake_archive(tmp_path) -> bytes:
    src = write_fake_cifar(tmp_path / "src", per_batch=10, n_test=10)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(src, arcname=D.FOLDER)
    return buf.getvalue()


class _Response(io.BytesIO):
    def __init__(self, blob: bytes):
        super().__init__(blob)
        self.headers = {"Content-Length": str(len(blob))}


def test_download_checks_md5_and_extracts(tmp_path, monkeypatch):
    blob = _fake_archive(tmp_path)
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: _Response(blob))
    with pytest.raises(DataError, match="corrupt"):
        D.ensure_cifar10(tmp_path / "dl")
    monkeypatch.setattr(D, "MD5", hashlib.md5(blob).hexdigest())
    folder = D.ensure_cifar10(tmp_path / "dl")
    assert folder == tmp_path / "dl" / D.FOLDER
    assert len(D.load_split(folder, train=True)[1]) == 50


def test_augmentation_is_batched_crop_and_flip_of_the_padded_image():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    aug = D.Augment(torch.device("cpu"))
    out = aug(x, gen)
    assert out.shape == (64, 3, 32, 32) and out.dtype == torch.float32
    padded = torch.nn.functional.pad(aug.normalize(x), (4, 4, 4, 4), value=0.0)
    padded_zero = aug.normalize(torch.zeros(1, 3, 1, 1, dtype=torch.uint8))
    padded = torch.where(
        torch.nn.functional.pad(torch.ones(1, 1, 32, 32, dtype=torch.bool), (4, 4, 4, 4)), padded, padded_zero
    )
    flips = 0
    for i in range(64):  # every output is a 32x32 window of the padded image, maybe mirrored
        found = False
        for dy in range(9):
            for dx in range(9):
                win = padded[i, :, dy : dy + 32, dx : dx + 32]
                if torch.allclose(out[i], win):
                    found = True
                elif torch.allclose(out[i], win.flip(-1)):
                    found, flips = True, flips + 1
        assert found, i
    assert 10 < flips < 54
    same = aug(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, same)


def test_flip_only_and_no_augmentation_modes():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    aug = D.Augment(torch.device("cpu"), mode="flip")
    out = aug(x, torch.Generator().manual_seed(0))
    plain, mirrored = aug.normalize(x), aug.normalize(x.flip(3))
    flipped = [bool(torch.equal(out[i], mirrored[i])) for i in range(64)]
    assert all(f or torch.equal(out[i], plain[i]) for i, f in enumerate(flipped))  # never shifted
    assert 10 < sum(flipped) < 54
    assert torch.equal(D.Augment(torch.device("cpu"), mode="none")(x, torch.Generator()), plain)
    with pytest.raises(ValueError, match="rotate"):
        D.Augment(torch.device("cpu"), mode="rotate")


def test_normalisation_uses_cifar_statistics():
    aug = D.Augment(torch.device("cpu"))
    x = torch.full((1, 3, 2, 2), 128, dtype=torch.uint8)
    out = aug.normalize(x)
    expected = (128 / 255 - torch.tensor(D.MEAN)) / torch.tensor(D.STD)
    assert torch.allclose(out[0, :, 0, 0], expected, atol=1e-5)
