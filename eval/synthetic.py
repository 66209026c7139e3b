"""A tiny synthetic SC09-layout dataset for tests and demos: each "digit" is a tone.

Digit k is a sine at ``base_hz * ratio**k`` Hz (plus its second harmonic) with a random onset,
duration, amplitude and phase, over faint noise, so a classifier can tell the ten apart but must
cope with the usual variation. Written as 16-bit 16 kHz WAV with ``validation_list.txt`` and
``testing_list.txt`` like Speech Commands.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000


def tone_clip(digit: int, rng: np.random.Generator, base_hz: float = 250.0, ratio: float = 1.3) -> np.ndarray:
    """One clip of ``digit`` (0–9): (n,) float32 with n ≤ 16000 (shorter clips, as in SC09)."""
    n = int(rng.integers(8000, 16001))
    t = np.arange(n) / SAMPLE_RATE
    f = base_hz * ratio**digit
    start = float(rng.uniform(0.0, 0.2))
    dur = float(rng.uniform(0.25, 0.45))
    env = ((t >= start) & (t < start + dur)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi)
    x = np.sin(2 * np.pi * f * t + phase) + 0.3 * np.sin(4 * np.pi * f * t + phase)
    x = float(rng.uniform(0.2, 0.8)) * env * x / 1.3 + 0.002 * rng.standard_normal(n)
    return x.astype(np.float32)


def write_tone_sc09(
    root: str | Path, train: int = 6, validation: int = 2, test: int = 2, seed: int = 0
) -> Path:
    """Write ``train + validation + test`` clips per digit under ``root`` in the SC09 layout → root."""
    from audiomamba.data.sc09 import DIGITS

    root = Path(root)
    rng = np.random.default_rng(seed)
    lists: dict[str, list[str]] = {"validation": [], "test": []}
    for k, word in enumerate(DIGITS):
        (root / word).mkdir(parents=True, exist_ok=True)
        for i in range(train + validation + test):
            rel = f"{word}/tone_nohash_{i}.wav"
            sf.write(str(root / rel), tone_clip(k, rng), SAMPLE_RATE, subtype="PCM_16")
            if i < test:
                lists["test"].append(rel)
            elif i < test + validation:
                lists["validation"].append(rel)
    (root / "validation_list.txt").write_text("\n".join(lists["validation"]) + "\n")
    (root / "testing_list.txt").write_text("\n".join(lists["test"]) + "\n")
    return root
