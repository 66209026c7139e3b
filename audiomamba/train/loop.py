"""The training loop (docs/ARCHITECTURE.md §7): AdamW + warm-up/cosine, clipping, bf16 on CUDA, validation BPB,
atomic best/last checkpoints with exact resume, DDP under ``torchrun``, JSONL logs and curve plots.

Run-folder contents (written by rank 0 only)::

    recipe.toml        the resolved recipe        model_config.json  the resolved model config
    last.pt, best.pt   checkpoints                metrics.jsonl      train/val records
    curves.png         loss/BPB curves            tensorboard/       when TensorBoard is installed
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from audiomamba.data.resilient import Resilient
from audiomamba.errors import AudioMambaError, CheckpointError, ConfigError, DataError
from audiomamba.generate.noise import PROFILE_FILE, NoiseProfile, fit_profile
from audiomamba.recipe import Recipe, pool_product, recipe_from_dict
from audiomamba.tokenizer import bits_per_sample
from audiomamba.train import nll as nll_mod
from audiomamba.train.checkpoint import (
    BEST,
    CHECKPOINT_FORMAT,
    LAST,
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from audiomamba.train.distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    broadcast_flag,
    init_distributed,
    shutdown,
)
from audiomamba.train.lock import RunLock
from audiomamba.train.metrics_log import MetricsLog
from audiomamba.train.optim import build_optimizer
from audiomamba.train.plots import plot_curves
from audiomamba.train.progress import TrainProgress
from audiomamba.train.sampler import LoaderPosition, ShardedBatches, batches_per_epoch, epoch_permutation

RUN_MARKERS = (LAST, BEST, "metrics.jsonl", "recipe.toml")
PROFILE_CLIPS = 256  # training clips (their first second) that the run's noise profile is fitted on
VAL_SEED = 1234
MAX_PENDING = 100  # steps whose loss and gradient norm may wait on the device before one read-back
#: ``AUDIOMAMBA_TRAIN_SYNC=1`` reads them back after every step (the old loop; for same-run comparisons)
SYNC_ENV = "AUDIOMAMBA_TRAIN_SYNC"


class TrainingDiverged(AudioMambaError):
    """The loss or gradient became NaN/inf; the last good checkpoint is kept."""


@dataclass
class RunOptions:
    """How to run a recipe (the CLI flags). ``max_steps`` stops early without changing the schedule."""

    out: Path
    resume: bool = False
    max_steps: int | None = None
    max_minutes: float | None = None
    device: str | None = None
    progress: bool = True
    skip_bad: bool = False  # leave out the files the data pre-flight rejects (else stop before step 1)
    check_samples: bool = False  # the pre-flight also reads every file's samples (NaN/inf; cached)
    snapshot_minutes: tuple[float, ...] = ()  # also keep snap-<m>min.pt when m minutes of training have passed


@dataclass
class TrainResult:
    """What a finished (or stopped) run reached."""

    run_dir: Path
    step: int
    stop_reason: str
    best_val_bpb: float | None = None
    last_val_bpb: float | None = None
    last_train_bpb: float | None = None
    n_params: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def holds_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` already holds (part of) a training run."""
    return run_dir.is_dir() and any((run_dir / m).exists() for m in RUN_MARKERS)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _check_resume_compatible(saved: Recipe, given: Recipe, where: str) -> list[str]:
    """The data and model of a resumed run must match; optim/schedule/train may change (returned as notes)."""
    a, b = saved.to_dict(), given.to_dict()
    notes = []
    for section in ("data", "model", "optim", "schedule", "train"):
        keys = set(a.get(section, {})) | set(b.get(section, {}))
        for key in sorted(keys):
            va, vb = a.get(section, {}).get(key), b.get(section, {}).get(key)
            if va == vb or (section == "data" and key in ("root", "num_workers")):
                continue
            if section in ("data", "model"):
                raise ConfigError(
                    f"--resume of {where}: {section}.{key} is {vb!r} but the run was trained with {va!r}; "
                    "resume with the run's own recipe (its recipe.toml) or start a new --out"
                )
            notes.append(f"{section}.{key}: {va!r} -> {vb!r}")
    return notes


