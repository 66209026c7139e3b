"""Sample metrics for SC09 grid cells: generate samples, then FID / IS / mIS / AM / NDB."""

from __future__ import annotations

from pathlib import Path

import torch

from audiomamba.errors import CheckpointError

KEYS = {"FID": "fid", "IS": "is", "mIS": "mis", "AM": "am", "NDB": "ndb"}


def sample_scorer(classifier: Path, data: Path | None, seconds: float = 1.0):
    """A scorer ``(model, recipe, run_dir, n, seed) -> {"fid": …, "is": …, "mis": …, "am": …, "ndb": …}``.

    Samples (``seconds`` long, SC09: 1 s; temperature 1) go to ``run_dir/samples``; the metrics JSON to ``run_dir/sample_metrics.json``.
    """
    if not Path(classifier).is_file():
        raise CheckpointError(f"classifier checkpoint not found: {classifier}: train one with `audiomamba evaluate train-classifier`")

    def score(model: torch.nn.Module, recipe, run_dir: Path, n: int, seed: int) -> dict[str, float]:
        from audiomamba.eval.report import evaluate_samples
        from audiomamba.generate import SamplingConfig, generate_to_folder

        device = next(model.parameters()).device
        folder = run_dir / "samples"
        generate_to_folder(model, folder, n, seconds, min(n, 256), SamplingConfig(), seed, recipe.data.normalization,
                           device=device, progress=False)
        report = evaluate_samples(folder, classifier, data or recipe.data.root, json_out=run_dir / "sample_metrics.json",
                                  device=device.type, progress=False)
        row = report["rows"]["samples"]
        return {ours: row[theirs] for theirs, ours in KEYS.items()}

    return score
