"""Procedural piano-like music (for the demo and tests): deterministic by seed, 16 kHz mono.

Each note is a sum of partials ``f_k = k f0 sqrt(1 + B k^2)`` (string inharmonicity ``B``) with
amplitudes falling with ``k``, a few-millisecond hammer attack with a short noise burst, an
exponential decay that is faster for higher partials and higher notes, and a damper release at
the note's end. The music is a I–V–vi–IV-style chord progression in a random major key: the left
hand plays broken chords, the right hand a melody that walks the scale and lands on chord tones
on strong beats. :func:`write_dataset` writes ``piece_NNN.wav`` files in the YouTubeMix layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audiomamba.audio import SAMPLE_RATE, save_wav

MAJOR = (0, 2, 4, 5, 7, 9, 11)
PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 0), (5, 3, 0, 4))  # scale degrees of chord roots


def midi_to_hz(m: float) -> float:
    """MIDI note number -> frequency in Hz (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((m - 69) / 12)


def render_note(
    midi: int, duration: float, velocity: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """One piano-like note: (n,) float64, ``duration`` seconds of key-down plus a 0.12 s release."""
    f0 = midi_to_hz(midi)
    n = int((duration + 0.12) * sample_rate)
    t = np.arange(n) / sample_rate
    inharm = 1e-4 * 2.0 ** ((midi - 60) / 24)
    n_partials = max(1, min(12, int(0.45 * sample_rate / f0)))
    k = np.arange(1, n_partials + 1)[:, None]
    fk = k * f0 * np.sqrt(1 + inharm * k**2)
    keep = fk[:, 0] < 0.45 * sample_rate
    k, fk = k[keep], fk[keep]
    brightness = 0.8 + 0.8 * velocity
    amp = (1.0 / k**brightness) * (1 + 0.15 * rng.standard_normal(k.shape))
    tau = 1.6 * 2.0 ** (-(midi - 48) / 18) / (1 + 0.35 * (k - 1))
    phase = rng.uniform(0, 2 * np.pi, size=k.shape)
    wave = (amp * np.exp(-t / tau) * np.sin(2 * np.pi * fk * t + phase)).sum(axis=0)
    attack = np.minimum(1.0, t / 0.004)
    release = np.where(t < duration, 1.0, np.exp(-(t - duration) / 0.03))
    hammer = rng.standard_normal(n) * np.exp(-t / 0.003) * 0.05
    return velocity * (wave * attack * release + hammer)


def synthesize_piece(seconds: float, seed: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A piece of ``seconds`` seconds: (n,) float32 in [-1, 1], peak 0.9; identical for equal seeds."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    out = np.zeros(n + 4 * sample_rate)
    key = 48 + int(rng.integers(0, 12))
    beat = 60.0 / float(rng.uniform(80, 126))
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    scale = np.array([key + 12 * o + d for o in range(0, 3) for d in MAJOR])
    melody_pos = int(rng.integers(9, 14))
    t, bar = 0.0, 0
    while t < seconds:
        root_deg = progression[bar % len(progression)]
        chord = [int(scale[root_deg + i]) for i in (0, 2, 4)]
        # left hand: broken chord, one note per beat, an octave down
        for b in range(4):
            pitch = chord[(0, 2, 1, 2)[b]] - 12
            _add(out, render_note(pitch, beat * 1.6, float(rng.uniform(0.35, 0.5)), rng, sample_rate), t + b * beat, sample_rate)
        # right hand: eighth and quarter notes walking the scale, chord tones on strong beats
        pos = 0.0
        while pos < 4 * beat - 1e-9:
            length = beat * float(rng.choice([0.5, 0.5, 1.0, 1.0, 1.5]))
            length = min(length, 4 * beat - pos)
            if abs(pos % beat) < 1e-9 and rng.random() < 0.7:
                targets = [i for i, p in enumerate(scale) if p % 12 in {c % 12 for c in chord} and i >= 7]
                melody_pos = min(targets, key=lambda i: abs(i - melody_pos))
            else:
                melody_pos = int(np.clip(melody_pos + rng.choice([-2, -1, -1, 1, 1, 2]), 7, len(scale) - 1))
            if rng.random() > 0.08:  # occasional rest
                vel = float(rng.uniform(0.5, 0.9))
                _add(out, render_note(int(scale[melody_pos]), length * 0.95, vel, rng, sample_rate), t + pos, sample_rate)
            pos += length
        t += 4 * beat
        bar += 1
    out = out[:n]
    out += 2e-4 * rng.standard_normal(n)
    peak = np.abs(out).max()
    return (0.9 * out / peak if peak > 0 else out).astype(np.float32)


def _add(buffer: np.ndarray, note: np.ndarray, start: float, sample_rate: int) -> None:
    i = int(start * sample_rate)
    if i >= buffer.shape[0]:
        return
    j = min(buffer.shape[0], i + note.shape[0])
    buffer[i:j] += note[: j - i]


def write_dataset(out_dir: str | Path, n_files: int = 20, seconds: float = 10.0, seed: int = 0) -> list[Path]:
    """Write ``n_files`` pieces as ``piece_NNN.wav`` (16 kHz, 16-bit) into ``out_dir`` (YouTubeMix layout)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_files):
        wave = synthesize_piece(seconds, seed=seed * 100_000 + i)
        paths.append(save_wav(out_dir / f"piece_{i:03d}.wav", wave, SAMPLE_RATE))
    return paths
