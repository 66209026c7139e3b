"""The overfit proof: can the pipeline say back what it has learned?

``audiomamba evaluate overfit`` trains a recipe on a handful of SC09 clips (``sc09-overfit``: the
first few train clips of each digit) until it has memorised them, then

1. checks that step mode computes what the parallel forward learned (:mod:`audiomamba.generate.diagnose`,
   on the trained weights and training clips),
2. generates unconditional samples exactly as ``audiomamba generate`` does, and
3. scores them with the digit classifier: the share of samples recognised with probability
   >= 0.9, the inception score, and the digits drawn.

A model that has memorised 10 digits must give samples the classifier recognises. The goal
(issue 13): at least 80 % of samples recognised with p >= 0.9 and IS >= 5.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from audiomamba.eval.classifier import load_classifier
from audiomamba.eval.metrics import inception_score

CONFIDENT = 0.9
GOAL_CONFIDENT = 0.8
GOAL_IS = 5.0


def score_probs(probs: torch.Tensor) -> dict:
    """Classifier verdict from the class probabilities (n, 10) of n samples: share with p >= 0.9,
    IS, digits drawn."""
    top, digit = probs.max(dim=-1)
    return {
        "count": int(probs.shape[0]),
        "recognised": float((top >= CONFIDENT).float().mean()),
        "IS": inception_score(probs),
        "digits": torch.bincount(digit, minlength=probs.shape[1]).tolist(),
        "mean_top_prob": float(top.mean()),
    }


def run_overfit(
    recipe_name: str,
    data: Path,
    out: Path,
    classifier_path: Path,
    n: int = 256,
    minutes: float | None = None,
    sets: list[str] | None = None,
    device: str | None = None,
    temperature: float = 1.0,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Train ``recipe_name`` into ``out/run``, check step consistency, generate ``n`` samples into
    ``out/samples`` and score them. Writes ``out/overfit.json`` and returns the report."""
    from audiomamba.eval.classifier import digit_labeller

    from audiomamba.data import build_dataset
    from audiomamba.generate import SamplingConfig, generate_to_folder
    from audiomamba.generate.diagnose import format_consistency, step_consistency
    from audiomamba.generate.noise import NoiseProfile
    from audiomamba.recipe import load_recipe, pool_product
    from audiomamba.tokenizer import bits_per_sample
    from audiomamba.train import RunOptions, train_recipe
    from audiomamba.train.checkpoint import LAST, load_checkpoint, model_from_state
    from audiomamba.train.nll import dataset_nll

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    classifier = load_classifier(classifier_path, dev)
    recipe = load_recipe(recipe_name, sets, data)
    run_dir = out / "run"
    t0 = time.monotonic()
    result = train_recipe(recipe, RunOptions(out=run_dir, resume=(run_dir / LAST).is_file(), max_minutes=minutes,
                                             device=str(dev), progress=progress))
    train_seconds = time.monotonic() - t0
    state = load_checkpoint(run_dir / LAST)
    model = model_from_state(state, dev)
    d = recipe.data
    train_ds = build_dataset(d.kind, d.root, "train", d.sample_len, d.normalization,
                             pool_product(state["model_config"]), d.clips_per_class)
    total, count = dataset_nll(model, train_ds, d.batch_size, dev, bf16=recipe.train.bf16)
    train_bpb = bits_per_sample(total / count)

    clips = torch.stack([train_ds[i][1] for i in range(min(2, len(train_ds)))]).to(dev)
    consistency = step_consistency(model, clips, fast=True)

    samples_dir = out / "samples"
    rows, gen = generate_to_folder(
        model, samples_dir, n, 1.0, min(n, 256), SamplingConfig(temperature), seed, d.normalization,
        device=dev, progress=progress, labeller=digit_labeller(classifier),
        noise_profile=NoiseProfile.load(run_dir),
    )
    from audiomamba.tokenizer import mu_law_decode

    verdict = score_probs(classifier.probs(mu_law_decode(gen.tokens)))
    verdict["samples_bpb"] = float(gen.bpb().mean())
    verdict["noise_flagged"] = sum(r["noise"] for r in rows)
    passed = verdict["recognised"] >= GOAL_CONFIDENT and verdict["IS"] >= GOAL_IS
    report = {
        "recipe": recipe.name,
        "clips": len(train_ds),
        "steps": result.step,
        "train_seconds": round(train_seconds, 1),
        "train_bpb": train_bpb,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "consistency": consistency,
        "samples": verdict,
        "temperature": temperature,
        "goal": {"recognised": GOAL_CONFIDENT, "IS": GOAL_IS},
        "passed": bool(passed),
    }
    (out / "overfit.json").write_text(json.dumps(report, indent=2) + "\n")
    report["consistency_table"] = format_consistency(consistency)
    return report


def format_overfit(report: dict) -> str:
    """A short Markdown summary of :func:`run_overfit`'s report."""
    s = report["samples"]
    lines = [
        f"recipe {report['recipe']}: {report['clips']} clips, {report['steps']} steps in "
        f"{report['train_seconds']:.0f} s on {report['device']}; train BPB {report['train_bpb']:.3f}",
        "",
        report.get("consistency_table", ""),
        "",
        f"{s['count']} samples (T = {report['temperature']:g}): {100 * s['recognised']:.1f} % recognised with "
        f"p >= {CONFIDENT}, IS {s['IS']:.2f}, mean top probability {s['mean_top_prob']:.3f}, "
        f"samples' own BPB {s['samples_bpb']:.3f}; digits 0-9 drawn {s['digits']}",
        f"goal (>= {100 * GOAL_CONFIDENT:.0f} % recognised, IS >= {GOAL_IS:g}): "
        + ("PASSED" if report["passed"] else "MISSED"),
    ]
    if not math.isfinite(report["train_bpb"]):
        lines.append("train BPB is not finite")
    return "\n".join(lines)
