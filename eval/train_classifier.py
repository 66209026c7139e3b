"""Training the SC09 digit classifier (``audiomamba evaluate train-classifier``).

The three splits are loaded once as waveform tensors; each batch is augmented on the fly
(:mod:`eval.augment`: shift, gain, noise, then spectrogram masks), which costs far less than the
CNN. AdamW with a one-cycle schedule and label smoothing. After every epoch the validation
accuracy is measured and the best epoch's weights are kept (ties: lower validation loss).
Finally the best model is scored on the test split and three files are written:

- ``CKPT``                  the checkpoint (atomic; ``torch.load(weights_only=True)``);
- ``CKPT`` stem + ``.json``  accuracies, confusion matrix, training time, device, command facts;
- ``CKPT`` stem + ``.confusion.png``  the test confusion matrix.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.nn.functional as F
from audiomamba.eval.augment import AugmentConfig, augment_wave, mask_spec
from audiomamba.eval.classifier import ClassifierConfig, DigitClassifier, save_classifier
from audiomamba.eval.clips import load_split
from audiomamba.eval.confusion import confusion_matrix, plot_confusion
from audiomamba.eval.progress import make_progress
from rich.console import Console

from audiomamba.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-3
    label_smoothing: float = 0.05
    seed: int = 0
    device: str = "auto"


def resolve_device(name: str) -> torch.device:
    """'auto' → cuda if available else cpu; validates explicit names with a one-line ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {name!r} in --device: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} asked for CUDA but no GPU is visible: use --device cpu")
    return dev


def sidecar_paths(ckpt: str | Path) -> tuple[Path, Path]:
    """(json report, confusion PNG) written next to the checkpoint."""
    ckpt = Path(ckpt)
    return ckpt.with_suffix(".json"), ckpt.with_name(ckpt.stem + ".confusion.png")


@torch.no_grad()
def evaluate(model: DigitClassifier, waves: torch.Tensor, labels: torch.Tensor) -> tuple[float, float, torch.Tensor]:
    """(accuracy, mean CE loss, predictions (N,)) of ``model`` on waves (N, T), labels (N,)."""
    _, probs = model.features_and_probs(waves)
    pred = probs.argmax(-1)
    loss = F.nll_loss(probs.clamp_min(1e-12).log(), labels).item()
    return (pred == labels).float().mean().item(), loss, pred


def train_classifier(
    root: str | Path,
    out: str | Path,
    cfg: TrainConfig | None = None,
    model_cfg: ClassifierConfig | None = None,
    aug: AugmentConfig | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> dict:
    """Train on ``root``'s train split, select on validation, score on test, write checkpoint + report.

    Returns the report dict (also saved as JSON next to the checkpoint).
    """
    from audiomamba.data.sc09 import DIGITS

    cfg = cfg or TrainConfig()
    aug = aug or AugmentConfig()
    console = console or Console(stderr=True)
    if cfg.epochs < 1:
        raise ConfigError(f"--epochs {cfg.epochs} is not positive: pass --epochs 1 or more")
    device = resolve_device(cfg.device)
    out = Path(out)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)

    train_w, train_y = load_split(root, "train", progress)
    val_w, val_y = load_split(root, "validation", progress)
    test_w, test_y = load_split(root, "test", progress)

    model = DigitClassifier(model_cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_train = len(train_y)
    steps_per_epoch = n_train // cfg.batch_size + (1 if n_train % cfg.batch_size >= 2 else 0)
    if steps_per_epoch == 0:
        raise ConfigError(f"only {n_train} training clip(s) in {root}: the classifier needs at least 2")
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )

    best: tuple[float, float] = (-1.0, math.inf)
    best_state: dict = {}
    best_epoch = 0
    history: list[dict] = []
    t0 = time.perf_counter()
    with make_progress("batch", disable=not progress, console=console) as bar:
        task = bar.add_task("train", total=cfg.epochs * steps_per_epoch, info="")
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            perm = torch.randperm(len(train_y), generator=gen)
            loss_sum, correct, seen = 0.0, 0, 0
            for start in range(0, len(perm), cfg.batch_size):
                idx = perm[start : start + cfg.batch_size]
                if len(idx) < 2:  # a last batch of one clip is skipped (BatchNorm needs two)
                    continue
                x = augment_wave(train_w[idx], aug, gen).to(device)
                y = train_y[idx].to(device)
                spec = mask_spec(model.frontend(x), aug, gen)
                logits = model.forward_spec(spec)
                loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.item() * len(idx)
                correct += int((logits.argmax(-1) == y).sum())
                seen += len(idx)
                bar.update(task, advance=1, info=f"ep {epoch}/{cfg.epochs} loss {loss.item():.3f}")
            val_acc, val_loss, _ = evaluate(model, val_w, val_y)
            history.append(
                {"epoch": epoch, "train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1),
                 "val_acc": val_acc, "val_loss": val_loss}
            )
            if (val_acc, -val_loss) > (best[0], -best[1]):
                best, best_epoch = (val_acc, val_loss), epoch
                best_state = copy.deepcopy(model.state_dict())
            bar.update(task, info=f"ep {epoch}/{cfg.epochs} val {val_acc:.3f} best {best[0]:.3f}@{best_epoch}")
    train_seconds = time.perf_counter() - t0

    model.load_state_dict(best_state)
    test_acc, test_loss, test_pred = evaluate(model, test_w, test_y)
    cm = confusion_matrix(test_pred, test_y, len(DIGITS))
    json_path, png_path = sidecar_paths(out)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    report = {
        "data": str(Path(root).resolve()),
        "checkpoint": str(out),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device_name,
        "train_seconds": round(train_seconds, 1),
        "epochs": cfg.epochs,
        "best_epoch": best_epoch,
        "val_accuracy": best[0],
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "clips": {"train": len(train_y), "validation": len(val_y), "test": len(test_y)},
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_config": asdict(cfg),
        "model_config": model.config.to_dict(),
        "classes": list(DIGITS),
        "test_confusion": cm.tolist(),
        "history": history,
    }
    meta = {k: report[k] for k in ("data", "date", "device", "train_seconds", "best_epoch", "val_accuracy", "test_accuracy")}
    save_classifier(model, out, meta)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    plot_confusion(cm, DIGITS, png_path, f"SC09 classifier, test accuracy {100 * test_acc:.2f}%")
    return report
