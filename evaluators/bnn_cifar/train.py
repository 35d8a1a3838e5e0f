"""Training loop of one bnn-cifar evaluation: Adam, one-cycle cosine schedule, batched data.

`train` returns a typed `Outcome` and never raises for a bad candidate:
a NaN or exploding loss, or parameters that turn non-finite, end the run with
status failed and a reason. The schedule spans exactly the epochs of this run,
so a smaller budget anneals sooner rather than stopping a long schedule
midway. With `abort_floor` set, a run whose validation accuracy after its first
epoch is no better than that floor stops there with status aborted.

Speed knobs (measured in tests/bench/, figures in BENCHMARKS.md): bf16
autocast (bf16 in the binary convolutions alone is the model's own switch,
`BinaryResNet18.set_binary_dtype`), channels-last memory format, torch
threads, torch.compile of the model for the training step and for validation
(fused activation, sign and BatchNorm kernels; if compiling fails the run goes
on eagerly and says so in `Outcome.compiled`), and validating only after
the last epoch (`TrainConfig.validate`). Determinism: the seed fixes the
initial weights, the data order and the augmentation; on a CPU with
the same thread count the same seed gives the same result.

Progress goes to `gpengine.eval_progress.report_progress` every `CHECK_EVERY` steps (when the
loss is read anyway) and after each validation: `gpengine evaluate` shows it as a bar.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import attrs
import torch
import torch.nn.functional as F

from evaluators.bnn_cifar.data import Augment, CifarData
from evaluators.bnn_cifar.model import BinaryResNet18
from gpengine.eval_progress import report_progress

LOSS_LIMIT = 1e3  # cross-entropy of 10 classes starts near 2.3; beyond this the run has diverged
CHECK_EVERY = 20  # steps between loss checks (each check syncs a GPU)


@attrs.frozen
class TrainConfig:
    epochs: int
    batch_size: int = 128
    lr: float = 5e-3
    # The activation's own parameters learn this many times faster than the weights. In a short
    # schedule at 1x, a learnable shift barely leaves 0 (Adam moves a parameter about lr a step), yet
    # a sign threshold moved off 0 is what the searches kept finding (BENCHMARKS.md, session 19).
    act_lr_scale: float = 1.0
    amp: bool = False
    channels_last: bool = False
    device: str = "cpu"
    # 128, not larger: at width 16 on a CPU, 1,000-image batches evaluated 1.6x slower (cache misses)
    eval_batch_size: int = 128
    compile: bool = False  # torch.compile training (forward and backward) and validation
    # torch.compile's mode: "reduce-overhead" also records CUDA graphs of the compiled forward and
    # backward, so a GPU replays each as one launch instead of hundreds of small kernels
    compile_mode: str = "default"
    augment: str = "crop-flip"  # see data.Augment
    # Which epochs end with a validation pass: "every" one, or only the "last" (and the first when an
    # abort floor needs it). Validation never changes training, so the final accuracy is the same either
    # way; "last" leaves NaN in the validation curves for the epochs it skips. An eager validation of
    # 5,000 images costs as much as training 2,000: 44% of a quick-profile low rung (BENCHMARKS.md).
    validate: str = attrs.field(default="every", validator=attrs.validators.in_(("every", "last")))

    @property
    def cuda_graphs(self) -> bool:
        """Compiled with CUDA graphs: every training step and validation batch starts a new graph iteration."""
        return self.compile and self.compile_mode == "reduce-overhead"


@attrs.frozen
class Outcome:
    status: str  # "ok", "failed" or "aborted"
    message: str
    curves: dict[str, list[float]]
    epochs_run: int
    wall_time: float
    images_per_second: float
    compiled: bool = False  # the training step ran compiled

    @property
    def final_accuracy(self) -> float:
        acc = self.curves.get("val_accuracy", [])
        return acc[-1] if acc else math.nan

    @property
    def best_epoch(self) -> int | None:
        """The epoch (from 1) of the highest validation accuracy among the epochs validated."""
        acc = self.curves.get("val_accuracy", [])
        validated = [i for i, a in enumerate(acc) if math.isfinite(a)]
        return max(validated, key=acc.__getitem__) + 1 if validated else None


def _autocast(cfg: TrainConfig):
    device_type = "cuda" if cfg.device.startswith("cuda") else "cpu"
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=cfg.amp)


@torch.inference_mode()
def evaluate_accuracy(model, data: CifarData, aug: Augment, cfg: TrainConfig) -> tuple[float, float]:
    """Top-1 accuracy in percent and mean cross-entropy on the scored split.

    `model` is the network or its compiled wrapper. Every batch has the same shape (the last
    one is padded with blank images whose outputs are dropped: BatchNorm in eval mode treats
    each image alone), so a compiled model compiles its evaluation graph once, not once more
    for the remainder.
    """
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=data.eval_y.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=data.eval_y.device)
    n, bs = len(data.eval_y), cfg.eval_batch_size
    for i in range(0, n, bs):
        x = aug.normalize(data.eval_x[i : i + bs])
        y = data.eval_y[i : i + bs]
        k = len(y)
        if k < bs and n > bs:
            x = torch.cat([x, x.new_zeros((bs - k, *x.shape[1:]))])
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if cfg.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with _autocast(cfg):
            logits = model(x)[:k]
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").double()
        correct += (logits.argmax(1) == y).sum()
    return 100.0 * correct.item() / n, loss_sum.item() / n


class _Step:
    """Forward, loss and backward of one training batch: compiled when asked, eager if compiling fails.

    torch.compile compiles at the first forward and the first backward, so a failure shows
    in the first batch (with CUDA graphs, which are recorded at a later call, in one of the
    first few); the failing batch has taken no optimiser step yet, so it is redone eagerly
    (gradients cleared, BatchNorm's running statistics put back: a backward that fails to compile
    comes after the compiled forward has updated them) and the run goes on eagerly. Later errors
    are the candidate's and propagate.
    """

    def __init__(self, model: BinaryResNet18, cfg: TrainConfig) -> None:
        self.model = model
        compile = cfg.compile
        # CUDA graphs reuse their output buffers: each training step is a new iteration for them
        self._graphs = cfg.cuda_graphs
        if compile:
            # A fresh compile per run: dynamo would otherwise keep recompiling the same forward
            # for each new activation and, past its cache limit, silently run it eagerly.
            torch.compiler.reset()
        # Static shapes: training batches all have one size and evaluation pads its last batch,
        # so each mode compiles once (dynamic shapes would compile a second, slower graph).
        mode = None if cfg.compile_mode == "default" else cfg.compile_mode
        self._compiled = torch.compile(model, dynamic=False, mode=mode) if compile else None
        # calls that may still fail for torch.compile's reasons (CUDA graphs record at the 2nd or 3rd)
        self._compile_calls_left = 3 if self._graphs else 1
        self._first_eval = True
        self._eval_compiled = compile

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def loss_and_grads(self, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
        if self._compiled is not None:
            # the first calls may fail after the forward ran: keep what it would change (a few copies, once)
            buffers = [(b, b.clone()) for b in self.model.buffers()] if self._compile_calls_left > 0 else []
            try:
                if self._graphs:
                    torch.compiler.cudagraph_mark_step_begin()
                return self._run(self._compiled, x, y, cfg)
            except Exception:  # noqa: BLE001 - a dynamo/inductor failure is not the candidate's fault
                if self._compile_calls_left <= 0:
                    raise
                self._compiled = None
                self.model.zero_grad(set_to_none=True)
                with torch.no_grad():
                    for live, saved in buffers:
                        live.copy_(saved)
            finally:
                self._compile_calls_left -= 1
        return self._run(self.model, x, y, cfg)

    def evaluate(self, data: CifarData, aug: Augment, cfg: TrainConfig) -> tuple[float, float]:
        """Validation through the compiled model (its eval-mode graph: 5x faster on the CPU), eager if that fails."""
        if self._compiled is not None and self._eval_compiled:
            try:
                return evaluate_accuracy(self._compiled, data, aug, cfg)
            except Exception:  # noqa: BLE001 - as in training: only the first compile may fall back
                if not self._first_eval:
                    raise
                self._eval_compiled = False  # training stays compiled
            finally:
                self._first_eval = False
        return evaluate_accuracy(self.model, data, aug, cfg)

    @staticmethod
    def _run(model, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
        with _autocast(cfg):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        return loss


def _params_finite(model: torch.nn.Module) -> bool:
    norms = torch._foreach_norm([p.detach() for p in model.parameters()])
    return bool(torch.isfinite(torch.stack(norms)).all())


def _param_groups(model: BinaryResNet18, cfg: TrainConfig) -> list[dict]:
    """The network's weights at `cfg.lr`, and the activation's own parameters (per-layer shift, scale,
    constant, blend) at `cfg.lr * cfg.act_lr_scale`, a group of their own only when they exist."""
    own = model.activation_parameters()
    own_ids = {id(p) for p in own}
    groups = [{"params": [p for p in model.parameters() if id(p) not in own_ids], "lr": cfg.lr}]
    if own:
        groups.append({"params": own, "lr": cfg.lr * cfg.act_lr_scale})
    return groups


def train(
    model: BinaryResNet18,
    data: CifarData,
    cfg: TrainConfig,
    seed: int,
    abort_floor: float | None = None,
    stop_after: int | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    progress_label: str | None = None,
) -> Outcome:
    """Train `model` for cfg.epochs (or only `stop_after` epochs of that schedule).

    `progress_label` names a run that is not the candidate's (the abort floor's) in its progress reports."""
    device = torch.device(cfg.device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    aug = Augment(device, mode=cfg.augment)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    n = len(data.train_y)
    steps_per_epoch = n // cfg.batch_size
    if steps_per_epoch < 1:
        return Outcome("failed", f"{n} training images is less than one batch of {cfg.batch_size}", {}, 0, 0.0, 0.0)
    groups = _param_groups(model, cfg)
    opt = torch.optim.Adam(groups, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in groups], total_steps=cfg.epochs * steps_per_epoch, anneal_strategy="cos"
    )
    curves: dict[str, list[float]] = {"val_accuracy": [], "val_loss": [], "train_loss": [], "lr": []}
    t0 = time.perf_counter()
    train_time = 0.0
    images = 0
    last_epoch = cfg.epochs if stop_after is None else min(stop_after, cfg.epochs)

    step_fn = _Step(model, cfg)
    # the schedule's last epoch scores every image held for it (final_val_size); the others the split alone
    split_only = data.split_only()

    def done(status: str, message: str, epoch: int) -> Outcome:
        ips = images / train_time if train_time > 0 else 0.0
        return Outcome(status, message, curves, epoch, time.perf_counter() - t0, ips, step_fn.compiled)

    total_steps = last_epoch * steps_per_epoch
    shown: dict[str, object] = {"run": progress_label} if progress_label else {}
    shown["epoch"] = f"1/{last_epoch}"  # what the progress bar shows beside the count
    if step_fn.compiled:
        shown["first step"] = "compiles"
    report_progress(0, total_steps, **shown)
    for epoch in range(1, last_epoch + 1):
        model.train()
        t_epoch = time.perf_counter()
        order = torch.randperm(n, generator=gen).to(device)
        loss_sum = torch.zeros((), device=device)
        lr_sum = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            x = aug(data.train_x[idx], gen)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            opt.zero_grad(set_to_none=True)
            loss = step_fn.loss_and_grads(x, data.train_y[idx], cfg)
            lr_sum += opt.param_groups[0]["lr"]
            opt.step()
            sched.step()
            model.clamp_latent_()
            loss_sum += loss.detach()
            if (step + 1) % CHECK_EVERY == 0 or step + 1 == steps_per_epoch:
                value = loss.item()
                shown.pop("first step", None)
                shown.update(epoch=f"{epoch}/{last_epoch}", loss=value)
                report_progress((epoch - 1) * steps_per_epoch + step + 1, total_steps, **shown)
                if not math.isfinite(value) or value > LOSS_LIMIT:
                    word = "NaN" if math.isnan(value) else ("infinite" if math.isinf(value) else "exploding")
                    train_time += time.perf_counter() - t_epoch
                    images += (step + 1) * cfg.batch_size
                    return done("failed", f"{word} training loss ({value:.4g}) at epoch {epoch}, step {step + 1}", epoch - 1)
        train_time += time.perf_counter() - t_epoch
        images += steps_per_epoch * cfg.batch_size
        if not _params_finite(model):
            return done("failed", f"parameters became NaN or infinite in epoch {epoch}", epoch - 1)
        checks_abort = abort_floor is not None and epoch == 1 and cfg.epochs > 1
        validated = cfg.validate == "every" or epoch == last_epoch or checks_abort
        scored = data if epoch == cfg.epochs else split_only
        acc, val_loss = step_fn.evaluate(scored, aug, cfg) if validated else (math.nan, math.nan)
        curves["val_accuracy"].append(acc)
        curves["val_loss"].append(val_loss)
        curves["train_loss"].append(loss_sum.item() / steps_per_epoch)
        curves["lr"].append(lr_sum / steps_per_epoch)
        if on_epoch is not None:
            on_epoch(epoch, {k: v[-1] for k, v in curves.items()})
        if not validated:  # nothing measured, so nothing to end the run on
            continue
        shown["val"] = f"{acc:.2f}%"
        report_progress(epoch * steps_per_epoch, total_steps, **shown)
        if not math.isfinite(val_loss):
            return done("failed", f"NaN or infinite validation loss after epoch {epoch}", epoch)
        if checks_abort and acc <= abort_floor:
            return done(
                "aborted",
                f"aborted after epoch 1: {acc:.2f}% is no better than the degenerate floor {abort_floor:.2f}% "
                "(a constant activation, same configuration)",
                epoch,
            )
    return done("ok", "", last_epoch)
