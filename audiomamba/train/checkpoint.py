"""Checkpoints: atomic writes, RNG state capture, and rebuilding a model from a checkpoint alone.

A checkpoint is a plain dict readable with ``torch.load(weights_only=True)`` (then :func:`unpack_tensors`)::

    format       int (CHECKPOINT_FORMAT)
    step         int, optimiser steps taken
    model        state_dict of the (unwrapped) model
    optimizer    AdamW state_dict
    scheduler    LambdaLR state_dict
    loader       {"epoch": int, "index": int}  global batches consumed in that epoch's permutation
    rng          {"python": {...}, "numpy": {...}, "torch": ByteTensor, "cuda": [ByteTensor, ...]}
    recipe       resolved recipe as nested plain dicts (Recipe.to_dict())
    model_config resolved model config for audiomamba.model.build_model
    metrics      {"best_val_bpb": float | None, "val_bpb": float | None, "train_loss": float | None}
    world_size   int
    elapsed_s    float, the training clock (seconds across resumes) that --snapshot-minutes reads
    ema          float32 EMA of the floating-point entries of ``model`` (when train.ema > 0)
    packed       {"bytes": uint8 tensor, "index": JSON str}: every tensor above, packed (format 2)

Format 2 writes every tensor of the dict (the weights, the EMA, AdamW's moments, the RNG's) into one
byte buffer, where each had its own record (:func:`pack_tensors`): ``torch.load`` spent ~0.06-0.09 ms
per record in its weights-only unpickler, 0.13-0.21 s for an sc09-small checkpoint with its EMA and
optimizer state (2.3 k tensors) against 0.015-0.02 s packed, on a CPU (``python -m
audiomamba.bench.profile_load``, BENCHMARKS.md).
:func:`load_checkpoint` unpacks them as views of the mapped file with ``mmap`` (``generate``: read once,
onto the device), else each into its own storage, and reads format 1 as before.

A *slim* checkpoint (:func:`slim_checkpoint`) leaves out the optimizer state, to move a run between
machines in a third of the bytes::

    python -m audiomamba.train.slim RUN/last.pt last-slim.pt              # resumable
    python -m audiomamba.train.slim RUN/snap-10min.pt snap.pt --sampling  # EMA weights only

``slim = "training"`` keeps the weights in float32 and the EMA in bfloat16; ``train --resume`` goes on
from it with AdamW's moments started again (with betas (0.9, 0.95) they settle within some tens of
steps). ``slim = "sampling"`` keeps only the EMA weights (else the weights) in bfloat16, for
``generate`` and ``evaluate``.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from audiomamba.errors import CheckpointError

CHECKPOINT_FORMAT = 2  # 2: the tensors packed into one buffer (:func:`pack_tensors`); 1 (one record each) still read
READ_FORMATS = (1, 2)
PACKED = "packed"
_ALIGN = 64  # every packed tensor starts at a multiple of this many bytes (its dtype's view needs its element size)
LAST = "last.pt"
BEST = "best.pt"
REQUIRED_KEYS = ("format", "step", "model", "recipe", "model_config")


def capture_rng() -> dict[str, Any]:
    """The python, numpy, torch and CUDA RNG states as tensors / plain values."""
    version, state, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    out: dict[str, Any] = {
        "python": {"version": int(version), "state": torch.tensor(state, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return out


def restore_rng(rng: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    py = rng["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    npr = rng["numpy"]
    np.random.set_state(
        (npr["name"], npr["keys"].numpy().astype(np.uint32), npr["pos"], npr["has_gauss"], npr["gauss"])
    )
    torch.set_rng_state(rng["torch"].clone())  # its own storage: a view at an offset crashed it (torch 2.14)
    if torch.cuda.is_available() and rng.get("cuda"):
        torch.cuda.set_rng_state_all([t.clone() for t in rng["cuda"][: torch.cuda.device_count()]])


def pack_tensors(state: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``state`` whose tensors (in nested dicts with str or int keys, and lists) are packed into one CPU
    byte buffer: each leaves ``None`` in its place (a dict with only tensors below it is left empty) and an entry
    (path, dtype, shape, offset) in the index; the copy gets ``format`` = CHECKPOINT_FORMAT and ``packed`` =
    {"bytes", "index"} (:func:`unpack_tensors`). One record for ``torch.load`` to unpickle instead of one per
    tensor; tensors on a GPU are copied one by one into the buffer (no second copy of the state on the device)."""
    entries: list[tuple[list[Any], torch.Tensor]] = []

    def walk(obj: Any, path: list[Any]) -> Any:
        if isinstance(obj, torch.Tensor):
            entries.append((path, obj.detach()))
            return None
        if isinstance(obj, dict) and all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in obj):
            out = {k: walk(v, [*path, k]) for k, v in obj.items()}
            if all(isinstance(v, torch.Tensor) or (isinstance(v, dict) and v and out[k] == {}) for k, v in obj.items()):
                return {}  # only tensors below: its keys come back from the index, in order (fewer records)
            return out
        if isinstance(obj, list):
            return [walk(v, [*path, i]) for i, v in enumerate(obj)]
        return obj

    out = walk(state, [])
    index, offset = [], 0
    for path, t in entries:
        index.append([path, str(t.dtype).removeprefix("torch."), list(t.shape), offset])
        offset += -(-t.numel() * t.element_size() // _ALIGN) * _ALIGN
    buf = torch.empty(offset, dtype=torch.uint8)
    for (_, t), (_, _, _, at) in zip(entries, index, strict=True):
        if t.numel():
            flat = t.contiguous().reshape(-1).view(torch.uint8)
            buf[at:at + flat.numel()].copy_(flat)
    out["format"] = CHECKPOINT_FORMAT
    out[PACKED] = {"bytes": buf, "index": json.dumps(index)}
    return out


def unpack_tensors(state: dict[str, Any], copy: bool = False) -> dict[str, Any]:
    """``state`` with its packed tensors (:func:`pack_tensors`) back in their places, in place: views of the
    buffer (of the mapped file, when it was loaded with ``mmap``), or with ``copy`` each in its own storage, as
    format 1 gave them (``torch.set_rng_state`` crashed on a view at an offset, torch 2.14). A state without
    ``packed`` is returned as is. ValueError if the index does not fit the buffer or the tree."""
    packed = state.pop(PACKED, None)
    if packed is None:
        return state
    buf = packed["bytes"]
    for path, dtype_name, shape, at in json.loads(packed["index"]):
        dtype = getattr(torch, dtype_name, None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"unknown dtype {dtype_name!r} at {path}")
        n = dtype.itemsize
        for d in shape:
            n *= d
        if at < 0 or at + n > buf.numel():
            raise ValueError(f"tensor at {path} ({n} bytes at {at}) lies past the buffer's {buf.numel()} bytes")
        t = buf[at:at + n].view(dtype).reshape(shape) if n else torch.empty(shape, dtype=dtype)
        t = t.clone() if copy else t
        node = state
        for key in path[:-1]:  # a dict of only tensors was packed empty: its keys are made again here, in order
            node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
        node[path[-1]] = t
    return state


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically, its tensors packed (:func:`pack_tensors`): a temp file in the same folder,
    fsync, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(pack_tensors(state), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def resolve_checkpoint(path_or_run_dir: str | Path, prefer: str = BEST) -> Path:
    """A checkpoint file from a file path or a run folder (``prefer`` first, then the other)."""
    p = Path(path_or_run_dir)
    if p.is_dir():
        order = [prefer, LAST if prefer == BEST else BEST]
        for name in order:
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"no checkpoint ({' or '.join(order)}) in run folder {p}: train first, or pass a .pt file")
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}: pass a run folder or a .pt file written by `audiomamba train`")
    return p


