"""The streaming API (issue 18): chunks, joined, are exactly what `generate` draws with the same seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiomamba.generate import SamplingConfig, generate_tokens, stream_model
from audiomamba.model import build_model
from audiomamba.recipe import load_recipe
from audiomamba.tokenizer import mu_law_decode


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(load_recipe("sc09-mamba-tiny").model_config()).eval()


@pytest.mark.parametrize("temperature,states", [(1.0, None), (0.0, None), (1.0, torch.bfloat16)])
def test_stream_chunks_join_to_the_generated_sample(model: torch.nn.Module, temperature: float, states) -> None:
    """The chunks, joined, are the sample `generate` draws with the same seed; also with bf16 states (``generate
    --stream --states bf16``: the stream steps the same states)."""
    seconds, sampling = 0.02, SamplingConfig(temperature)
    gen = generate_tokens(model, 1, 320, 1, sampling, seed=5, device="cpu", use_graph=False, progress=False,
                          state_dtype=states)
    chunks = list(stream_model(model, seconds, chunk_seconds=0.004, sampling=sampling, seed=5, device="cpu",
                               state_dtype=states))
    assert len(chunks) >= 4 and all(c.dtype == np.float32 for c in chunks)  # several chunks, as they come
    np.testing.assert_array_equal(np.concatenate(chunks), mu_law_decode(gen.tokens[0]).numpy())


def test_stream_continues_a_prompt_without_repeating_it(model: torch.nn.Module) -> None:
    prompt = torch.randint(0, 256, (1, 100))
    gen = generate_tokens(model, 1, 320, 1, SamplingConfig(), seed=2, prompts=prompt, device="cpu",
                          use_graph=False, progress=False)
    chunks = list(stream_model(model, 0.02, prompt, chunk_seconds=0.004, seed=2, device="cpu"))
    joined = np.concatenate(chunks)
    assert joined.shape == (220,)
    np.testing.assert_array_equal(joined, mu_law_decode(gen.tokens[0, 100:]).numpy())


def test_cli_streams_a_wav_and_writes_a_folder(model: torch.nn.Module, tmp_path: Path, capsys) -> None:
    """``generate --stream`` writes one WAV; without it (same run) a folder whose index gives the printed mean BPB."""
    import json

    from train_helpers import music_folder, tiny_recipe

    from audiomamba.cli import main
    from audiomamba.train import RunOptions, train_recipe

    run = tmp_path / "run"
    train_recipe(tiny_recipe(music_folder(tmp_path / "music")), RunOptions(out=run, max_steps=1, device="cpu",
                                                                              progress=False))
    main(["generate", str(run), "--out", str(tmp_path / "s"), "--stream", "--seconds", "0.02", "--device", "cpu"])
    audio, rate = sf.read(str(tmp_path / "s" / "stream.wav"))
    assert rate == 16000 and audio.shape == (320,)
    capsys.readouterr()
    main(["generate", str(run), "--out", str(tmp_path / "b"), "--n", "3", "--batch", "3", "--seconds", "0.02",
          "--device", "cpu"])
    rows = json.loads((tmp_path / "b" / "index.json").read_text())
    assert len(rows) == 3 and all((tmp_path / "b" / r["file"]).is_file() for r in rows)
    printed = " ".join(capsys.readouterr().out.split())
    assert f"mean BPB {sum(r['bpb'] for r in rows) / 3:.3f}" in printed
