"""``python -m audiomamba.train.slim SRC DST [--sampling]``: write a slim copy of a checkpoint.

A slim checkpoint has no optimizer state (a third of the bytes, or an eighth with ``--sampling``), to move a
run between machines: ``train --resume`` goes on from a slim ``last.pt``, and ``generate``/``evaluate`` read a
``--sampling`` one. See :func:`audiomamba.train.checkpoint.slim_checkpoint`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audiomamba.errors import CheckpointError
from audiomamba.train.checkpoint import LAST, load_checkpoint, save_checkpoint, slim_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiomamba.train.slim",
                                     description="Write a slim copy of a checkpoint (no optimizer state).")
    parser.add_argument("src", type=Path, help="a checkpoint file, or a run folder (its last.pt)")
    parser.add_argument("dst", type=Path, help="the slim checkpoint to write")
    parser.add_argument("--sampling", action="store_true", help="Keep only the EMA weights, in bfloat16.")
    parser.add_argument("--no-ema", action="store_true",
                        help="A training copy without the EMA (2/3 of the bytes; a resume restarts the EMA).")
    parser.add_argument("--max-mib", type=float, default=0.0,
                        help="Drop the EMA from a training copy whose tensors would pass this many MiB (0: no cap).")
    args = parser.parse_args(argv)
    try:
        state = load_checkpoint(args.src, prefer=LAST)
        slim = slim_checkpoint(state, args.sampling, keep_ema=not args.no_ema)
        no_ema = args.no_ema
        if args.max_mib and not args.sampling and "ema" in slim and _tensor_mib(slim) > args.max_mib:
            del slim["ema"]  # what keep_ema=False leaves out, without converting the EMA a second time
            no_ema = True
        path = save_checkpoint(args.dst, slim)
    except (CheckpointError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    mib = path.stat().st_size / 2**20
    kind = "sampling" if args.sampling else "training" + (", no EMA" if no_ema else "")
    print(f"wrote {path} ({mib:.1f} MiB, slim {kind}, step {state['step']})")
    return 0


def _tensor_mib(state: dict) -> float:
    """MiB of the weights and EMA tensors of a checkpoint dict (what dominates its file)."""
    return sum(t.numel() * t.element_size() for key in ("model", "ema") for t in (state.get(key) or {}).values()) / 2**20


if __name__ == "__main__":
    raise SystemExit(main())
