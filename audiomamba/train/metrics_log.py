"""Run metrics: JSONL always (``metrics.jsonl``), TensorBoard too when it is installed."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class MetricsLog:
    """Append-only metrics writer. Each record is one JSON line ``{"step": ..., "kind": ..., ...}``.

    ``kind`` is "train" (loss, bpb, lr, samples_per_s) or "val" (val_loss, val_bpb).
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.enabled = enabled
        self._tb = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
            except Exception:  # noqa: BLE001 - TensorBoard is an optional extra
                self._tb = None

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (called on resume, so a resumed curve has no duplicates)."""
        if not (self.enabled and self.path.exists()):
            return
        keep = [r for r in read_metrics(self.path) if r.get("step", 0) <= step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in keep))

    def log(self, step: int, kind: str, **values: Any) -> None:
        if not self.enabled:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"step": step, "kind": kind, **clean}) + "\n")
        if self._tb is not None:
            for k, v in values.items():
                if isinstance(v, int | float):
                    self._tb.add_scalar(f"{kind}/{k}", v, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` (skips a torn last line)."""
    out = []
    p = Path(path)
    if not p.exists():
        return out
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
