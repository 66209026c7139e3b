"""U-Net training-step benchmark: forward+backward throughput and peak memory, Triton vs reference scan.

Run on a GPU::

    audiomamba bench model --out bench-model.md

Measures, in one run and under bf16 autocast:

* sc09-small at batch 16 x 16000 and youtubemix at batch 8 x 131072, once with the Triton scan and
  once with the PyTorch reference scan (forced through :func:`kernels.set_backend`). A case that
  runs out of memory is reported as OOM and retried at half the batch down to 1, then at half the
  length (up to 4 times), so that both scans still get a samples/s figure; the note says where.
* the longest ``sample_len`` of the Table 14 schedule (docs/ARCHITECTURE.md §4) whose training step fits at
  batch 1 with the Triton scan (goal: 958464), trying lengths from the longest down.

``--quick`` runs tiny presets on short sequences (any device; a smoke test of the driver).
"""

from __future__ import annotations

import gc
import math
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import torch
import torch.nn.functional as F

from audiomamba import kernels
from audiomamba.model import build_model, load_model_preset


@dataclass
class Case:
    """One benchmark shape: a model preset at (batch, length)."""

    preset: str
    batch: int
    length: int


@dataclass
class Result:
    """Measurement of one (case, scan backend)."""

    case: Case
    backend: str
    batch: int  # the shape actually measured (smaller than the case's after an OOM retry)
    length: int = 0
    params: int = 0
    ms_per_iter: float | None = None
    peak_gib: float | None = None
    note: str = ""

    @property
    def samples_per_s(self) -> float | None:
        if self.ms_per_iter is None:
            return None
        return self.batch * self.length / (self.ms_per_iter / 1000)


FULL_CASES = [Case("sc09-small", 16, 16000), Case("youtubemix", 8, 131072)]
QUICK_CASES = [Case("sc09-small-tiny", 2, 1024), Case("youtubemix-tiny", 2, 2048)]
BACKENDS = ("triton", "reference")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def _describe(err: BaseException) -> str:
    """ "OOM", or a one-line "error: Type: message" for a table note."""
    if _is_oom(err):
        return "OOM"
    first = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
    return f"error: {type(err).__name__}: {first}".replace("|", "/")


def train_step_time(
    preset: str,
    batch: int,
    length: int,
    device: torch.device,
    iters: int = 3,
    max_seconds: float = 20.0,
    bf16: bool = True,
) -> tuple[float, float | None, int]:
    """Time forward + cross-entropy + backward of ``preset`` on random tokens (batch, length).

    One warm-up step (compilation), then up to ``iters`` timed steps (fewer once ``max_seconds``
    is spent). Returns (ms per step, peak memory GiB or None on CPU, parameter count).
    Out-of-memory errors propagate.
    """
    torch.manual_seed(0)
    model = build_model(load_model_preset(preset)).to(device)
    tokens = torch.randint(0, 256, (batch, length), device=device)
    use_bf16 = bf16 and device.type == "cuda"

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(tokens)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tokens.reshape(-1))
        loss.backward()

    try:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        step()
        _sync(device)
        t0 = time.perf_counter()
        n = 0
        while n < iters:
            step()
            n += 1
            _sync(device)
            if time.perf_counter() - t0 > max_seconds:
                break
        ms = (time.perf_counter() - t0) / n * 1000
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        return ms, peak, sum(p.numel() for p in model.parameters())
    finally:
        model = tokens = None  # drop the references before freeing the cache
        _free(device)


