"""Negative log-likelihood of token sequences under a model: the training loss and NLL/BPB evaluation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from audiomamba.tokenizer import N_CLASSES


def autocast_for(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked, otherwise a no-op (fp32 on CPU)."""
    if device.type == "cuda" and bf16:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def sequence_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in nats. inputs, targets: (B, L) int64 -> scalar float32."""
    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, N_CLASSES).float(), targets.reshape(-1))


@torch.no_grad()
def dataset_nll(
    model: nn.Module,
    dataset: Dataset,
    batch_size: int,
    device: torch.device,
    indices: Sequence[int] | None = None,
    bf16: bool = False,
    num_workers: int = 0,
    progress: Iterable | None = None,
    resilient: bool = False,
) -> tuple[float, int]:
    """Summed NLL (nats) and the number of predicted samples over ``dataset`` (or its ``indices``).

    Every sequence is scored whole (no overlap, no truncation). The model is put in eval mode and
    restored afterwards. ``progress``: optional callable(n_done) hook per batch. ``resilient``
    (validation inside a training run): an unreadable item is retried, then replaced by the next
    readable one with a warning, instead of ending the run.
    """
    was_training = model.training
    model.eval()
    ds = Subset(dataset, list(indices)) if indices is not None else dataset
    if resilient:
        from audiomamba.data.resilient import Resilient

        ds = Resilient(ds)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    total, count = 0.0, 0
    for batch in loader:
        inputs, targets = batch[0].to(device), batch[1].to(device)
        with autocast_for(device, bf16):
            logits = model(inputs)
        nll = F.cross_entropy(logits.reshape(-1, N_CLASSES).float(), targets.reshape(-1), reduction="sum")
        total += float(nll)
        count += targets.numel()
        if progress is not None:
            progress(inputs.shape[0])  # type: ignore[operator]
    model.train(was_training)
    return total, count

