"""Tiny CIFAR-10 look-alikes in the standard python layout, for the bnn-cifar tests.

Each class gets its own mean colour plus noise, so a network can learn it in a
few steps; files are written exactly like the official `cifar-10-batches-py`.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def fake_images(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    labels = [i % 10 for i in range(n)]
    rng.shuffle(labels)
    base = np.linspace(20, 235, 10)
    data = np.empty((n, 3, 32, 32), dtype=np.uint8)
    for i, c in enumerate(labels):
        colour = np.array([base[c], base[(c * 3) % 10], base[(c * 7) % 10]])[:, None, None]
        data[i] = np.clip(colour + rng.normal(0, 25, (3, 32, 32)), 0, 255).astype(np.uint8)
    return data.reshape(n, 3072), [int(c) for c in labels]


def write_fake_cifar(root: Path, per_batch: int = 64, n_test: int = 100) -> Path:
    """Write root/cifar-10-batches-py/ with 5 training batches of `per_batch` images and a test batch."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        data, labels = fake_images(n_test if name == "test_batch" else per_batch, seed=k)
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(len(labels))]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    meta = {b"label_names": [f"class{i}".encode() for i in range(10)], b"num_cases_per_batch": per_batch}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return folder