def load_checkpoint(path_or_run_dir: str | Path, prefer: str = BEST, mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)`` onto the CPU; CheckpointError if unusable.

    For a run folder, an unreadable ``prefer`` checkpoint falls back to the other one (best.pt <->
    last.pt) with a warning. ``mmap``: the tensors map the file instead of being read into memory (for weights
    copied once onto a device; checkpoints are replaced atomically, so a mapped one is never rewritten under it).
    """
    path = resolve_checkpoint(path_or_run_dir, prefer)
    try:
        return _load_file(path, mmap)
    except CheckpointError as err:
        other = path.parent / (LAST if path.name == BEST else BEST)
        if not (Path(path_or_run_dir).is_dir() and other.is_file()):
            raise
        warnings.warn(f"{err}; using {other.name} instead", stacklevel=2)
        return _load_file(other, mmap)


def _load_file(path: Path, mmap: bool = False) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        if isinstance(state, dict):
            unpack_tensors(state, copy=not mmap)  # mapped: views of the file (read once, onto a device)
    except Exception as err:  # noqa: BLE001 - any unpickling/zip failure means a corrupt file
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"corrupt or unreadable checkpoint {path} ({msg[:120]}): use another checkpoint of the run") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        raise CheckpointError(f"{path} is not an audiomamba checkpoint (missing keys): pass a file written by `audiomamba train`")
    if state["format"] not in READ_FORMATS:
        raise CheckpointError(f"{path} has checkpoint format {state['format']}, this version reads "
                              f"{' and '.join(map(str, READ_FORMATS))}: use a newer audiomamba")
    state["path"] = str(path)
    return state


def slim_checkpoint(state: dict[str, Any], sampling: bool = False, keep_ema: bool = True) -> dict[str, Any]:
    """A copy of ``state`` without the optimizer state: ``slim = "training"`` (float32 weights, bfloat16 EMA;
    ``train --resume`` reads it) or, with ``sampling``, ``slim = "sampling"`` (the EMA weights where there
    are some, else the weights, in bfloat16, and no EMA). ``keep_ema=False`` (training copies only) drops
    the EMA too, two thirds of the bytes: a resume then restarts the EMA from the weights."""
    out = {k: v for k, v in state.items() if k not in ("optimizer", "path")}
    ema = state.get("ema") or {}
    if not keep_ema and not sampling:
        ema = {}
        out.pop("ema", None)
    if sampling:
        weights = {**state["model"], **{k: v for k, v in ema.items() if k in state["model"]}}
        out["model"] = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in weights.items()}
        for key in ("ema", "ema_decay", "scheduler", "rng", "loader"):
            out.pop(key, None)
    elif ema:
        out["ema"] = {k: v.to(torch.bfloat16) for k, v in ema.items()}
    out["slim"] = "sampling" if sampling else "training"
    return out


def model_from_state(state: dict[str, Any], device: str | torch.device = "cpu", ema: bool = True) -> nn.Module:
    """Build the model from a loaded checkpoint's ``model_config`` and load its weights: the EMA
    weights where the checkpoint has them and ``ema`` is true, else the trained weights.

    The model is built on ``device``: its initial weights, overwritten at once, are drawn there (on a CPU that was
    0.1 s of ``uniform_`` for sc09-large's 24.9 M parameters, 2026-12-06), and the weights are copied there once."""
    from audiomamba.model import build_model

    with torch.device(device):
        model = build_model(state["model_config"])
    weights = dict(state["model"])
    if ema and state.get("ema"):
        weights.update({k: v.to(weights[k].dtype) for k, v in state["ema"].items() if k in weights})
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"weights in {state.get('path')} do not fit the model config ({first[:120]})") from None
    return model.to(device).eval()


def load_model_from_checkpoint(path_or_run_dir: str | Path, device: str | torch.device = "cpu", ema: bool = True):
    """``(model, recipe)`` from a run folder (best.pt, else last.pt) or a checkpoint file; the
    weights are the EMA where the run kept one and ``ema`` is true.

    The model is in eval mode on ``device``; ``recipe`` is a :class:`audiomamba.recipe.Recipe`
    (its ``data.root`` may point at a folder that no longer exists; pass ``--data`` then).
    """
    from audiomamba.recipe import recipe_from_dict

    state = load_checkpoint(path_or_run_dir, mmap=True)
    recipe = recipe_from_dict(state["recipe"], source=state["path"], check_model=False)
    return model_from_state(state, device, ema), recipe
