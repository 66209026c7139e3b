"""Training the SC09 digit classifier (``audiomamba evaluate train-classifier``).

The three splits are loaded once as waveform tensors; each batch is augmented on the fly
(:mod:`eval.augment`: the ``basic`` recipe shifts, gains, adds noise and masks the spectrogram;
``robust`` adds speed, coloured noise, a frequency warp and mixup; ``robust-wide`` widens its ranges), which costs far less than the
CNN. AdamW with a one-cycle schedule and label smoothing. After every epoch the validation
accuracy is measured and the best epoch's weights are kept (ties: lower validation loss).
:func:`fit_classifier` is that loop on tensors, shared with the leave-one-speaker-out
evaluation (:mod:`eval.loso`). Finally the best model is scored on the test split and three files are written:

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
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.nn.functional as F
from audiomamba.eval.augment import AUGMENT_PRESETS, AugmentConfig, augment_spec, augment_wave, mixup
from audiomamba.eval.classifier import MODEL_PRESETS, ClassifierConfig, DigitClassifier, save_classifier
from audiomamba.eval.clips import load_split, speaker_ids, split_speakers
from audiomamba.eval.confusion import confusion_matrix, plot_confusion, plot_history
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
    # weight of a Jensen-Shannon consistency term between the class probabilities of two independent augmentations
    # of each clip (AugMix's, with two views): rate, formant and channel changes should not change the digit; 0 off
    consistency: float = 0.0
    # weight of a speaker-adversarial term (DANN): a speaker head on the penultimate features, trained through a
    # gradient reversal, so that the features learn to say the digit but not who says it; ramped in over training
    # (2 / (1 + exp(-10 p)) - 1 at progress p); 0 off
    speaker_adversarial: float = 0.0
    seed: int = 0
    device: str = "auto"


def js_divergence(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """Mean Jensen-Shannon divergence (nats) between the class distributions of two batches of logits:
    (KL(p || m) + KL(q || m)) / 2 with m = (p + q) / 2; 0 for equal distributions, at most log 2. A training
    loss, so its logs are clamped: the gradient stays finite where a probability underflows to 0 (the scoring
    helper ``metrics._rel_entr`` is exact there, but its gradient is not finite)."""
    p, q = logits_a.float().softmax(-1), logits_b.float().softmax(-1)
    log_m = ((p + q) / 2).clamp_min(1e-7).log()
    kl = lambda r: (r * (r.clamp_min(1e-7).log() - log_m)).sum(-1)  # noqa: E731
    return ((kl(p) + kl(q)) / 2).mean()


class _GradReverse(torch.autograd.Function):
    """Identity forward; the backward multiplies the gradient by ``-scale`` (gradient reversal layer)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def grad_reverse(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` unchanged, with its gradient reversed and scaled by ``scale`` on the way back."""
    return _GradReverse.apply(x, scale)


#: the speaker head's constant learning rate (``--speaker-adversarial``)
ADVERSARY_LR = 1e-3


def adversary_ramp(progress: float) -> float:
    """DANN's schedule for the reversal's weight: 0 at the start, about 1 after half of training."""
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


def recipe_configs(augment: str = "basic", model: str = "small", mu_law: bool = True,
                   band_norm: bool = False, lifter: int = 0, pcen: bool = False) -> tuple[AugmentConfig, ClassifierConfig]:
    """Named presets → (AugmentConfig, ClassifierConfig); a one-line ConfigError for unknown names.

    ``mu_law``: the front end hears clips as the models' 8-bit min-max mu-law tokens (the default:
    generated samples are mu-law audio) rather than as 16-bit PCM. ``band_norm``: per-clip band-mean
    normalisation of the log-mel; ``lifter``: cepstral smoothing to that many DCT components, 0 off;
    ``pcen``: per-channel energy normalisation instead of dB (:class:`eval.features.LogMelConfig`)."""
    if augment not in AUGMENT_PRESETS:
        raise ConfigError(f"unknown --augment {augment!r}: use one of {', '.join(AUGMENT_PRESETS)}")
    if model not in MODEL_PRESETS:
        raise ConfigError(f"unknown --model {model!r}: use one of {', '.join(MODEL_PRESETS)}")
    config = MODEL_PRESETS[model]
    if not 0 <= lifter <= config.logmel.n_mels:
        raise ConfigError(f"--lifter {lifter}: keep 0 (off) to {config.logmel.n_mels} DCT components of each log-mel "
                          "frame, e.g. --lifter 20")
    if pcen and (band_norm or lifter):
        raise ConfigError("--pcen replaces the dB image that --band-norm and --lifter work on: use one of them")
    return AUGMENT_PRESETS[augment], replace(config, logmel=replace(config.logmel, mu_law=mu_law, band_norm=band_norm,
                                                                      lifter=lifter, pcen=pcen))


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


def history_png(ckpt: str | Path) -> Path:
    """The training-history PNG written next to the checkpoint."""
    ckpt = Path(ckpt)
    return ckpt.with_name(ckpt.stem + ".history.png")


def mixed_ce(logits: torch.Tensor, y: torch.Tensor, pairing: tuple[torch.Tensor, torch.Tensor] | None,
             label_smoothing: float) -> torch.Tensor:
    """Cross-entropy of ``logits`` against ``y``, or, for a mixup batch (``pairing`` = (partner, lam)), the
    lam-weighted mean of the losses against each clip's own label and its partner's."""
    if pairing is None:
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    partner, lam = pairing
    lam = lam.to(logits.device)
    own = F.cross_entropy(logits, y, label_smoothing=label_smoothing, reduction="none")
    other = F.cross_entropy(logits, y[partner.to(logits.device)], label_smoothing=label_smoothing, reduction="none")
    return (lam * own + (1 - lam) * other).mean()


@torch.no_grad()
def evaluate(model: DigitClassifier, waves: torch.Tensor,
             labels: torch.Tensor) -> tuple[float, float, torch.Tensor, torch.Tensor]:
    """(accuracy, mean CE loss, predictions (N,), class probabilities (N, classes)) of ``model`` on
    waves (N, T), labels (N,)."""
    _, probs = model.features_and_probs(waves)
    pred = probs.argmax(-1)
    loss = F.nll_loss(probs.clamp_min(1e-12).log(), labels).item()
    return (pred == labels).float().mean().item(), loss, pred, probs


@dataclass
class FitResult:
    """What :func:`fit_classifier` returns: the best-validation model and its history."""

    model: DigitClassifier
    best_epoch: int
    val_accuracy: float
    val_loss: float
    history: list[dict]
    train_seconds: float


def fit_classifier(
    train_w: torch.Tensor,
    train_y: torch.Tensor,
    val_w: torch.Tensor,
    val_y: torch.Tensor,
    cfg: TrainConfig | None = None,
    model_cfg: ClassifierConfig | None = None,
    aug: AugmentConfig | None = None,
    progress: bool = True,
    console: Console | None = None,
    desc: str = "train",
    train_spk: torch.Tensor | None = None,
) -> FitResult:
    """The training loop shared by ``train-classifier`` and the leave-one-speaker-out evaluation.

    train_w (N, T), train_y (N,), val_w (V, T), val_y (V,) on the CPU. Trains a fresh
    :class:`DigitClassifier` (seeded by ``cfg.seed``) with on-the-fly augmentation, keeps the best
    validation epoch (ties: lower validation loss) and returns it loaded into the model.
    ``train_spk`` (N,): the training clips' speaker indices, needed by ``cfg.speaker_adversarial``; the speaker
    head is training-only and is not part of the returned model.
    """
    cfg = cfg or TrainConfig()
    aug = aug or AugmentConfig()
    console = console or Console(stderr=True)
    if cfg.epochs < 1:
        raise ConfigError(f"--epochs {cfg.epochs} is not positive: pass --epochs 1 or more")
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)

    model = DigitClassifier(model_cfg).to(device)
    mel = model.config.logmel
    adversary = None
    if cfg.speaker_adversarial > 0:
        if train_spk is None or len(train_spk) != len(train_y):
            raise ConfigError("--speaker-adversarial needs each training clip's speaker: use it with SC09 file names "
                              "(<digit>/<speaker>_nohash_<n>.wav)")
        n_spk = int(train_spk.max()) + 1
        if n_spk < 2:
            raise ConfigError(f"--speaker-adversarial needs at least 2 training speakers, found {n_spk}: pass 0 (off)")
        # its own optimizer at a constant lr, with normalised inputs: under the classifier's one-cycle schedule
        # (lr/25 at the start) it stayed at chance even unopposed, while a linear probe on the trained features
        # told the 4 training voices apart at 90 % (2026-12-03)
        adversary = torch.nn.Sequential(torch.nn.LayerNorm(model.feature_dim), torch.nn.Linear(model.feature_dim, 128),
                                        torch.nn.ReLU(), torch.nn.Linear(128, n_spk)).to(device)
        adv_opt = torch.optim.Adam(adversary.parameters(), lr=ADVERSARY_LR)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_train = len(train_y)
    steps_per_epoch = n_train // cfg.batch_size + (1 if n_train % cfg.batch_size >= 2 else 0)
    if steps_per_epoch == 0:
        raise ConfigError(f"only {n_train} training clip(s): the classifier needs at least 2")
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )

    def augmented_view(idx: torch.Tensor) -> torch.Tensor:
        """The log-mel of one random augmentation (waveform, then spectrogram) of the clips ``idx``."""
        x = augment_wave(train_w[idx], aug, gen).to(device)
        return augment_spec(model.frontend(x), aug, gen, mel.f_min, mel.f_max)

    best: tuple[float, float] = (-1.0, math.inf)
    best_state: dict = {}
    best_epoch = 0
    history: list[dict] = []
    t0 = time.perf_counter()
    total_steps = cfg.epochs * steps_per_epoch
    step = 0
    with make_progress("batch", disable=not progress, console=console) as bar:
        task = bar.add_task(desc, total=total_steps, info="")
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            perm = torch.randperm(len(train_y), generator=gen)
            loss_sum, correct, seen, spk_correct = 0.0, 0, 0, 0
            for start in range(0, len(perm), cfg.batch_size):
                idx = perm[start : start + cfg.batch_size]
                if len(idx) < 2:  # a last batch of one clip is skipped (BatchNorm needs two)
                    continue
                y = train_y[idx].to(device)
                spec = augmented_view(idx)
                pairing = None
                if aug.mixup_prob > 0:
                    spec, partner, lam = mixup(spec, aug, gen)
                    pairing = (partner, lam)
                feats = model.embed_spec(spec)
                logits = model.head(model.dropout(feats))
                loss = mixed_ce(logits, y, pairing, cfg.label_smoothing)
                if adversary is not None:  # the speaker head learns who speaks; the reversed gradient unlearns it
                    scale = cfg.speaker_adversarial * adversary_ramp(step / total_steps)
                    spk_logits = adversary(grad_reverse(feats, scale))
                    spk = train_spk[idx].to(device)
                    loss = loss + mixed_ce(spk_logits, spk, pairing, 0.0)
                    spk_correct += int((spk_logits.argmax(-1) == spk).sum())
                if cfg.consistency > 0:  # a second, independent augmentation of the same clips (mixed alike)
                    spec2 = augmented_view(idx)
                    if pairing is not None:
                        spec2 = mixup(spec2, aug, gen, pairing)[0]
                    loss = loss + cfg.consistency * js_divergence(logits, model.forward_spec(spec2))
                opt.zero_grad(set_to_none=True)
                if adversary is not None:
                    adv_opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if adversary is not None:  # the head's own step (constant lr, no schedule)
                    adv_opt.step()
                sched.step()
                step += 1
                loss_sum += loss.item() * len(idx)
                correct += int((logits.argmax(-1) == y).sum())
                seen += len(idx)
                bar.update(task, advance=1, info=f"ep {epoch}/{cfg.epochs} loss {loss.item():.3f}")
            val_acc, val_loss, _, _ = evaluate(model, val_w, val_y)
            history.append(
                {"epoch": epoch, "train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1),
                 "val_acc": val_acc, "val_loss": val_loss}
                | ({"speaker_acc": spk_correct / max(seen, 1)} if adversary is not None else {})
            )
            if (val_acc, -val_loss) > (best[0], -best[1]):
                best, best_epoch = (val_acc, val_loss), epoch
                best_state = copy.deepcopy(model.state_dict())
            bar.update(task, info=f"ep {epoch}/{cfg.epochs} val {val_acc:.3f} best {best[0]:.3f}@{best_epoch}")
    train_seconds = time.perf_counter() - t0
    model.load_state_dict(best_state)
    return FitResult(model, best_epoch, best[0], best[1], history, train_seconds)


def device_name(device: torch.device) -> str:
    """GPU name, or 'cpu (processor, N threads)'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


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
    if cfg.epochs < 1:
        raise ConfigError(f"--epochs {cfg.epochs} is not positive: pass --epochs 1 or more")
    device = resolve_device(cfg.device)
    out = Path(out)

    train_w, train_y = load_split(root, "train", progress)
    val_w, val_y = load_split(root, "validation", progress)
    test_w, test_y = load_split(root, "test", progress)
    if len(train_y) < 2:
        raise ConfigError(f"only {len(train_y)} training clip(s) in {root}: the classifier needs at least 2")

    train_spk = speaker_ids(split_speakers(root, "train")) if cfg.speaker_adversarial > 0 else None
    fit = fit_classifier(train_w, train_y, val_w, val_y, cfg, model_cfg, aug, progress, console, train_spk=train_spk)
    model = fit.model
    test_acc, test_loss, test_pred, _ = evaluate(model, test_w, test_y)
    cm = confusion_matrix(test_pred, test_y, len(DIGITS))
    json_path, png_path = sidecar_paths(out)
    report = {
        "data": str(Path(root).resolve()),
        "checkpoint": str(out),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device_name(device),
        "train_seconds": round(fit.train_seconds, 1),
        "epochs": cfg.epochs,
        "best_epoch": fit.best_epoch,
        "val_accuracy": fit.val_accuracy,
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "clips": {"train": len(train_y), "validation": len(val_y), "test": len(test_y)},
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_config": asdict(cfg),
        "model_config": model.config.to_dict(),
        "augment_config": aug.to_dict(),
        "classes": list(DIGITS),
        "test_confusion": cm.tolist(),
        "history": fit.history,
    }
    # the checkpoint carries its own training config and per-epoch history too (the JSON beside it did not come back
    # from a GPU machine on 2026-12-04, and the shipped members lost theirs)
    meta = {k: report[k] for k in ("data", "date", "device", "train_seconds", "best_epoch", "val_accuracy", "test_accuracy",
                                   "train_config", "augment_config", "history")}
    save_classifier(model, out, meta)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    plot_confusion(cm, DIGITS, png_path, f"SC09 classifier, test accuracy {100 * test_acc:.2f}%")
    plot_history(fit.history, history_png(out), f"SC09 classifier training ({len(fit.history)} epochs)", fit.best_epoch)
    return report
