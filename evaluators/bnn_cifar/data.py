"""CIFAR-10 from its standard python layout, held in memory, with batched augmentation.

Where the data lives: the option ``data_dir``, else the environment variable
``GPENGINE_DATA``, else ``data/`` in gpengine's user cache (``$GPENGINE_CACHE``,
else ``$XDG_CACHE_HOME/gpengine``, else ``~/.cache/gpengine``). Inside it, the folder ``cifar-10-batches-py/``
of the official ``cifar-10-python.tar.gz`` (data_batch_1..5, test_batch). When
it is missing, the official archive is downloaded with a progress bar and its
MD5 checked; offline this fails with one message saying where to put the files.

The batches are pickles; they are read with an unpickler that only accepts
numpy arrays and plain containers, so a tampered file cannot run code. Images
stay uint8 tensors (N, 3, 32, 32); the validation split is carved from the
training set (stratified, seeded by `split_seed`, never by the evaluation
seed, so every candidate is scored on the same images). Augmentation (random
crop with padding 4, horizontal flip) and normalisation are batched tensor ops.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import attrs
import numpy as np
import torch

from gpengine.errors import DataError
from gpengine.paths import cache_dir

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
ENV_VAR = "GPENGINE_DATA"


def cache_root() -> Path:
    """gpengine's user cache: $GPENGINE_CACHE, else $XDG_CACHE_HOME/gpengine, else ~/.cache/gpengine."""
    return cache_dir()


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return cache_root() / "data"


def _missing(folder: Path) -> list[str]:
    return [f for f in TRAIN_FILES + (TEST_FILE,) if not (folder / f).is_file()]


def ensure_cifar10(root: Path, download: bool = True) -> Path:
    """The `cifar-10-batches-py` folder under `root` (or `root` itself), downloading it if missing."""
    missing = {folder: _missing(folder) for folder in (root / FOLDER, root)}
    for folder, absent in missing.items():
        if not absent:
            return folder
    partial = next((f for f, absent in missing.items() if len(absent) < len(TRAIN_FILES) + 1), None)
    found = "not found" if partial is None else f"incomplete in {partial} (missing {', '.join(missing[partial])})"
    where = (
        f"CIFAR-10 {found}: put the folder {FOLDER}/ of the official {URL.rsplit('/', 1)[1]} "
        f"(data_batch_1..5, test_batch) in {root}, or point --set data_dir=... or ${ENV_VAR} at the folder that holds it"
    )
    if not download:
        raise DataError(where)
    try:
        _download_and_extract(root)
    except (OSError, urllib.error.URLError, tarfile.TarError) as exc:
        raise DataError(f"{where} (the download from {URL} failed: {exc})") from None
    if _missing(root / FOLDER):
        raise DataError(f"{where} (the downloaded archive lacks {', '.join(_missing(root / FOLDER))})")
    return root / FOLDER


def _download_and_extract(root: Path) -> None:
    from tqdm import tqdm

    root.mkdir(parents=True, exist_ok=True)
    md5 = hashlib.md5()
    with tempfile.NamedTemporaryFile(dir=root, suffix=".tar.gz.part", delete=False) as tmp:
        try:
            with urllib.request.urlopen(URL, timeout=30) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc="CIFAR-10") as bar:
                    while chunk := resp.read(1 << 20):
                        tmp.write(chunk)
                        md5.update(chunk)
                        bar.update(len(chunk))
            tmp.close()
            if md5.hexdigest() != MD5:
                raise DataError(f"the download from {URL} is corrupt (MD5 {md5.hexdigest()}, expected {MD5}); run again")
            with tarfile.open(tmp.name) as tf:
                tf.extractall(root, filter="data")
        finally:
            Path(tmp.name).unlink(missing_ok=True)


