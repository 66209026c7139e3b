"""Log-mel front end of the SC09 digit classifier.

waveform (B, T) at 16 kHz → power mel spectrogram (B, n_mels, frames) → dB → per-clip
normalisation (loudest bin = 0 dB, floor at ``-top_db``) → scaled to [-1, 0]; or, with ``pcen``,
per-channel energy normalisation in place of dB, also scaled to [-1, 0].

The per-clip normalisation makes the classifier invariant to overall gain, which matters because
generated SC09 samples are min-max normalised to full scale while real recordings are not.
A silent clip maps to an all-zero spectrogram (no NaN). With ``mu_law`` (the default for new
classifiers) the clip is first turned into the models' 8-bit min-max mu-law tokens and back, so
real and generated clips are heard alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torchaudio
from torch import nn

from audiomamba.tokenizer import mu_law_decode, mu_law_encode


@dataclass(frozen=True)
class LogMelConfig:
    """Front-end settings (stored in the classifier checkpoint)."""

    sample_rate: int = 16000
    n_mels: int = 64
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    f_min: float = 20.0
    f_max: float = 8000.0
    top_db: float = 80.0
    # True: hear every clip as the SC09 models do, as its min-max-scaled 8-bit mu-law tokens decoded
    # (audiomamba.tokenizer). Real 16-bit clips and generated samples then share one alphabet; a
    # classifier trained on 16-bit clips only mistakes mu-law quantisation noise (above 4 kHz on
    # sc09-fsdd's band-limited clips) for speech.
    mu_law: bool = True
    # True: remove each clip's mean log-mel spectrum over its speech frames (those within
    # ``band_norm_db`` of the clip's loudest bin), band by band: cepstral mean normalisation. It takes
    # out a fixed colouring of the clip (microphone, room, a speaker's average vocal tract), so a voice
    # or recording setup not seen in training looks more like the ones that were.
    band_norm: bool = False
    band_norm_db: float = 40.0
    # > 0: cepstral smoothing (liftering). Each frame's log-mel is projected onto its first ``lifter``
    # DCT-II components and back, so the spectral envelope (formants: the digit) stays and the fine
    # ripple of the voice's harmonics (its pitch: the speaker) goes, as in MFCC front ends. 0: off.
    lifter: int = 0
    # True: per-channel energy normalisation (PCEN; Wang et al. 2017, the keyword-spotting front end) instead
    # of dB: each mel band's power is divided by its own smoothed recent level (an IIR over ``pcen_time_s``)
    # to the power ``pcen_alpha``, then compressed: (E / (eps + M)^alpha + delta)^r - delta^r. It follows
    # the onsets and formant moves within a band and discounts the band's steady level (the voice's and the
    # channel's colouring), where dB keeps both. Scaled per clip to [-1, 0] like the dB image.
    pcen: bool = False
    pcen_time_s: float = 0.4
    pcen_alpha: float = 0.98
    pcen_delta: float = 2.0
    pcen_r: float = 0.5

    def to_dict(self) -> dict:
        return asdict(self)


class LogMel(nn.Module):
    """(B, T) float waveform → (B, 1, n_mels, frames) normalised log-mel image in [-1, 0]."""

    def __init__(self, config: LogMelConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or LogMelConfig()
        win = round(cfg.sample_rate * cfg.win_ms / 1000)
        hop = round(cfg.sample_rate * cfg.hop_ms / 1000)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate,
            n_fft=max(cfg.n_fft, win),
            win_length=win,
            hop_length=hop,
            f_min=cfg.f_min,
            f_max=cfg.f_max,
            n_mels=cfg.n_mels,
            power=2.0,
        )
        if not 0 <= cfg.lifter <= cfg.n_mels:
            raise ValueError(f"LogMelConfig.lifter={cfg.lifter}: use 0 (off) to n_mels={cfg.n_mels} DCT components")
        # (M, M) projection onto the first `lifter` orthonormal DCT-II components along the mel axis
        self.register_buffer("smooth", lifter_matrix(cfg.n_mels, cfg.lifter) if cfg.lifter else None,
                             persistent=False)

    def frames(self, num_samples: int) -> int:
        """Number of spectrogram frames for a clip of ``num_samples`` samples (centred STFT)."""
        return num_samples // self.mel.hop_length + 1

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """wave: (B, T) → (B, 1, n_mels, T // hop + 1)."""
        if wave.dim() != 2:
            raise ValueError(f"LogMel expects (batch, samples), got shape {tuple(wave.shape)}")
        wave = torch.nan_to_num(wave.float(), nan=0.0, posinf=0.0, neginf=0.0)
        if self.config.mu_law:
            wave = mu_law_decode(mu_law_encode(wave, "minmax")).to(wave.dtype)
        spec = self.mel(wave)  # (B, M, F)
        if self.config.pcen:
            return (self._pcen(spec) - 1.0).unsqueeze(1)
        db = 10.0 * torch.log10(spec.clamp_min(1e-10))
        peak = db.amax(dim=(1, 2), keepdim=True)
        db = (db - peak).clamp_min(-self.config.top_db)
        if self.smooth is not None:
            db = torch.einsum("mn,bnf->bmf", self.smooth, db).clamp(-self.config.top_db, 0.0)
        if self.config.band_norm:
            db = self._band_norm(db)
        return (db / self.config.top_db).unsqueeze(1)

    def _pcen(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, M, F) mel power → PCEN, scaled per clip so its largest bin is 1 (silence: 0)."""
        cfg = self.config
        e = spec / spec.amax(dim=(1, 2), keepdim=True).clamp_min(1e-10)  # gain out first: the clip's peak is 1
        frames = cfg.pcen_time_s * 1000.0 / cfg.hop_ms  # the smoother's time constant in frames (librosa's form)
        s = ((1.0 + 4.0 * frames**2) ** 0.5 - 1.0) / (2.0 * frames**2)
        level = e[..., 0]
        smooth = torch.empty_like(e)
        for t in range(e.shape[-1]):  # M_t = (1 - s) M_(t-1) + s E_t, started at the first frame
            level = (1.0 - s) * level + s * e[..., t]
            smooth[..., t] = level
        out = (e / (1e-6 + smooth) ** cfg.pcen_alpha + cfg.pcen_delta) ** cfg.pcen_r - cfg.pcen_delta**cfg.pcen_r
        return out / out.amax(dim=(1, 2), keepdim=True).clamp_min(1e-6)

    def _band_norm(self, db: torch.Tensor) -> torch.Tensor:
        """(B, M, F) dB re peak → each band's mean over the speech frames subtracted from the speech
        frames, silent frames at the floor; the result stays within [-top_db, 0] after a shift."""
        cfg = self.config
        speech = (db.amax(dim=1, keepdim=True) > -cfg.band_norm_db).to(db.dtype)  # (B, 1, F)
        n = speech.sum(dim=2, keepdim=True).clamp_min(1.0)
        mean = (db * speech).sum(dim=2, keepdim=True) / n  # (B, M, 1)
        # centred speech frames land around -top_db / 2, silence at the floor
        out = (db - mean - cfg.top_db / 2).clamp(-cfg.top_db, 0.0)
        return torch.where(speech.bool(), out, torch.full_like(db, -cfg.top_db))


def lifter_matrix(n: int, keep: int) -> torch.Tensor:
    """(n, n) matrix that keeps the first ``keep`` orthonormal DCT-II components of a length-``n`` vector:
    C_k^T C_k with C[k, m] = s_k cos(pi k (m + 1/2) / n), s_0 = sqrt(1/n), s_k = sqrt(2/n)."""
    m = torch.arange(n, dtype=torch.float64)
    k = torch.arange(keep, dtype=torch.float64)[:, None]
    dct = torch.cos(torch.pi * k * (m + 0.5) / n) * (2.0 / n) ** 0.5
    dct[0] /= 2.0 ** 0.5
    return (dct.T @ dct).float()
