"""Does the generator compute what training learned? Per-token log-likelihoods of real clips through
every path that can produce them, side by side.

The training loss and the validation BPB come from the parallel forward (bf16 autocast on GPU);
samples come from step mode (fused Triton steps on GPU, or the composed PyTorch step). If step mode
disagreed with the parallel forward on *trained* weights, the model would be fine and the samples
noise. :func:`step_consistency` teacher-forces real clips through

- ``parallel_fp32``: the parallel forward in float32 (the reference of the comparison),
- ``parallel_bf16``: the parallel forward under bf16 autocast, as in training (CUDA only),
- ``parallel_reference_scan``: the parallel forward with the PyTorch reference scan (no Triton),
- ``step_fused`` / ``step_composed``: step mode, the way ``generate`` runs it (the prompt of the
  stepper is the clip itself, so every token is forced and its log-probability recorded),
- with ``fast``, the faster settings of step mode, judged by the same limits but apart from the default paths
  (``fast_agree``): ``step_composed_bf16_states`` and ``step_fused_bf16_states`` (the Mamba blocks' conv windows and
  real SSM states stored in bfloat16: ``generate --states bf16``), the same with float16 states
  (``step_composed_fp16_states``, ``step_fused_fp16_states``: ``--states fp16``), ``step_fused_bf16_tiles`` (the
  batched fused kernels' products on bf16 operands: ``AUDIOMAMBA_STEP_PRECISION=bf16``; the clips repeated to 16 rows, the
  batched kernels' smallest batch), ``step_fused_bf16_tiles_states`` (both) and ``step_fused_bf16_tiles_fp16_states``
  (bf16 tiles with the float16 states a large GPU batch steps by default) and ``step_fused_tf32_tiles_fp16_states``
  (one TF32 product per tile instead of three: ``AUDIOMAMBA_STEP_PRECISION=tf32``),

and reports the BPB of the clips under each path and the largest per-token log-probability
difference from ``parallel_fp32``.
"""

from __future__ import annotations

import os
from unittest.mock import patch

import torch
import torch.nn.functional as F
from torch import nn

from audiomamba import kernels
from audiomamba.generate.stepper import SamplingConfig, Stepper
from audiomamba.tokenizer import bits_per_sample, shift_right
from audiomamba.train.nll import autocast_for

#: the suffixes of the step paths with faster settings (``step_consistency(..., fast=True)``)
FAST = ("_bf16_states", "_fp16_states", "_bf16_tiles", "_bf16_tiles_states")
#: rows of the batched fused kernels (the bf16-tiles paths repeat the clips to this many)
BATCHED_ROWS = 16


def _parallel_logp(model: nn.Module, targets: torch.Tensor, bf16: bool) -> torch.Tensor:
    """log p(target_t | target_<t) from the parallel forward: targets (B, L) -> (B, L) float32."""
    with torch.no_grad(), autocast_for(targets.device, bf16):
        logits = model(shift_right(targets))
    return F.log_softmax(logits.float(), dim=-1).gather(-1, targets[..., None])[..., 0]


