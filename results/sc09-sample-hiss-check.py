"""How much IS does the samples' hiss cost? Real test clips + noise at the samples' level (RESULTS.md, run 10).

Usage: python results/sc09-sample-hiss-check.py SAMPLES_DIR SC09_ROOT CLASSIFIER.pt

The 8 kHz FSDD sources have nothing above 4 kHz, so a sample's power above 4 kHz is sampling noise.
Assume it is white: per speech frame, the in-band (0-4 kHz) noise power equals the 4-8 kHz power.
Measure, per sample, the ratio of 4-8 kHz to 0-4 kHz power over its speech frames (a segmental
noise-to-signal ratio), then add to each real test clip band-limited (0-4 kHz) white noise at the
same per-frame ratio (drawn from the samples' distribution of ratios), and score IS with the small
classifier, with and without also adding the 4-8 kHz half.
"""
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from audiomamba.eval.classifier import load_classifier
from audiomamba.eval.clips import load_split
from audiomamba.eval.metrics import am_score, inception_score

from audiomamba.tokenizer import mu_law_decode, mu_law_encode

SR, NFFT, HOP = 16000, 512, 128
samples_dir, data, clf_path = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
win = torch.hann_window(NFFT)


def spec(w):  # (N, L) -> power (N, F, T)
    return torch.stft(w, NFFT, HOP, window=win, return_complex=True).abs() ** 2


f = torch.fft.rfftfreq(NFFT, 1 / SR)
lo, hi = f < 3800, f > 4200
wavs = sorted(p for p in samples_dir.rglob("*.wav"))
S = torch.stack([torch.from_numpy(sf.read(p, dtype="float32")[0][:SR]) for p in wavs])
P = spec(S)
plo, phi = P[:, lo].sum(1), P[:, hi].sum(1)  # (N, T)
ratios = []
for i in range(len(S)):
    speech = plo[i] > plo[i].max() * 10 ** (-4)  # frames within 40 dB of the loudest
    ratios.append(float(phi[i][speech].sum() / plo[i][speech].sum()))
ratios = np.array(ratios)
print(f"{len(S)} samples: 4-8 kHz / 0-4 kHz power over speech frames: median {np.median(ratios):.4f} "
      f"({10 * np.log10(np.median(ratios)):.1f} dB), quartiles {np.percentile(ratios, 25):.4f} {np.percentile(ratios, 75):.4f}")

real, _ = load_split(data, "test", False)
Pr = spec(real)
rr = (Pr[:, hi].sum(1).sum(1) / Pr[:, lo].sum(1).sum(1)).numpy()
print(f"real test clips: same ratio median {np.median(rr):.6f} ({10 * np.log10(np.median(rr)):.1f} dB)")
clf = load_classifier(clf_path, torch.device("cpu"))
_, ref_p = clf.features_and_probs(load_split(data, "train", False)[0])
gen = torch.Generator().manual_seed(0)
rng = np.random.default_rng(0)


def score(name, w):
    w = mu_law_decode(mu_law_encode(w.clamp(-1, 1)))  # the model's 8-bit μ-law
    _, p = clf.features_and_probs(w)
    print(f"{name:55s} IS {inception_score(p):.2f}  AM {am_score(ref_p, p):.2f}  recognised {(p.max(-1).values >= 0.9).float().mean() * 100:.1f} %")


score("real test clips", real)
score("samples", S)
for scale in (1.0, 0.5, 0.25):
    for band in ("in-band", "full-band"):
        noisy = []
        for i in range(len(real)):
            x = real[i]
            X = torch.stft(x, NFFT, HOP, window=win, return_complex=True)
            pw = (X.abs() ** 2)[lo].sum(0)  # per-frame in-band power
            r = scale * ratios[rng.integers(len(ratios))]
            n = torch.randn(X.shape, generator=gen, dtype=torch.complex64)
            # white noise whose per-frame power over 0-4 kHz is r times the clip's (only in speech frames)
            speech = (pw > pw.max() * 1e-4).float()
            keep = lo if band == "in-band" else torch.ones_like(lo)
            npw = (n.abs() ** 2)[lo].sum(0)
            n = n * keep[:, None] * torch.sqrt(r * pw * speech / npw.clamp_min(1e-12))[None, :]
            noisy.append(torch.istft(X + n, NFFT, HOP, window=win, length=len(x)))
        score(f"real + {band} noise at {scale:g}x the samples' ratio", torch.stack(noisy))