def fallback_shapes(case: Case, pool_product: int, max_halvings: int = 4) -> list[tuple[int, int]]:
    """Shapes to try in order: the case's batch halved down to 1, then the length halved at batch 1.

    Lengths stay multiples of ``pool_product``; at most ``max_halvings`` length halvings.
    """
    shapes = []
    batch = case.batch
    while batch >= 1:
        shapes.append((batch, case.length))
        batch //= 2
    length = case.length
    for _ in range(max_halvings):
        length = (length // 2) // pool_product * pool_product
        if length < pool_product:
            break
        shapes.append((1, length))
    return shapes


def measure(case: Case, backend: str, device: torch.device, iters: int, max_seconds: float) -> Result:
    """One (case, backend) row; on OOM, retries at half the batch, then (at batch 1) half the length."""
    res = Result(case, backend, case.batch, case.length)
    pool_product = math.prod(load_model_preset(case.preset)["model"].get("pool", []))
    kernels.set_backend(backend)
    try:
        failed: list[str] = []
        for batch, length in fallback_shapes(case, pool_product):
            res.batch, res.length = batch, length
            try:
                res.ms_per_iter, res.peak_gib, res.params = train_step_time(
                    case.preset, batch, length, device, iters, max_seconds
                )
                break
            except Exception as err:  # noqa: BLE001 - every failure becomes a row note
                failure = _describe(err)
            # freed outside the except clause: the traceback holds the failed step's activations
            _free(device)
            if failure != "OOM":
                res.note = failure
                return res
            failed.append(f"{batch} × {length}")
        if failed:
            res.note = f"OOM at {', '.join(failed)}" + (
                f"; measured at {res.batch} × {res.length}" if res.ms_per_iter is not None else ""
            )
        return res
    finally:
        kernels.set_backend(None)


def longest_trainable(
    preset: str, lengths: list[int], device: torch.device, max_seconds: float
) -> list[tuple[int, float | None, float | None, str]]:
    """Try ``lengths`` (longest first) at batch 1 with the Triton scan until one trains.

    Returns rows (length, ms per step or None, peak GiB or None, note).
    """
    rows = []
    kernels.set_backend("triton")
    try:
        for length in sorted(lengths, reverse=True):
            try:
                ms, peak, _ = train_step_time(preset, 1, length, device, iters=1, max_seconds=max_seconds)
                rows.append((length, ms, peak, "trains"))
                break
            except Exception as err:  # noqa: BLE001
                failure = _describe(err)
            _free(device)
            rows.append((length, None, None, failure))
    finally:
        kernels.set_backend(None)
    return rows


def _fmt(x: float | None, spec: str) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def device_name(device: torch.device) -> str:
    """Human-readable device description."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def render(
    results: list[Result],
    sweep: list[tuple[int, float | None, float | None, str]],
    device: torch.device,
    command: str,
    goal: int,
) -> str:
    """The benchmark as a markdown section (device, date, command, tables)."""
    try:
        import triton

        triton_version = triton.__version__
    except Exception:  # noqa: BLE001 - the report still renders without triton
        triton_version = "not importable"
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## U-Net training step: Triton vs reference scan",
        "",
        f"- device: {device_name(device)}",
        f"- date: {now}",
        f"- command: `{command}`",
        f"- torch {torch.__version__}, triton {triton_version}; forward + cross-entropy + backward, "
        f"{'bf16 autocast' if device.type == 'cuda' else 'fp32 (CPU)'}, random tokens",
        "",
        "| model | params | batch × length | scan | samples/s | ms/step | peak memory (GiB) | speed-up vs reference | note |",
        "|---|---:|---|---|---:|---:|---:|---:|---|",
    ]
    by_case: dict[str, dict[str, Result]] = {}
    for r in results:
        by_case.setdefault(r.case.preset, {})[r.backend] = r
    for r in results:
        ref = by_case[r.case.preset].get("reference")
        speed = None
        if r.backend != "reference" and ref is not None and ref.samples_per_s and r.samples_per_s:
            speed = r.samples_per_s / ref.samples_per_s
        lines.append(
            f"| {r.case.preset} | {_fmt(r.params / 1e6 if r.params else None, '.2f')}{' M' if r.params else ''} | {r.batch} × {r.length} | {r.backend} "
            f"| {_fmt(r.samples_per_s, ',.0f')} | {_fmt(r.ms_per_iter, '.1f')} | {_fmt(r.peak_gib, '.2f')} "
            f"| {_fmt(speed, '.1f') + '×' if speed else '–'} | {r.note} |"
        )
    if sweep:
        lines += [
            "",
            "### Longest sequence that trains at batch 1 (Table 14 schedule, youtubemix, Triton scan)",
            "",
            "| sample_len | result | ms/step | samples/s | peak memory (GiB) |",
            "|---:|---|---:|---:|---:|",
        ]
        for length, ms, peak, note in sweep:
            sps = length / (ms / 1000) if ms else None
            lines.append(
                f"| {length} | {note} | {_fmt(ms, '.0f')} | {_fmt(sps, ',.0f')} | {_fmt(peak, '.2f')} |"
            )
        ok = [row[0] for row in sweep if row[3] == "trains"]
        lines += ["", f"Longest trainable sample_len: **{ok[0] if ok else 'none'}** (goal {goal})."]
    return "\n".join(lines) + "\n"


def run(
    quick: bool = False,
    device: str | None = None,
    command: str = "audiomamba bench model",
    backends: tuple[str, ...] = BACKENDS,
) -> str:
    """Run the whole benchmark and return the markdown report."""
    from audiomamba.data.youtubemix import SEQLEN_SCHEDULE

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cases = QUICK_CASES if quick else FULL_CASES
    iters, max_s = (1, 5.0) if quick else (3, 20.0)
    results = [measure(c, b, dev, iters, max_s) for c in cases for b in backends]
    if quick:
        sweep_preset, lengths = "youtubemix-tiny", [4096, 2048]
    else:
        sweep_preset, lengths = "youtubemix", [n for n, _ in SEQLEN_SCHEDULE]
    sweep = longest_trainable(sweep_preset, lengths, dev, max_s) if "triton" in backends else []
    return render(results, sweep, dev, command, max(lengths))
