"""Loading prompt audio for music continuation."""

from __future__ import annotations

from pathlib import Path

import torch

from audiomamba.audio import SAMPLE_RATE, list_audio_files, load_audio
from audiomamba.errors import DataError
from audiomamba.tokenizer import mu_law_encode


def load_prompts(source: Path, seconds: float, n: int, normalization: str) -> tuple[torch.Tensor, list[str]]:
    """Tokens of the first ``seconds`` of each prompt file, cycled to ``n`` rows.

    source: a WAV file or a folder of audio files. Returns ((n, P) int64, names (n,)).
    """
    files = [source] if source.is_file() else list_audio_files(source) if source.is_dir() else []
    if not files:
        raise DataError(f"no prompt audio at {source}: pass a WAV file or a folder of WAV files")
    frames = int(round(seconds * SAMPLE_RATE))
    if frames <= 0:
        raise DataError(f"--prompt-seconds must be positive, got {seconds}")
    rows = []
    for path in files:
        wave = load_audio(path, SAMPLE_RATE, frames=frames)
        if wave.shape[0] < frames:
            raise DataError(
                f"prompt {path} is {wave.shape[0] / SAMPLE_RATE:.2f} s long, shorter than --prompt-seconds {seconds}: "
                "use a shorter prompt length"
            )
        rows.append(mu_law_encode(torch.from_numpy(wave), normalization))  # type: ignore[arg-type]
    idx = [i % len(files) for i in range(n)]
    return torch.stack([rows[i] for i in idx]), [files[i].name for i in idx]
