"""LOSO trial (RESULTS.md, leave-one-speaker-out): per-utterance mean normalisation of each mel
band over the frames that carry speech (within 48 dB of the clip's peak), on top of the `robust`
recipe, 16-bit front end, fold nicolas, 20 epochs. Gave 70.4 % (69.4 % without).

    python results/classifier-loso-cmn-trial.py SC09_DIR OUT
"""

from __future__ import annotations

import sys

import torch
from audiomamba.eval import features
from audiomamba.eval.loso import run_loso
from audiomamba.eval.train_classifier import TrainConfig, recipe_configs

_plain_forward = features.LogMel.forward


def mean_normalised(self: features.LogMel, wave: torch.Tensor) -> torch.Tensor:
    """The log-mel image (B, 1, M, F) minus each band's mean over the speech frames; 0 elsewhere."""
    x = _plain_forward(self, wave)
    active = (x.amax(dim=2, keepdim=True) > -0.6).float()
    mean = (x * active).sum(dim=3, keepdim=True) / active.sum(dim=3, keepdim=True).clamp_min(1)
    return (x - mean) * active


if __name__ == "__main__":
    torch.set_num_threads(1)
    features.LogMel.forward = mean_normalised
    aug, model_cfg = recipe_configs("robust", "small", mu_law=False)
    report = run_loso(sys.argv[1], sys.argv[2], TrainConfig(epochs=20, device="cpu"), model_cfg, aug, ["nicolas"],
                      progress=False, label="robust + per-band mean normalisation")
    print(report["mean_accuracy"])
