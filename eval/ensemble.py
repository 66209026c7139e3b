"""Several digit classifiers heard as one (``audiomamba evaluate ensemble-classifier``).

Leave-one-speaker-out runs (RESULTS.md, issue 17) showed that classifiers with different front ends
(plain μ-law log-mel, band-normalised, cepstrally smoothed) err on different voices, and that the mean
of their probabilities, also over a few playback rates, generalises best to voices no member heard.
A generated sample is such a voice. This module makes that ensemble a classifier like any other:

- ``probs``: the members' class probabilities, each averaged over the test-time playback ``speeds``
  (:func:`eval.augment.speed_perturb`), then averaged over members, then sharpened by one
  ``temperature`` (p ∝ p̄ ** (1 / T)). Mixup-trained members, averaged, are under-confident. The
  temperature is fitted on the members' recipes' leave-one-speaker-out probabilities (voices they did
  not hear, like generated samples), so that "p ≥ 0.9" means what it says again.
- ``features``: the members' penultimate features of the plain clip, concatenated (FID, NDB).

The checkpoint is a plain dict ``{"format", "members": [{"config", "state_dict"}], "speeds",
"temperature", "meta"}``, read with ``torch.load(weights_only=True)`` by
:func:`eval.classifier.load_classifier`, so ``--classifier ENSEMBLE.pt`` works wherever a single
classifier does.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import torch
from audiomamba.eval.classifier import (
    ENSEMBLE_FORMAT,
    DigitClassifier,
    classifier_from_state,
    cpu_state,
    save_payload,
)
from torch import nn

from audiomamba.errors import CheckpointError, ConfigError

TEMPERATURES = tuple(round(0.1 * 1.05 ** k, 4) for k in range(0, 70))  # 0.1 … 2.8, 5 % apart


def sharpen(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """(N, C) probabilities → p ** (1 / T), renormalised (T < 1 sharpens, T = 1 is the identity)."""
    if temperature == 1.0:
        return probs
    return torch.softmax(probs.clamp_min(1e-12).log() / temperature, dim=-1)


class ClassifierEnsemble(nn.Module):
    """Mean probabilities of several :class:`DigitClassifier`, with the same scoring interface."""

    def __init__(self, members: list[DigitClassifier], speeds: tuple[float, ...] = (),
                 temperature: float = 1.0) -> None:
        super().__init__()
        if not members:
            raise ConfigError("an ensemble needs at least one classifier: pass one or more CKPT files")
        classes = {m.config.num_classes for m in members}
        if len(classes) != 1:
            raise ConfigError(f"the classifiers have different class counts {sorted(classes)}: ensemble classifiers of one task")
        if temperature <= 0:
            raise ConfigError(f"temperature {temperature:g} is not positive: use e.g. 0.5 (sharper) or 1 (as is)")
        self.members = nn.ModuleList(members)
        self.speeds = tuple(float(s) for s in speeds)
        self.temperature = float(temperature)
        self.num_classes = classes.pop()
        self.meta: dict = {}

    @property
    def feature_dim(self) -> int:
        return sum(m.feature_dim for m in self.members)

    @torch.no_grad()
    def member_outputs(self, wave: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """wave (N, T) → (concatenated features (N, feature_dim), [each member's probs (N, C), averaged
        over the test-time speeds]), on the CPU, before the temperature."""
        from audiomamba.eval.augment import speed_perturb

        played = {s: speed_perturb(wave, torch.full((wave.shape[0],), s, device=wave.device)) for s in self.speeds if s != 1.0}
        feats, probs = [], []
        for m in self.members:
            f, p = m.features_and_probs(wave, batch_size)
            feats.append(f)
            if self.speeds:
                p = torch.stack([p if s == 1.0 else m.probs(played[s], batch_size) for s in self.speeds]).mean(0)
            probs.append(p)
        return torch.cat(feats, dim=-1), probs

    def features_and_probs(self, wave: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """wave (N, T) → (features (N, feature_dim), probs (N, C)), float32 on the CPU."""
        feats, probs = self.member_outputs(wave, batch_size)
        return feats, sharpen(torch.stack(probs).mean(0), self.temperature)

    def features(self, wave: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        return self.features_and_probs(wave, batch_size)[0]

    def probs(self, wave: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        return self.features_and_probs(wave, batch_size)[1]


def fit_temperature(probs: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """The temperature of :data:`TEMPERATURES` (or 1) with the lowest mean NLL of ``sharpen(probs, T)``
    on ``labels``: (temperature, nll)."""
    best = (1.0, math.inf)
    for t in (1.0, *TEMPERATURES):
        nll = nn.functional.nll_loss(sharpen(probs, t).clamp_min(1e-12).log(), labels).item()
        if nll < best[1] - 1e-9:
            best = (t, nll)
    return best


def confident(probs: torch.Tensor, p: float = 0.9) -> float:
    """Fraction of rows whose top probability is at least ``p``."""
    return (probs.max(-1).values >= p).float().mean().item()


def right_when_confident(probs: torch.Tensor, labels: torch.Tensor, p: float = 0.9) -> float:
    """Accuracy over the rows whose top probability is at least ``p`` (NaN when there are none)."""
    sure = probs.max(-1).values >= p
    return (probs.argmax(-1) == labels)[sure].float().mean().item() if sure.any() else float("nan")


def save_ensemble(model: ClassifierEnsemble, path: str | Path, meta: dict | None = None) -> Path:
    """Write the ensemble checkpoint atomically (temp file, then rename)."""
    return save_payload({
        "format": ENSEMBLE_FORMAT,
        "members": [{"config": m.config.to_dict(), "state_dict": cpu_state(m)} for m in model.members],
        "speeds": list(model.speeds),
        "temperature": model.temperature,
        "meta": dict(meta or {}),
    }, path)


def ensemble_from_payload(payload: dict, path: Path, hint: str) -> ClassifierEnsemble:
    """The :class:`ClassifierEnsemble` of a loaded checkpoint dict; a one-line CheckpointError if it does not fit."""
    try:
        members = []
        for i, part in enumerate(payload["members"]):
            try:
                members.append(classifier_from_state(part["config"], part["state_dict"]))
            except RuntimeError as err:
                raise ValueError(f"member {i}: {(str(err).splitlines() or [''])[0]}") from None
        model = ClassifierEnsemble(members, tuple(payload.get("speeds", ())), float(payload.get("temperature", 1.0)))
    except (KeyError, TypeError, ValueError, ConfigError) as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise CheckpointError(f"classifier ensemble {path} does not match the model ({reason}): {hint}") from None
    model.meta = dict(payload.get("meta", {}))
    return model


def loso_probs(runs: list[str | Path], speeds: tuple[float, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """The ensemble's mean probabilities (before any temperature) and labels over every held-out clip of
    ``classifier-loso`` runs, one run per member in order: (probs (N, C), labels (N,)). Each run gives
    its mean over the test-time ``speeds`` (stored with ``--tta-speeds``), or its plain pass without them."""
    from audiomamba.eval.loso import ensemble_speakers, member_probs, tta_keys

    runs = [Path(r) for r in runs]
    keys = tta_keys(speeds, ()) or None
    probs, labels = [], []
    for name in ensemble_speakers(runs):
        parts = [torch.load(r / f"probs-{name}.pt", weights_only=True) for r in runs]
        probs.append(torch.stack([member_probs(q, r / f"probs-{name}.pt", keys is not None, keys)
                                  for q, r in zip(parts, runs, strict=True)]).mean(0))
        labels.append(parts[0]["labels"])
    return torch.cat(probs), torch.cat(labels)


def build_ensemble(checkpoints: list[str | Path], sc09_dir: str | Path, out: str | Path,
                   speeds: tuple[float, ...] = (), device: str = "auto", progress: bool = True,
                   calibrate_on: list[str | Path] | None = None) -> dict:
    """Load trained classifiers, fit the temperature, score ``sc09_dir``'s test split, and write ``out``
    (the ensemble), ``out``-stem ``.json`` and ``.confusion.png``. Returns the report.

    The temperature is fitted on ``calibrate_on`` when given: ``classifier-loso`` runs of the members'
    recipes, one per member in order, whose held-out-speaker probabilities show how confident the
    ensemble should be on voices it has not heard (generated samples are such voices). Without them it
    is fitted on the validation split, whose voices the members trained on: that makes it over-confident
    on new voices."""
    if calibrate_on is not None and len(calibrate_on) != len(checkpoints):
        raise ConfigError(f"--calibrate-on got {len(calibrate_on)} leave-one-speaker-out run(s) for {len(checkpoints)} "
                          "classifier(s): pass one classifier-loso folder per classifier, in the same order")
    from audiomamba.eval.classifier import load_classifier
    from audiomamba.eval.confusion import confusion_matrix, plot_confusion
    from audiomamba.eval.train_classifier import device_name, load_split, resolve_device, sidecar_paths

    from audiomamba.data.sc09 import DIGITS

    dev = resolve_device(device)
    members = []
    for ckpt in checkpoints:
        m = load_classifier(ckpt, dev)
        if not isinstance(m, DigitClassifier):
            raise ConfigError(f"{ckpt} is not one of our digit classifiers (an ensemble or an imported one): "
                              "pass checkpoints written by `audiomamba evaluate train-classifier`")
        members.append(m)
    model = ClassifierEnsemble(members, speeds)
    val_w, val_y = load_split(sc09_dir, "validation", progress)
    test_w, test_y = load_split(sc09_dir, "test", progress)
    _, val_members = model.member_outputs(val_w)
    val_mean = torch.stack(val_members).mean(0)
    if calibrate_on:
        cal_p, cal_y = loso_probs(calibrate_on, model.speeds)
        fitted_on = f"leave-one-speaker-out probabilities of {len(cal_y)} clips ({', '.join(map(str, calibrate_on))})"
    else:
        cal_p, cal_y, fitted_on = val_mean, val_y, "validation split"
    temperature, cal_nll = fit_temperature(cal_p, cal_y)
    model.temperature = temperature
    _, test_members = model.member_outputs(test_w)
    test_mean = torch.stack(test_members).mean(0)
    test_p = sharpen(test_mean, temperature)
    pred = test_p.argmax(-1)
    cm = confusion_matrix(pred, test_y, len(DIGITS))
    report = {
        "data": str(Path(sc09_dir).resolve()),
        "checkpoint": str(out),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device_name(dev),
        "members": [str(c) for c in checkpoints],
        "member_test_accuracy": [(p.argmax(-1) == test_y).float().mean().item() for p in test_members],
        "speeds": list(model.speeds),
        "temperature": temperature,
        "temperature_fitted_on": fitted_on,
        "calibration_nll": cal_nll,
        "calibration_accuracy": (cal_p.argmax(-1) == cal_y).float().mean().item(),
        "calibration_confident": confident(sharpen(cal_p, temperature)),
        "calibration_right_when_confident": right_when_confident(sharpen(cal_p, temperature), cal_y),
        "val_accuracy": (val_mean.argmax(-1) == val_y).float().mean().item(),
        "test_accuracy": (pred == test_y).float().mean().item(),
        "test_confident_before_temperature": confident(test_mean),
        "test_confident": confident(test_p),
        "classes": list(DIGITS),
        "test_confusion": cm.tolist(),
    }
    meta = {k: report[k] for k in ("data", "date", "device", "members", "temperature", "temperature_fitted_on",
                                   "val_accuracy", "test_accuracy")}
    save_ensemble(model, out, meta)
    json_path, png_path = sidecar_paths(Path(out))
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    plot_confusion(cm, DIGITS, png_path, f"SC09 classifier ensemble ({len(members)}), test accuracy "
                                         f"{100 * report['test_accuracy']:.2f}%")
    return report