def _step_logp(model: nn.Module, targets: torch.Tensor, fused: bool, state_dtype: torch.dtype = torch.float32,
               precision: str | None = None) -> torch.Tensor:
    """The same log-probabilities from step mode (the clip is the stepper's prompt): (B, L). ``precision``: the
    batched fused kernels' ``AUDIOMAMBA_STEP_PRECISION`` for this call, with the clips repeated to
    :data:`BATCHED_ROWS` rows so that those kernels run (the rows never interact)."""
    dev, rows = targets.device, targets.shape[0]
    env = {} if precision is None else {"AUDIOMAMBA_STEP_PRECISION": precision}
    if precision is not None:
        targets = targets.repeat(-(-BATCHED_ROWS // rows), 1)
    kernels.set_fused_step(fused)
    try:
        with patch.dict(os.environ, env):
            stepper = Stepper(model, targets.shape[0], dev, SamplingConfig(), use_graph=dev.type == "cuda",
                              state_dtype=state_dtype)
            _, logp = stepper.run(targets, targets.shape[1])
    finally:
        kernels.set_fused_step(None)
    return logp[:rows]


def step_consistency(model: nn.Module, targets: torch.Tensor, reference_scan: bool = True,
                     fast: bool = False) -> dict:
    """Teacher-force ``targets`` ((B, L) int64 tokens on the model's device; L a multiple of the
    pooling product) through every path; returns ``{"paths": {name: {"bpb", "max_abs_logp_diff"}},
    "worst": name, "failed": [names], "agree": bool}``. ``agree`` means every path is within 0.02 BPB of
    ``parallel_fp32`` and the step paths' per-token log-probabilities within 0.05 nats of it. With
    ``fast`` also the step paths with faster settings (module docstring), and ``"fast_agree"`` / ``"fast_failed"``:
    whether those meet the same limits (they do not count in ``agree``, which is about the default paths).
    """
    model = model.eval()
    cuda = targets.device.type == "cuda"
    paths: dict[str, torch.Tensor] = {"parallel_fp32": _parallel_logp(model, targets, False)}
    if cuda:
        paths["parallel_bf16"] = _parallel_logp(model, targets, True)
    if reference_scan:
        previous = kernels.get_backend()
        kernels.set_backend("reference")
        try:
            paths["parallel_reference_scan"] = _parallel_logp(model, targets, False)
        finally:
            kernels.set_backend(previous)
    if cuda:
        paths["step_fused"] = _step_logp(model, targets, True)
    paths["step_composed"] = _step_logp(model, targets, False)
    if fast:
        paths["step_composed_bf16_states"] = _step_logp(model, targets, False, torch.bfloat16)
        paths["step_composed_fp16_states"] = _step_logp(model, targets, False, torch.float16)
        if cuda:
            paths["step_fused_bf16_states"] = _step_logp(model, targets, True, torch.bfloat16)
            paths["step_fused_fp16_states"] = _step_logp(model, targets, True, torch.float16)
            paths["step_fused_bf16_tiles"] = _step_logp(model, targets, True, precision="bf16")
            paths["step_fused_bf16_tiles_states"] = _step_logp(model, targets, True, torch.bfloat16, "bf16")
            paths["step_fused_bf16_tiles_fp16_states"] = _step_logp(model, targets, True, torch.float16, "bf16")
            paths["step_fused_tf32_tiles_fp16_states"] = _step_logp(model, targets, True, torch.float16, "tf32")
    base = paths["parallel_fp32"]
    report: dict[str, dict[str, float]] = {}
    failed: list[str] = []
    for name, logp in paths.items():
        bpb = float(bits_per_sample(-logp.double().mean()))
        diff = float((logp - base).abs().max())
        report[name] = {"bpb": bpb, "max_abs_logp_diff": diff}
        if abs(bpb - report["parallel_fp32"]["bpb"]) > 0.02 or (name.startswith("step") and diff > 0.05):
            failed.append(name)
    optional = [name for name in failed if name.endswith(FAST)]
    failed = [name for name in failed if name not in optional]
    worst = max(report, key=lambda k: report[k]["max_abs_logp_diff"])
    out = {"clips": int(targets.shape[0]), "length": int(targets.shape[1]), "paths": report, "worst": worst,
           "failed": failed, "agree": not failed}
    if fast:
        out["fast_failed"] = optional
        out["fast_agree"] = not optional
    return out


def format_consistency(result: dict) -> str:
    """The :func:`step_consistency` result as a Markdown table."""
    lines = [f"Teacher-forced {result['clips']} clip(s) of {result['length']} tokens:", "",
             "| path | BPB | max abs log-p diff vs parallel_fp32 (nats) |", "|---|---|---|"]
    for name, row in result["paths"].items():
        lines.append(f"| {name} | {row['bpb']:.4f} | {row['max_abs_logp_diff']:.2e} |")
    lines.append("")
    lines.append("all paths agree (within 0.02 BPB; step paths within 0.05 nats per token)" if result["agree"]
                 else f"PATHS DISAGREE: {', '.join(result['failed'])} (limits: 0.02 BPB; step paths 0.05 nats per token)")
    if "fast_agree" in result:
        lines.append("faster settings (bf16 and fp16 states, bf16 tiles): within the same limits" if result["fast_agree"]
                     else f"faster settings: OUTSIDE the limits ({', '.join(result['fast_failed'])})")
    return "\n".join(lines)