class _ArrayUnpickler(pickle.Unpickler):
    """Accepts numpy arrays and plain containers only: a batch file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name}")


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one batch file; DataError if unreadable."""
    hint = f"delete {path.parent} to download it again, or replace the file"
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except FileNotFoundError:
        raise DataError(f"CIFAR-10 batch {path} is missing; {hint}") from None
    except Exception as exc:  # truncated or corrupt pickles raise all sorts of errors
        raise DataError(f"CIFAR-10 batch {path} is corrupt or truncated ({type(exc).__name__}: {exc}); {hint}") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data) or len(data) == 0:
        raise DataError(f"CIFAR-10 batch {path} has an unexpected shape {data.shape}; {hint}")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"CIFAR-10 batch {path} has labels outside 0..9; {hint}")
    return data.reshape(-1, 3, 32, 32), labels


def load_split(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    files = TRAIN_FILES if train else (TEST_FILE,)
    parts = [read_batch(folder / f) for f in files]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(x), torch.from_numpy(y)


def stratified_split(labels: np.ndarray, n_val: int, n_train: int | None, seed: int,
                     n_extra: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): `n_val` validation images with the class proportions of `labels`,
    then `n_train` (None: all the rest) training images, also stratified, from the rest.

    `n_extra` more scoring images, stratified from what neither part took, follow the split in
    `val` (sorted within each part). They come from a random stream of their own, so the split
    and the training images are the same with or without them.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if n_val + (n_train or 0) + n_extra > n or (n_extra and n_train is None):
        wanted = f"{n_val} validation + {n_train if n_train is not None else 'all other'} training images"
        raise DataError(f"asked for {wanted}{f' + {n_extra} more to score' if n_extra else ''}, "
                        f"the training set has {n}")
    rng = np.random.default_rng(seed)
    val = _stratified_take(labels, np.arange(n), n_val, rng)
    rest = np.setdiff1d(np.arange(n), val, assume_unique=True)
    train = rest if n_train is None else _stratified_take(labels, rest, n_train, rng)
    if not n_extra:
        return np.sort(train), np.sort(val)
    unused = np.setdiff1d(rest, train, assume_unique=True)
    extra = _stratified_take(labels, unused, n_extra, np.random.default_rng([seed, 1]))
    return np.sort(train), np.concatenate([np.sort(val), np.sort(extra)])


def _stratified_take(labels: np.ndarray, pool: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k indices from `pool`, per class in proportion to its count (largest remainders get the rest)."""
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    classes, counts = np.unique(labels[pool], return_counts=True)
    exact = counts * k / len(pool)
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: k - quota.sum()]:
        quota[i] += 1
    picked = [rng.permutation(pool[labels[pool] == c])[:q] for c, q in zip(classes, quota)]
    return np.concatenate(picked).astype(np.int64)


@attrs.frozen(eq=False)
class CifarData:
    """Training and scoring images in memory (uint8, NCHW) with their labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    eval_split: str  # "validation" or "test"
    digest: str
    # The validation split proper is eval_x[:n_split]; the images after it, held out of training
    # but not in the split, score only a full run's last epoch, the fitness (`final_val_size`).
    # None: all of eval_x is the split.
    n_split: int | None = None

    def split_only(self) -> "CifarData":
        """The same data scored on the validation split alone (itself when nothing follows the split)."""
        if self.n_split is None or self.n_split >= len(self.eval_y):
            return self
        digest = hashlib.blake2b(f"{self.digest}:split_only".encode(), digest_size=10).hexdigest()
        return attrs.evolve(self, eval_x=self.eval_x[: self.n_split], eval_y=self.eval_y[: self.n_split],
                            n_split=None, digest=digest)

    def to(self, device: torch.device) -> "CifarData":
        return attrs.evolve(self, **{k: getattr(self, k).to(device) for k in ("train_x", "train_y", "eval_x", "eval_y")})

    def with_train_subset(self, n: int, seed: int = 0) -> "CifarData":
        """The same scored split with `n` of the training images, stratified and fixed by `seed`.

        Every candidate trained at one data budget sees the same images, so a rung of
        successive halving compares activations, not samples.
        """
        keep = _stratified_take(self.train_y.cpu().numpy(), np.arange(len(self.train_y)), n, np.random.default_rng(seed))
        idx = torch.from_numpy(np.sort(keep)).to(self.train_y.device)
        digest = hashlib.blake2b(f"{self.digest}:train_subset:{n}:{seed}".encode(), digest_size=10).hexdigest()
        return attrs.evolve(self, train_x=self.train_x[idx].contiguous(), train_y=self.train_y[idx].contiguous(),
                            digest=digest)


def load_cifar10(folder: Path, n_train: int | None, n_val: int, split: str = "validation", split_seed: int = 0,
                 n_final: int | None = None) -> CifarData:
    """The training subset and the scored split: the carved validation set, or the official test set.

    `n_final` (above `n_val`): the validation split is followed by more images held out of
    training, up to `n_final` in all, which score a full run's last epoch (`CifarData.n_split`).
    """
    x, y = load_split(folder, train=True)
    test = load_split(folder, train=False) if split == "test" else None  # only when a user asks for it
    return carve(x, y, n_train, n_val, split, split_seed, n_final, test)


def carve(x: torch.Tensor, y: torch.Tensor, n_train: int | None, n_val: int, split: str, split_seed: int,
          n_final: int | None, test: tuple[torch.Tensor, torch.Tensor] | None) -> CifarData:
    """CifarData from a dataset's training images and labels: the stratified split of `stratified_split`,
    scored on the carved validation images (with `n_final`'s extra ones), or on `test` when given."""
    n_extra = max(0, (n_final or 0) - n_val) if test is None else 0
    tr, va = stratified_split(y.numpy(), n_val, n_train, split_seed, n_extra)
    ex, ey = test if test is not None else (x[va], y[va])
    h = hashlib.blake2b(digest_size=10)
    for t in (x[tr], y[tr], ex, ey):
        h.update(t.numpy().tobytes())
    return CifarData(x[tr].contiguous(), y[tr].contiguous(), ex.contiguous(), ey.contiguous(), split, h.hexdigest(),
                     n_split=n_val if n_extra else None)


AUGMENTATIONS = ("crop-flip", "flip", "none")


class Augment:
    """Training augmentation of a uint8 batch, then normalisation; all batched tensor ops.

    `mode` "crop-flip": a random 32x32 crop of the image padded by 4 and a random horizontal
    flip (the standard CIFAR recipe, GAAF's); "flip": the flip alone; "none": normalisation only.
    In a 4-epoch run on 10,000 images the crop cost about 3 points of validation accuracy
    (identity, 3 seeds: 44.55 +- 0.38 with flips alone, 41.72 +- 1.26 with crops; BENCHMARKS.md):
    the network is still underfitting, so the `quick` profile flips only and the longer
    profiles crop as well.
    """

    def __init__(self, device: torch.device, pad: int = 4, mode: str = "crop-flip") -> None:
        if mode not in AUGMENTATIONS:
            raise ValueError(f"augmentation {mode!r} is not one of {', '.join(AUGMENTATIONS)}")
        self.pad = pad
        self.mode = mode
        self.mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1) * 255
        self.inv_std = 1.0 / (torch.tensor(STD, device=device).view(1, 3, 1, 1) * 255)
        self.ar = torch.arange(32, device=device)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean) * self.inv_std

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.mode == "none":
            return self.normalize(x)
        n, p = x.shape[0], self.pad
        if self.mode == "flip":
            flip = torch.rand(n, generator=gen, device=gen.device).to(x.device) < 0.5
            return self.normalize(torch.where(flip[:, None, None, None], x.flip(3), x))
        off = torch.randint(0, 2 * p + 1, (2, n), generator=gen, device=gen.device).to(x.device)
        flip = torch.rand(n, generator=gen, device=gen.device).to(x.device) < 0.5
        padded = torch.nn.functional.pad(x, (p, p, p, p))
        rows = (off[0, :, None] + self.ar)[:, None, :, None]  # (n, 1, 32, 1)
        cols = off[1, :, None] + self.ar  # (n, 32)
        cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]  # flip = read columns backwards
        idx_n = torch.arange(n, device=x.device)[:, None, None, None]
        idx_c = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        return self.normalize(padded[idx_n, idx_c, rows, cols])