def _preflight(recipe: Recipe, skip_bad: bool, deep: bool = False) -> frozenset[Path]:
    """Check every file of the data folder before step 1; the files to leave out (``skip_bad``)."""
    from audiomamba.data.inspect import preflight

    d = recipe.data
    if not d.root:
        raise ConfigError(f"data.root is empty in {recipe.source}: pass --data DIR")
    if not Path(d.root).is_dir():
        raise DataError(f"dataset folder {d.root} (data.root of {recipe.name}) not found: pass --data DIR")
    return frozenset(preflight(d.root, skip_bad, deep).rejected)


def _build_data(recipe: Recipe, model_config: dict[str, Any], exclude: frozenset[Path] = frozenset()):
    from audiomamba.data import WaveAugment, build_dataset

    pp = pool_product(model_config)
    d = recipe.data
    augment = WaveAugment(d.augment_speed, d.augment_gain_db)
    train_ds = build_dataset(d.kind, d.root, "train", d.sample_len, d.normalization, pp, d.clips_per_class, exclude,
                             augment)
    val_ds = build_dataset(d.kind, d.root, d.val_split, d.sample_len, d.normalization, pp,
                           d.clips_per_class if d.val_split == "train" else None, exclude)
    return train_ds, val_ds


def noise_profile_of(dataset) -> NoiseProfile:
    """The noise profile of up to :data:`PROFILE_CLIPS` training items (fewer for long segments): the
    first second of each, decoded from its tokens, so in the domain of generated samples.
    Generation flags noise against it."""
    from audiomamba.data.resilient import READ_ERRORS
    from audiomamba.tokenizer import mu_law_decode

    waves = []
    # at most ~4 M samples read in all (a long YouTubeMix segment is read whole)
    n = min(PROFILE_CLIPS, max(8, (1 << 22) // max(int(getattr(dataset, "sample_len", 16000)), 1)))
    for i in epoch_permutation(len(dataset), VAL_SEED, 0)[:n].tolist():
        try:
            tokens = dataset.target(i) if hasattr(dataset, "target") else dataset[i][1]  # not augmented
            waves.append(mu_law_decode(tokens[:16000]).numpy())
        except READ_ERRORS:  # an unreadable clip is the training loop's business, not the profile's
            continue
    return fit_profile(waves)


def _val_indices(n: int, n_wanted: int, info: DistInfo) -> list[int]:
    """This rank's share of the fixed validation subset (the same subset at every evaluation)."""
    chosen = epoch_permutation(n, VAL_SEED, 0)[: min(n, n_wanted)].tolist()
    return chosen[info.rank :: info.world_size]


@dataclass
class _Window:
    """Loss and throughput since the last train log record."""

    start: float
    loss: float = 0.0
    n: int = 0
    sequences: int = 0
    samples: int = 0

    def add(self, loss: float) -> None:
        self.loss, self.n = self.loss + loss, self.n + 1

    def count(self, sequences: int, length: int) -> None:
        self.sequences, self.samples = self.sequences + sequences, self.samples + sequences * length

    def reset(self, start: float) -> None:
        self.start, self.loss, self.n, self.sequences, self.samples = start, 0.0, 0, 0, 0


def compile_for_training(module: nn.Module, device: torch.device, mode: str = "default") -> nn.Module:
    """``torch.compile`` of the training forward (``train.compile``): static shapes (the batch shape is
    fixed, so one graph); the scan is an opaque op that runs our kernels (kernels/scan_op.py). Only the
    returned wrapper is compiled: the module itself (its state_dict keys, the EMA, clipping,
    validation) stays the plain one. On the CPU Inductor needs a C++ compiler."""
    import shutil

    if device.type == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        raise ConfigError("train.compile = true on the CPU needs a C++ compiler (Inductor's CPU backend): install g++, "
                          "or --set train.compile=false")
    return torch.compile(module, dynamic=False, mode=None if mode == "default" else mode)


class Trainer:
    """One training run of a recipe in a run folder. Use :func:`train_recipe`."""

    def __init__(self, recipe: Recipe, opts: RunOptions, info: DistInfo) -> None:
        self.recipe, self.opts, self.info = recipe, opts, info
        self.run_dir = Path(opts.out)
        self.device = info.device
        self.notes: list[str] = []
        self.lock = RunLock(self.run_dir) if info.is_main else None
        try:
            self._setup()
        except BaseException:
            if self.lock is not None:
                self.lock.release()
                if self.run_dir.is_dir() and not any(self.run_dir.iterdir()):
                    self.run_dir.rmdir()  # refused before anything was written: leave no trace
            raise

    def _setup(self) -> None:
        recipe, opts, info = self.recipe, self.opts, self.info
        self._prepare_folder()
        exclude = _preflight(recipe, opts.skip_bad, opts.check_samples)
        state = load_checkpoint(self.run_dir, prefer=LAST) if opts.resume else None
        if state is not None:
            saved = recipe_from_dict(state["recipe"], source=state["path"], check_model=False)
            self.notes = _check_resume_compatible(saved, recipe, str(self.run_dir))
            self.model_config = state["model_config"]
        else:
            self.model_config = recipe.model_config()
        from audiomamba.model import build_model

        _seed_everything(recipe.train.seed)
        self.model: nn.Module = build_model(self.model_config).to(self.device)
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.train_ds, self.val_ds = _build_data(recipe, self.model_config, exclude)
        if exclude and info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "rejected_files.txt").write_text("".join(f"{p}\n" for p in sorted(exclude)))
        self.skipped_items = 0
        world = info.world_size
        if recipe.data.batch_size % world:
            raise ConfigError(
                f"data.batch_size {recipe.data.batch_size} is not divisible by the {world} processes: "
                "use a multiple of the number of processes"
            )
        self.local_batch = recipe.data.batch_size // world
        self.bpe = batches_per_epoch(len(self.train_ds), self.local_batch, world)
        if self.bpe == 0:
            raise DataError(
                f"{len(self.train_ds)} training items in {recipe.data.root} are fewer than one batch of "
                f"{recipe.data.batch_size}: lower data.batch_size (--set data.batch_size=N) or add data"
            )
        self.opt, self.sched = build_optimizer(self.model, recipe.optim, recipe.schedule, recipe.train.steps)
        # EMA of the weights (float32, parameters and float buffers); sampling uses it by default
        self._ema_src = {k: v for k, v in self.model.state_dict().items() if v.is_floating_point()}
        self.ema = {k: v.detach().float().clone() for k, v in self._ema_src.items()} if recipe.train.ema > 0 else None
        self.step = 0
        self.elapsed0 = 0.0  # training-clock seconds before this process (from the resumed checkpoint)
        self._t0: float | None = None  # monotonic time at which the training clock read zero
        # (step, loss, gradient norm or None) on the device, not yet read back (see _settle)
        self._pending: list[tuple[int, torch.Tensor, torch.Tensor | None]] = []
        self._last_loss: float | None = None
        self.pos = LoaderPosition()
        self.best_val: float | None = None
        self.last_val: float | None = None
        if state is not None:
            self._load_state(state)
            if self.notes:
                self._apply_changed_hyperparameters()
        self.ddp: nn.Module = self.model
        if info.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=ids)
        if recipe.train.compile:
            self.ddp = compile_for_training(self.ddp, self.device, recipe.train.compile_mode)
        if info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log = MetricsLog(self.run_dir, enabled=info.is_main)
        if opts.resume:
            self.log.truncate_after(self.step)
        elif info.is_main:
            (self.run_dir / "recipe.toml").write_text(recipe.to_toml())
            (self.run_dir / "model_config.json").write_text(json.dumps(self.model_config, indent=2))
        if info.is_main and not (self.run_dir / PROFILE_FILE).is_file():
            noise_profile_of(self.train_ds).save(self.run_dir / PROFILE_FILE)

    # -- setup -----------------------------------------------------------------------------
    def _prepare_folder(self) -> None:
        if self.opts.resume:
            if not (self.run_dir / LAST).is_file():  # died before its first checkpoint: start it again
                if self.info.is_main:
                    print(f"note: --resume: no {LAST} in {self.run_dir} yet (the run stopped before its first "
                          "checkpoint); starting it fresh")
                    for name in ("metrics.jsonl", PROFILE_FILE):
                        (self.run_dir / name).unlink(missing_ok=True)
                self.opts.resume = False
        elif holds_run(self.run_dir):
            raise AudioMambaError(
                f"run folder {self.run_dir} already holds a run: pass --resume to continue it, or choose another --out"
            )
        barrier(self.info)

    def _load_state(self, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"])
            if "optimizer" in state:
                self.opt.load_state_dict(state["optimizer"])
            self.sched.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError) as err:
            first = str(err).strip().splitlines()[0][:120]
            raise CheckpointError(f"cannot resume from {state['path']} ({first}): start a new --out") from None
        if self.ema is not None and state.get("ema"):
            for k, v in self.ema.items():
                v.copy_(state["ema"][k])
        elif self.ema is not None:  # a slim copy without the EMA (slim --no-ema): it restarts from the weights
            for k, v in self.ema.items():
                v.copy_(self._ema_src[k])
            if self.info.is_main:
                print(f"note: --resume from {state['path']}, which has no EMA: the EMA starts again from its weights")
        if "optimizer" not in state:  # a slim checkpoint (slim_checkpoint): the lr from the schedule, fresh moments
            for group, lr in zip(self.opt.param_groups, self.sched.get_last_lr(), strict=True):
                group["lr"] = lr
            if self.info.is_main:
                print(f"note: --resume from {state['path']}, a slim checkpoint without optimizer state: "
                      "AdamW's moments start again from zero")
        self.step = int(state["step"])
        self.elapsed0 = float(state.get("elapsed_s", 0.0))
        self.pos = LoaderPosition(**state["loader"])
        metrics = state.get("metrics", {})
        self.best_val = metrics.get("best_val_bpb")
        self.last_val = metrics.get("val_bpb")
        restore_rng(state["rng"])

    def _apply_changed_hyperparameters(self) -> None:
        """On a resume with changed optim/schedule/train settings, make the recipe's values take effect
        (the loaded optimiser/scheduler state would otherwise keep the old lr, betas and schedule length)."""
        r = self.recipe
        fn = self.sched.lr_lambdas[0]
        for f in self.sched.lr_lambdas:
            f.total_steps = r.train.steps
            f.warmup_steps = int(round(r.schedule.warmup * r.train.steps))
            f.kind, f.min_ratio = r.schedule.kind, r.schedule.min_lr_ratio
        self.sched.base_lrs = [r.optim.lr for _ in self.opt.param_groups]
        for group in self.opt.param_groups:
            group["initial_lr"] = r.optim.lr
            group["lr"] = r.optim.lr * fn(self.sched.last_epoch)
            group["betas"] = tuple(r.optim.betas)
            group["eps"] = r.optim.eps
            if group["weight_decay"] > 0:
                group["weight_decay"] = r.optim.weight_decay

    def _state(self, train_loss: float | None) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "loader": self.pos.to_dict(),
            "rng": capture_rng(),
            "recipe": self.recipe.to_dict(),
            "model_config": self.model_config,
            "metrics": {"best_val_bpb": self.best_val, "val_bpb": self.last_val, "train_loss": train_loss},
            "world_size": self.info.world_size,
            "n_params": self.n_params,
            # the training clock (wall seconds of training across resumes) that --snapshot-minutes reads
            "elapsed_s": time.monotonic() - self._t0 if self._t0 is not None else self.elapsed0,
            **({"ema": self.ema, "ema_decay": self.recipe.train.ema} if self.ema is not None else {}),
        }

    def save(self, name: str, train_loss: float | None) -> None:
        if self.info.is_main:
            save_checkpoint(self.run_dir / name, self._state(train_loss))

    # -- evaluation ---------------------------------------------------------------------------
    def validate(self) -> float:
        """Validation BPB over the fixed subset of ``val_batches`` global batches."""
        idx = _val_indices(len(self.val_ds), self.recipe.train.val_batches * self.recipe.data.batch_size, self.info)
        total, count = nll_mod.dataset_nll(
            self.model, self.val_ds, self.local_batch, self.device, idx, self.recipe.train.bf16, resilient=True
        )
        total, count = all_reduce_sum([total, float(count)], self.info)
        return bits_per_sample(total / max(count, 1.0))

    # -- the loop -----------------------------------------------------------------------------
    def _batches(self):
        """This rank's training batches, epoch after epoch, from the saved loader position (so a
        resumed run draws exactly the batches it would have drawn): (inputs, targets, skipped)."""
        r = self.recipe
        while True:
            if self.pos.index >= self.bpe:
                self.pos = LoaderPosition(self.pos.epoch + 1, 0)
            sampler = ShardedBatches(len(self.train_ds), self.local_batch, r.train.seed, self.pos.epoch,
                                     self.pos.index, self.info.rank, self.info.world_size)
            yield from DataLoader(Resilient(self.train_ds), batch_sampler=sampler, num_workers=r.data.num_workers,
                                  pin_memory=self.device.type == "cuda")

    def run(self) -> TrainResult:
        """The loop: step (lr schedule, clip, optimiser, EMA), log, evaluate and checkpoint, stop."""
        r = self.recipe
        stop_at = min(r.train.steps, self.opts.max_steps) if self.opts.max_steps else r.train.steps
        t_start = time.monotonic()  # --max-minutes counts this process's time
        t0 = self._t0 = t_start - self.elapsed0  # the training clock goes on from a resumed checkpoint
        budget = self.opts.max_minutes * 60 if self.opts.max_minutes else None
        # a snapshot time the resumed checkpoint had passed was saved before it (snapshots come first)
        snaps = sorted(m for m in self.opts.snapshot_minutes if m > 0 and m * 60 > self.elapsed0)
        max_pending = 1 if os.environ.get(SYNC_ENV, "0") not in ("", "0") else MAX_PENDING
        window = _Window(time.monotonic())
        reason, loss = "steps", None
        progress = TrainProgress(stop_at, self.step, enabled=self.info.is_main and self.opts.progress)
        batches = self._batches()
        self.ddp.train()
        with progress:
            while self.step < stop_at:
                inputs, targets, skipped = next(batches)
                self._train_step(inputs, targets)
                self.step += 1
                self.pos.index += 1
                self.skipped_items += int(skipped.sum())
                window.count(inputs.shape[0] * self.info.world_size, inputs.shape[1])
                out_of_time = budget is not None and broadcast_flag(time.monotonic() - t_start > budget, self.info)
                last = self.step >= stop_at or out_of_time
                log_now = self.step % r.train.log_every == 0 or self.step == stop_at
                evaluate = self.step % r.train.eval_every == 0 or last
                checkpoint = self.step % r.train.checkpoint_every == 0 or last
                # losses and gradient norms are read back (one host sync) only here and before a snapshot,
                # so always before anything is saved: a non-finite value never reaches a checkpoint
                if log_now or evaluate or checkpoint or len(self._pending) >= max_pending:
                    loss = self._settle(window)
                if log_now:
                    self._log(window, progress, t0)
                else:
                    progress.update(self.step)
                t_pause = time.monotonic()
                if evaluate:
                    self._evaluate(progress)
                if checkpoint:
                    self.save(LAST, loss)
                while snaps and time.monotonic() - t0 >= snaps[0] * 60:  # time-to-quality snapshots
                    loss = self._settle(window)  # (it may have come due during the validation above)
                    self.save(f"snap-{snaps.pop(0):g}min.pt", loss)
                window.start += time.monotonic() - t_pause  # throughput counts training time only
                if out_of_time:
                    reason = "time"
                    break
        batches.close()  # ends the loader's workers now
        if self.step < r.train.steps and reason == "steps" and self.opts.max_steps:
            reason = "max_steps"
        self._finish()
        return TrainResult(
            run_dir=self.run_dir, step=self.step, stop_reason=reason, best_val_bpb=self.best_val,
            last_val_bpb=self.last_val, last_train_bpb=bits_per_sample(loss) if loss is not None else None,
            n_params=self.n_params,
        )

    def _log(self, window: _Window, progress: TrainProgress, t0: float) -> None:
        """One train record (mean loss, lr, throughput) of the steps since the last, then a new window."""
        dt = max(time.monotonic() - window.start, 1e-9)
        mean = window.loss / max(window.n, 1)
        self.log.log(
            self.step, "train", loss=mean, bpb=bits_per_sample(mean), lr=self.sched.get_last_lr()[0],
            sequences_per_s=window.sequences / dt, audio_samples_per_s=window.samples / dt,
            elapsed_s=time.monotonic() - t0, skipped_items=self.skipped_items,
        )
        progress.update(self.step, loss=mean, samples_per_s=window.sequences / dt, audio_rate=window.samples / dt)
        window.reset(time.monotonic())

    def _train_step(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """One optimiser step on this rank's batch, without a host sync: the loss and gradient norm stay
        on the device until :meth:`_settle` reads them back (a sync per step keeps the CPU from queueing
        the next kernels while the GPU works, and the step is launch-bound in parts)."""
        inputs = inputs.to(self.device, non_blocking=True)
        targets = targets.to(self.device, non_blocking=True)
        with nll_mod.autocast_for(self.device, self.recipe.train.bf16):
            loss = nll_mod.sequence_loss(self.ddp, inputs, targets)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = None
        if self.recipe.optim.clip > 0:
            gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.optim.clip)
        self.opt.step()
        self.sched.step()
        if self.ema is not None:
            self._update_ema()
        self._pending.append((self.step + 1, loss.detach().float(), gnorm))

    def _settle(self, window: _Window) -> float | None:
        """Read back the pending steps' losses (averaged over ranks) and gradient norms in one sync, stop
        at the first non-finite one, add the losses to ``window``; returns the last loss (nats)."""
        if not self._pending:
            return self._last_loss
        pending, self._pending = self._pending, []
        with_norms = pending[0][2] is not None
        values = torch.stack([torch.stack([p[1], p[2].float()]) if with_norms else p[1][None] for p in pending])
        values = values.tolist()  # the one device-to-host copy
        norms = [v[1] for v in values] if with_norms else []
        losses = [v / self.info.world_size for v in all_reduce_sum([v[0] for v in values], self.info)]
        for i, (step, _, _) in enumerate(pending):
            if not math.isfinite(losses[i]):
                self._diverged("loss", losses[i], step)
            if norms and not math.isfinite(norms[i]):
                self._diverged("gradient norm", norms[i], step)
            window.add(losses[i])
        self._last_loss = losses[-1]
        return self._last_loss

    @torch.no_grad()
    def _update_ema(self) -> None:
        """ema <- decay * ema + (1 - decay) * weights, with the decay ramped up over the first steps
        (min(decay, (1 + t) / (10 + t))) so that an early EMA is not dominated by the initialisation."""
        decay = min(self.recipe.train.ema, (1 + self.step) / (10 + self.step))
        keys = list(self.ema)
        torch._foreach_lerp_([self.ema[k] for k in keys], [self._ema_src[k].float() for k in keys], 1.0 - decay)

    def _diverged(self, what: str, value: float, step: int) -> None:
        ckpt = self.run_dir / LAST
        kept = (f"the last good checkpoint {ckpt} is kept; continue with --resume" if ckpt.exists()
                else "no checkpoint was written yet; start again with the same command (with --resume it starts fresh)")
        self.log.log(step, "error", message=f"non-finite {what}")
        self.log.close()
        raise TrainingDiverged(
            f"non-finite {what} ({value}) at step {step} of {self.run_dir}: {kept}; "
            "lower optim.lr (--set optim.lr=...) or check the data"
        )

    def _evaluate(self, progress: TrainProgress) -> None:
        val = self.validate()
        self.last_val = val
        self.log.log(self.step, "val", val_bpb=val, val_loss=val * math.log(2))
        progress.update(self.step, val_bpb=val)
        if math.isfinite(val) and (self.best_val is None or not math.isfinite(self.best_val) or val < self.best_val):
            self.best_val = val
            self.save(BEST, None)
        if self.info.is_main:
            plot_curves(self.log.path, self.run_dir / "curves.png")

    def _finish(self) -> None:
        self.log.close()
        if self.info.is_main and self.log.path.exists():
            plot_curves(self.log.path, self.run_dir / "curves.png")


def train_recipe(recipe: Recipe, opts: RunOptions) -> TrainResult:
    """Train ``recipe`` into ``opts.out`` (single process, or one rank of a ``torchrun`` job)."""
    info = init_distributed(opts.device)
    trainer = None
    try:
        trainer = Trainer(recipe, opts, info)
        for note in trainer.notes:
            if info.is_main:
                print(f"note: resumed with a changed setting {note}")
        return trainer.run()
    finally:
        if trainer is not None and trainer.lock is not None:
            trainer.lock.release()
        shutdown(info)
