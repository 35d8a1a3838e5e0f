"""Fashion-MNIST from its IDX files (gzip or raw), held in memory in bnn-cifar's `CifarData`.

Where the files live: the option ``data_dir``, else ``$GPENGINE_DATA`` (the
folder itself or its ``fashion-mnist/``), else Debian's
``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``),
else ``fashion-mnist/`` in gpengine's user cache. Missing or malformed files
are a `DataError` saying where to put them; nothing is downloaded.

Images are 28x28 grey; they are zero-padded to 32x32 (the background is 0,
as LeNet-5 padded MNIST) because bnn-cifar's batched augmentation crops 32x32
windows, and stored (N, 1, 32, 32) uint8. The validation split is carved
from the training set with bnn-cifar's stratified split, seeded by
`split_seed`, never by the evaluation seed.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from evaluators.bnn_cifar.data import CifarData, carve
from gpengine.errors import DataError
from gpengine.paths import cache_dir

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "GPENGINE_DATA"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801
PAD = 2  # 28 + 2 * 2 = 32


def _file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _complete(folder: Path) -> bool:
    return all(_file(folder, stem) for pair in FILES.values() for stem in pair)


def candidates(data_dir: str | os.PathLike | None) -> list[Path]:
    if data_dir:
        root = Path(data_dir).expanduser()
        return [root, root / "fashion-mnist"]
    out = []
    if os.environ.get(ENV_VAR):
        root = Path(os.environ[ENV_VAR]).expanduser()
        out += [root, root / "fashion-mnist"]
    return out + [DEBIAN_DIR, cache_dir() / "data" / "fashion-mnist"]


def find_fmnist(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding the four IDX files; DataError naming where it looked."""
    tried = candidates(data_dir)
    for folder in tried:
        if _complete(folder):
            return folder
    names = ", ".join(s + "[.gz]" for pair in FILES.values() for s in pair)
    raise DataError(
        f"Fashion-MNIST not found in {', '.join(map(str, tried))}: install Debian's dataset-fashion-mnist "
        f"(apt-get install dataset-fashion-mnist), or put {names} in a folder and point --set data_dir=... "
        f"or ${ENV_VAR} at it"
    )


def read_idx(path: Path, magic: int) -> np.ndarray:
    """One IDX array of unsigned bytes (gzip or raw); DataError if the header or length is wrong."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:  # zlib.error: a corrupt deflate stream
        raise DataError(f"cannot read {path}: {exc}") from None
    if len(raw) < 8 or int.from_bytes(raw[:4], "big") != magic:
        raise DataError(f"{path} is not an IDX file of unsigned bytes with {magic & 0xFF} dimension(s)")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    start = 4 + 4 * ndim
    n = int(np.prod(shape))
    if len(raw) != start + n:
        raise DataError(f"{path} is truncated or too long: {len(raw) - start} bytes of data for shape {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(shape)


def load_split(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, 32, 32) uint8, zero-padded, and labels (N,) int64."""
    img_stem, lab_stem = FILES[split]
    images = read_idx(_file(folder, img_stem), IMAGE_MAGIC)
    labels = read_idx(_file(folder, lab_stem), LABEL_MAGIC).astype(np.int64)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{folder}/{img_stem}: expected 28x28 images, got shape {images.shape}")
    if len(images) != len(labels) or len(labels) == 0:
        raise DataError(f"{folder}: {len(images)} images but {len(labels)} labels in the {split} split")
    if labels.max() > 9:
        raise DataError(f"{folder}/{lab_stem}: labels outside 0..9")
    padded = np.pad(images, ((0, 0), (PAD, PAD), (PAD, PAD)))[:, None]
    return torch.from_numpy(np.ascontiguousarray(padded)), torch.from_numpy(labels)


def load_fmnist(folder: Path, n_train: int | None, n_val: int, split: str = "validation",
                split_seed: int = 0, n_final: int | None = None) -> CifarData:
    """Training subset and scored split (carved validation set, or the official t10k test set);
    `n_final` as in `load_cifar10`."""
    x, y = load_split(folder, "train")
    return carve(x, y, n_train, n_val, split, split_seed, n_final, load_split(folder, "test") if split == "test" else None)
