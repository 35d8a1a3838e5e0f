"""Fidelity profiles of bnn-cifar: named sets of training knobs.

    smoke     seconds on a CPU, for tests: width 8, 2,000 images, 2 epochs of batch 64
    quick     a CPU search: width 16, 10,000 stratified training images, 5,000
              validation images (the last epoch, the fitness, on 20,000), 4
              epochs of batch 64, flips without crops, the activation's own
              parameters at 10x the learning rate; on a 2-core
              CPU about 65-75 s alone with 2 threads, about 150 s each when a
              search trains two at once with one thread each (the default)
    standard  width 32, the whole training set less the validation split, 10 epochs
    paper     GAAF's protocol: width 64, the whole training set (less the
              validation split), 15 epochs, Adam 5e-3, batch 128
    auto      quick on a CPU, standard on a GPU

Every knob can be overridden with ``--set`` (an option left unset takes the
profile's value). `train_size` None means every training image not held out.
"""

from __future__ import annotations

from typing import Any

import attrs

PROFILE_NAMES = ("auto", "smoke", "quick", "standard", "paper")


@attrs.frozen
class Profile:
    width: int
    epochs: int
    train_size: int | None
    val_size: int
    batch_size: int = 128
    # a full run's last epoch (the fitness) is scored on this many images, the split and more held
    # out of training; None or at most val_size: the split alone (evaluator option final_val_size)
    final_val_size: int | None = None
    lr: float = 5e-3
    act_lr_scale: float = 1.0  # the activation's own parameters learn at lr x this (train.TrainConfig)
    clip: float = 1.3
    augment: str = "crop-flip"  # "crop-flip", "flip" or "none" (data.Augment)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(width=8, epochs=2, train_size=2000, val_size=1000, batch_size=64),
    # Tuned for 4 short epochs, where the network still underfits (BENCHMARKS.md, session 4):
    # random crops cost ~3 points, and batch 64 (twice the steps, same images per second on a
    # CPU) gained ~1.2 more.
    # In these 625 steps the activation's learnable shifts, scales and blends barely leave their
    # starting values at the weights' lr; at 10x a learnable threshold, shift(x), scored 49.35 against
    # the identity's 45.51 over 3 seeds (45.65 at 1x); at 100x it diverged (42.46; session 19).
    # The fitness (the last epoch) is scored on 20,000 images: the 5,000 of the split and 15,000 more
    # held out of training. A network's score on 5,000 images strays 0.44 points from its score on
    # 40,000, as much as networks of different seeds differ (0.43); 20,000 take a third off the
    # fitness variance for one longer validation pass, about 4% more CPU (BENCHMARKS.md, session 21).
    "quick": Profile(width=16, epochs=4, train_size=10_000, val_size=5000, batch_size=64, augment="flip",
                     act_lr_scale=10.0, final_val_size=20_000),
    "standard": Profile(width=32, epochs=10, train_size=None, val_size=5000),
    "paper": Profile(width=64, epochs=15, train_size=None, val_size=5000),
}


def resolve_profile(name: str, on_gpu: bool) -> str:
    if name == "auto":
        return "standard" if on_gpu else "quick"
    return name


def settings_from(profile: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The profile's knobs, with every override that is not None applied."""
    values = attrs.asdict(PROFILES[profile])
    for key in values:
        if overrides.get(key) is not None:
            values[key] = overrides[key]
    if overrides.get("train_size") == 0:  # 0 asks for the whole training set explicitly
        values["train_size"] = None
    return values
