"""The interface every digit classifier offers the sample metrics: features and class
probabilities of waveforms, batched, in eval mode, returned on the CPU."""

from __future__ import annotations

import torch
from torch import nn


class ScoresClips(nn.Module):
    """Mixin for a classifier with ``frontend`` (wave → spectrogram), ``embed_spec`` (spectrogram →
    penultimate features), ``head`` (features → logits), ``feature_dim`` and ``config.num_classes``."""

    @torch.no_grad()
    def features_and_probs(self, wave: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """wave (N, T) on any device → (features (N, feature_dim), probs (N, num_classes)), float32 on CPU.

        Runs in eval mode in batches of ``batch_size`` on the model's device.
        """
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        feats, probs = [], []
        try:
            for start in range(0, wave.shape[0], batch_size):
                f = self.embed_spec(self.frontend(wave[start : start + batch_size].to(device, torch.float32)))
                feats.append(f.float().cpu())
                probs.append(torch.softmax(self.head(f).float(), dim=-1).cpu())
        finally:
            self.train(was_training)
        if not feats:
            return torch.zeros(0, self.feature_dim), torch.zeros(0, self.config.num_classes)
        return torch.cat(feats), torch.cat(probs)

    def features(self, wave: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """wave (B, T) → penultimate-layer features (B, feature_dim), float32 on CPU."""
        return self.features_and_probs(wave, batch_size)[0]

    def probs(self, wave: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """wave (B, T) → class probabilities (B, num_classes), float32 on CPU."""
        return self.features_and_probs(wave, batch_size)[1]
