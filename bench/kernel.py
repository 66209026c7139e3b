"""Scan-kernel benchmark: Triton vs the PyTorch associative reference vs FFT convolution vs HBM roofline.

Run on a GPU with ``audiomamba bench kernel --out BENCH_KERNEL.md`` (``--quick`` for two shapes).
Every row is measured in the same run on the same device. ``--device cpu`` is a smoke run at
tiny shapes (Triton interpreted when ``TRITON_INTERPRET=1``), for checking the driver, not speed.

``--peer mamba_ssm`` adds mamba_ssm's CUDA ``selective_scan`` to every row (built from its sdist by
``python -m audiomamba.bench.peer build``; see bench/peer.py for the layout mapping): its time, the
ratio mamba_ssm ms ÷ Triton ms (> 1: ours is faster) and the max relative difference of y.

Roofline: the minimum bytes a pass must move through HBM (inputs read once, outputs written
once, in the benchmark's dtype; LTI parameters are negligible) divided by the device-to-device
copy bandwidth measured with a large ``Tensor.copy_``.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from audiomamba.kernels.reference import selective_scan_assoc
from audiomamba.kernels.tuning import env_overrides, pick_config
from torch import Tensor


@dataclass(frozen=True)
class Case:
    """One benchmark shape: (batch, d, N, L) and the SSM kind."""

    batch: int
    d: int
    N: int
    L: int
    kind: str  # "selective-real" or "lti-complex"

    @property
    def lti(self) -> bool:
        return self.kind == "lti-complex"

    def label(self) -> str:
        return f"({self.batch}, {self.d}, {self.N}, {self.L})"


FULL_CASES = [
    Case(16, 128, 16, 16384, "selective-real"),
    Case(16, 128, 16, 16384, "lti-complex"),
    Case(8, 128, 16, 131072, "selective-real"),
    Case(8, 128, 16, 131072, "lti-complex"),
    Case(16, 512, 16, 1024, "selective-real"),
    Case(8, 2048, 16, 2048, "selective-real"),
]
# the shapes sc09-small's U-Net levels run at (16 x 16000 tokens, pooling 4 x 4): 4 kHz and 1 kHz (issue 14)
UNET_CASES = [Case(16, 256, 16, 4000, "selective-real"), Case(16, 512, 16, 1000, "selective-real")]
FULL_CASES += UNET_CASES
QUICK_CASES = FULL_CASES[:2]
CPU_CASES = [Case(1, 4, 4, 32, "selective-real"), Case(1, 4, 4, 32, "lti-complex")]

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def make_inputs(case: Case, dtype: torch.dtype, device: str, seed: int = 0) -> dict:
    """Mamba-like scan arguments: S6 (softplus Δ with bias, A = −(n+1)) or S4D-Lin complex LTI.

    Returns the keyword arguments of :func:`kernels.selective_scan` (B, C, D, z included).
    """
    g = torch.Generator(device="cpu").manual_seed(seed)
    b, d, N, L = case.batch, case.d, case.N, case.L

    def r(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g).to(device)

    dt_init = torch.exp(torch.rand(d, generator=g) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).to(device)
    n = torch.arange(N, device=device, dtype=torch.float32)
    if case.lti:
        A = torch.complex(torch.full((d, N), -0.5, device=device), math.pi * n.expand(d, N))
        B = torch.ones(d, N, dtype=torch.complex64, device=device)
        C = torch.complex(r(d, N), r(d, N)) * math.sqrt(0.5)
        return dict(u=r(b, d, L).to(dtype), delta=dt_init, A=A, B=B, C=C, D=torch.ones(d, device=device),
                    z=r(b, d, L).to(dtype), delta_bias=None, delta_softplus=False)
    return dict(
        u=r(b, d, L).to(dtype), delta=(r(b, d, L) * 0.1).to(dtype), A=-(n + 1).expand(d, N).contiguous(),
        B=r(b, N, L).to(dtype), C=r(b, N, L).to(dtype), D=torch.ones(d, device=device), z=r(b, d, L).to(dtype),
        delta_bias=torch.log(torch.expm1(dt_init)), delta_softplus=True,
    )


def fft_conv(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None,
             z: Tensor | None = None, delta_bias: Tensor | None = None, delta_softplus: bool = False) -> Tensor:
    """LTI scan as a causal convolution: K_l = Σ_n C_n exp(ΔA_n)^l Δ B_n (2·Re for complex A),
    built with a Vandermonde product, applied with rfft/irfft of length 2L.

    u (batch, d, L); delta (d,); A, B, C (d, N). Same result as the scan with these LTI arguments.
    """
    L = u.shape[-1]
    dt = delta.float() + (delta_bias.float() if delta_bias is not None else 0.0)
    if delta_softplus:
        dt = torch.nn.functional.softplus(dt)
    dtA = dt[:, None] * A  # (d, N)
    vander = torch.exp(dtA[:, :, None] * torch.arange(L, device=u.device, dtype=torch.float32))  # (d, N, L)
    K = torch.einsum("dn,dnl->dl", C * B * dt[:, None], vander)
    K = 2 * K.real if K.is_complex() else K
    y = torch.fft.irfft(torch.fft.rfft(u.float(), n=2 * L) * torch.fft.rfft(K, n=2 * L), n=2 * L)[..., :L]
    if D is not None:
        y = y + D.float()[:, None] * u.float()
    if z is not None:
        y = y * torch.nn.functional.silu(z.float())
    return y.to(u.dtype)


def min_bytes(case: Case, elt: int, backward: bool) -> int:
    """Fewest HBM bytes of the forward (or forward+backward) pass with D and z, in ``elt``-byte elements."""
    bdl = case.batch * case.d * case.L
    bnl = case.batch * case.N * case.L
    fwd = bdl * (3 if case.lti else 4) + (0 if case.lti else 2 * bnl)  # u, z, (delta), B, C read; y written
    bwd = bdl * (5 if case.lti else 7) + (0 if case.lti else 4 * bnl)  # + dy read; du, dz, (ddelta), dB, dC written
    return elt * (fwd + (bwd if backward else 0))


def copy_bandwidth(device: str, timer: Callable[[Callable[[], object]], float]) -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write) from a large ``Tensor.copy_``."""
    n = (1 << 28) if device == "cuda" else (1 << 22)
    src = torch.empty(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    ms = timer(lambda: dst.copy_(src))
    return 2 * src.numel() * 4 / (ms * 1e-3)


def cuda_graphed(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` captured once into a CUDA graph; the closure returned replays it: the same kernels on the same buffers,
    without the host's Python, autograd and launch costs. That is what a training step under CUDA graphs (torch.compile
    mode reduce-overhead) runs, and at short L, where the scan's kernels take less time than its call takes to issue
    (BENCHMARKS.md, "Where the time goes"), it is the GPU's own time. Three warm-up calls on a side stream first (the
    compiles, the launch caches, autograd's first-call work), as ``torch.cuda.graph`` asks."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def make_timer(device: str, quick: bool, graph: bool = False) -> Callable[[Callable[[], object]], float]:
    """Milliseconds per call: ``triton.testing.do_bench`` on CUDA, a median of wall times on CPU. ``graph`` (CUDA
    only): time replays of :func:`cuda_graphed`."""
    if graph and device != "cuda":
        raise ValueError("CUDA-graph timing needs device cuda")
    if device == "cuda":
        from triton.testing import do_bench

        def cuda_timer(fn: Callable[[], object]) -> float:
            if graph:
                fn = cuda_graphed(fn)
            fn()  # compile / warm caches
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            once = start.elapsed_time(end)
            if once > 50.0:  # slow baselines: a plain mean of two more runs keeps the benchmark short
                start.record()
                for _ in range(2):
                    fn()
                end.record()
                torch.cuda.synchronize()
                return start.elapsed_time(end) / 2
            return float(do_bench(fn, warmup=10 if quick else 25, rep=30 if quick else 80))

        return cuda_timer

    def cpu_timer(fn: Callable[[], object]) -> float:
        fn()
        times = []
        for _ in range(1 if quick else 3):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    return cpu_timer


def _leaves(inputs: dict) -> tuple[dict, list[Tensor]]:
    """A copy of the inputs whose floating tensors require grad, and the list of them."""
    out, leaves = {}, []
    for k, v in inputs.items():
        if isinstance(v, Tensor) and (v.is_floating_point() or v.is_complex()):
            v = v.detach().clone().requires_grad_()
            leaves.append(v)
        out[k] = v
    return out, leaves


def pass_fn(op: Callable[..., Tensor], inputs: dict, backward: bool) -> Callable[[], object]:
    """A closure running ``op`` forward (no grad) or forward + backward w.r.t. every input."""
    if not backward:
        def fwd() -> object:
            with torch.no_grad():
                return op(**inputs)
        return fwd
    kw, leaves = _leaves(inputs)
    # the same output grad for every closure of these inputs (a fixed seed): sweeps compare the grads
    # of several closures, and a fresh random gy each would make them differ by O(1)
    gen = torch.Generator(device=kw["u"].device).manual_seed(0)
    gy = torch.randn(kw["u"].shape, device=kw["u"].device, generator=gen).to(kw["u"].dtype)

    def fwd_bwd() -> object:
        return torch.autograd.grad(op(**kw), leaves, gy)
    return fwd_bwd


def ref_length(case: Case, backward: bool, device: str) -> int:
    """Largest L (L / 2^k) at which the associative reference fits in ~40 % of device memory."""
    if device != "cuda" or not backward:
        return case.L
    budget = 0.4 * torch.cuda.get_device_properties(0).total_memory
    per_step = case.batch * case.d * case.N * (8 if case.lti else 4)
    chunk = max(1, min(case.L, (1 << 22) // (case.batch * case.d * case.N)))
    factor = 4 * math.log2(max(chunk, 2)) + 12  # tensors autograd keeps per scan step, and spares
    L = case.L
    while L > 256 and per_step * L * factor > budget:
        L //= 2
    return L


def _ratio(r: float) -> str:
    return f"{r:.0f}×" if r >= 10 else (f"{r:.1f}×" if r >= 1 else f"{r:.2g}×")


def _fmt(x: float | None) -> str:
    return "–" if x is None else (f"{x:.3f}" if x < 10 else f"{x:.1f}")


def max_rel_diff(y: Tensor, ref: Tensor) -> float:
    """max |y − ref| / max |ref| (the normalisation of the report's correctness notes)."""
    y, ref = y.float(), ref.float()
    return (y - ref).abs().max().item() / ref.abs().max().item()


def peer_cells(t_peer: float | None, t_ours: float, rel: float | None,
               mem: tuple[float | None, float | None] = (None, None)) -> str:
    """A row's peer cells: peer ms, peer ms ÷ ours ms (> 1: ours is faster), max relative difference of y, and the
    peak memory of one call (ours, the peer's) in MiB (:func:`call_peak_mib`; "–" where not measured: off a GPU)."""
    ratio = _ratio(t_peer / t_ours) if t_peer else "–"
    mib = " | ".join("–" if m is None else f"{m:.1f}" for m in mem)
    return f" {_fmt(t_peer)} | {ratio} | {'–' if rel is None else f'{rel:.1e}'} | {mib} |"


def call_peak_mib(fn: Callable[[], object]) -> float | None:
    """MiB one call of ``fn`` allocates at its peak above what is live before it (its outputs, what autograd saves,
    workspaces, the grads; not the inputs, which the closure holds already); for a closure over GPU tensors."""
    fn()  # compiled and warmed: the caching allocator's first-call extras are not the call's
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del out
    return peak / 2**20


def _measure_peer(case: Case, dname: str, backward: bool, inputs: dict, triton_op, peer, timer,
                  t_triton: float, notes: list[str]) -> str:
    """The peer's cells of one row: its inputs mapped once (untimed), y compared, then timed like ours."""
    try:
        args = peer.prepare(**inputs)
        with torch.no_grad():
            rel = max_rel_diff(peer(**args), triton_op(**inputs))
        t_peer = timer(pass_fn(peer, args, backward))
        mem = (None, None)
        if inputs["u"].is_cuda:
            mem = (call_peak_mib(pass_fn(triton_op, inputs, backward)), call_peak_mib(pass_fn(peer, args, backward)))
    except torch.OutOfMemoryError:
        return " OOM | – | – | – | – |"
    except Exception as err:  # noqa: BLE001 - a case the peer refuses is reported, the run goes on
        first = (str(err).strip().splitlines() or [""])[0][:160]
        pname = "fwd+bwd" if backward else "fwd"
        notes.append(f"{peer.name} failed at {case.kind} {case.label()} {dname} {pname}: {type(err).__name__}: {first}")
        return " failed | – | – | – | – |"
    return peer_cells(t_peer, t_triton, rel, mem)


def run_benchmark(device: str = "cuda", quick: bool = False, command: str = "audiomamba bench kernel",
                  dtypes: tuple[str, ...] = ("fp32", "bf16"), cases: list[Case] | None = None,
                  peer=None, cuda_graph: bool = False) -> str:
    """Measure every case and return the Markdown report (device, date, command, table, notes).

    ``peer``: a loaded :class:`audiomamba.bench.peer.PeerScan` (or None): adds its columns to every row.
    ``cuda_graph``: time ours and the peer's calls as CUDA-graph replays (:func:`cuda_graphed`); the reference and
    FFT columns are left out then.
    """
    from audiomamba.kernels.triton_scan import selective_scan_triton
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if cases is None:
        cases = CPU_CASES if device == "cpu" else (QUICK_CASES if quick else FULL_CASES)
    timer = make_timer(device, quick, graph=cuda_graph)
    bw = copy_bandwidth(device, timer)
    notes: list[str] = []
    rows: list[str] = []
    jobs = [(c, dn, bwd) for c in cases for dn in dtypes for bwd in (False, True)]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task("bench kernel", total=len(jobs))
        for case, dname, backward in jobs:
            bar.update(task, description=f"{case.kind} {case.label()} {dname} {'fwd+bwd' if backward else 'fwd'}")
            rows.append(_measure(case, dname, backward, device, timer, bw, selective_scan_triton, notes, peer,
                                 others=not cuda_graph))
            bar.advance(task)
            if device == "cuda":
                torch.cuda.empty_cache()
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (smoke run, Triton interpreted)"
    import triton

    head = [
        "## Scan kernel benchmark",
        "",
        f"- device: **{name}**; date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `{command}`",
        f"- torch {torch.__version__}, triton {triton.__version__}; measured copy bandwidth "
        f"{bw / 1e9:.0f} GB/s (read + write)",
        "- Triton launch config per case (BLOCK_L, BLOCK_D fwd, BLOCK_D bwd, warps fwd, warps bwd"
        "[, forward segment length][, seq = sequential forward]): "
        + "; ".join(f"{c.kind} {c.label()}: {pick_config(c.batch, c.d, c.N, c.L, c.lti)}" for c in cases),
        "- all passes with D and the z gate; selective: softplus Δ with bias; times in ms (lower is better);"
        " roofline = minimum HBM bytes / copy bandwidth; speed-up = other / Triton",
        "",
    ]
    if env_overrides():
        head.insert(-1, f"- tuning environment: `{env_overrides()}` (e.g. `AUDIOMAMBA_SCAN_LTI_CHUNK`: fully-LTI rows by "
                    "chunks on tensor cores, kernels/triton_lti_chunk.py)")
    if cuda_graph:
        head.insert(-1, "- **timing: CUDA-graph replays** (`--cuda-graph`): every call (ours, the peer's, the bandwidth "
                    "copy) captured once and replayed, so no host time is in the figures; the PyTorch reference and "
                    "FFT columns are not timed")
    columns = ("| shape (B, d, N, L) | SSM | dtype | pass | Triton ms | roofline ms | % of roofline "
               "| PyTorch ref ms | Triton × vs ref | FFT conv ms | Triton × vs FFT |")
    rule = "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
    if peer is not None:
        p = peer.name
        head.insert(-1, f"- peer: {peer.describe()}; {p} ms in the row's pass; {p} ÷ Triton = {p} ms / Triton ms "
                    f"(> 1: Triton is faster); y rel diff = max |y {p} − y Triton| / max |y Triton|; LTI rows: {p} "
                    "takes Δ as its float32 delta_bias over a zero (B, d, L) delta in the input dtype (it has no "
                    "per-channel Δ), so it also reads that delta and, in the backward, writes its gradient; peak MiB = "
                    "what one call allocates at its peak above the live inputs (outputs, saved tensors, workspaces, "
                    "grads; `torch.cuda.max_memory_allocated`, one eager call after a warm-up)")
        columns += f" {p} ms | {p} ÷ Triton | y rel diff vs {p} | Triton peak MiB | {p} peak MiB |"
        rule += "---:|---:|---:|---:|---:|"
    head += [columns, rule]
    return "\n".join(head + rows + [""] + [f"- {n}" for n in notes]) + "\n"


def _measure_ref(case: Case, dtype: torch.dtype, backward: bool, device: str, timer,
                 notes: list[str]) -> tuple[float | None, str]:
    """The PyTorch reference's time and cell: at a reduced L where it does not fit, scaled linearly."""
    L_ref = ref_length(case, backward, device)
    try:
        small = case if L_ref == case.L else Case(case.batch, case.d, case.N, L_ref, case.kind)
        t_ref = timer(pass_fn(selective_scan_assoc, make_inputs(small, dtype, device), backward)) * case.L / L_ref
    except torch.OutOfMemoryError:
        return None, "OOM"
    if L_ref != case.L:
        note = f"reference fwd+bwd at {case.label()} does not fit; timed at L={L_ref} and scaled linearly"
        if note not in notes:
            notes.append(note)
    return t_ref, _fmt(t_ref) + ("" if L_ref == case.L else f" (at L={L_ref}, ×{case.L // L_ref})")


def _check(case: Case, dname: str, inputs: dict, triton_op, notes: list[str]) -> None:
    """Record in the notes how far the timed Triton forward is from the reference (and FFT conv)."""
    with torch.no_grad():
        y_ref = selective_scan_assoc(**inputs)
        msg = f"check {case.kind} {case.label()} {dname}: max |Triton − ref| / max |ref| = {max_rel_diff(triton_op(**inputs), y_ref):.1e}"
        if case.lti:
            msg += f", max |FFT − ref| / max |ref| = {max_rel_diff(fft_conv(**inputs), y_ref):.1e}"
        del y_ref
    notes.append(msg)


def _measure(case: Case, dname: str, backward: bool, device: str, timer, bw: float, triton_op, notes,
             peer=None, others: bool = True) -> str:
    """One table row: Triton, reference (maybe at reduced L, scaled), FFT conv for LTI, roofline[, peer].
    ``others`` False: the reference and FFT cells stay empty ("–")."""
    dtype = DTYPES[dname]
    inputs = make_inputs(case, dtype, device)
    if not backward:
        _check(case, dname, inputs, triton_op, notes)
    t_triton = timer(pass_fn(triton_op, inputs, backward))
    roof = min_bytes(case, torch.finfo(dtype).bits // 8, backward) / bw * 1e3

    t_ref, ref_txt = None, "–"
    if others:
        t_ref, ref_txt = _measure_ref(case, dtype, backward, device, timer, notes)
    t_fft, fft_txt = None, "–"
    if case.lti and others:
        try:
            t_fft = timer(pass_fn(fft_conv, inputs, backward))
            fft_txt = _fmt(t_fft)
        except torch.OutOfMemoryError:
            fft_txt = "OOM"
    speed_ref = _ratio(t_ref / t_triton) if t_ref else "–"
    speed_fft = _ratio(t_fft / t_triton) if t_fft else "–"
    row = (f"| {case.label()} | {case.kind} | {dname} | {'fwd+bwd' if backward else 'fwd'} | {_fmt(t_triton)} "
           f"| {_fmt(roof)} | {100 * roof / t_triton:.0f} % | {ref_txt} | {speed_ref} | {fft_txt} | {speed_fft} |")
    if peer is not None:
        row += _measure_peer(case, dname, backward, inputs, triton_op, peer, timer, t_triton, notes)
    return row


SWEEP_CONFIGS = [
    "32,32,1,1,1,256,seq", "32,32,1,1,1,512,seq", "32,32,2,1,1,512,seq", "64,32,1,1,1,512,seq",
    "32,64,1,2,1,512,seq", "32,1,1,1,1", "16,1,1,1,1", "64,2,1,8,8",
]


def run_sweep(device: str = "cuda", quick: bool = False, command: str = "audiomamba bench kernel --sweep",
              dtype: str = "bf16", cases: list[Case] | None = None, configs: list[str] | None = None) -> str:
    """Time the Triton kernels under several launch configs (for choosing AUDIOMAMBA_SCAN_CONFIG).

    Returns a Markdown table: per case and config, fwd and fwd+bwd ms and % of the HBM roofline."""
    from audiomamba.kernels.triton_scan import selective_scan_triton
    from audiomamba.kernels.tuning import parse_config
    from rich.progress import Progress

    if cases is None:
        cases = CPU_CASES if device == "cpu" else QUICK_CASES
    configs = configs or SWEEP_CONFIGS
    timer = make_timer(device, quick)
    bw = copy_bandwidth(device, timer)
    elt = torch.finfo(DTYPES[dtype]).bits // 8
    rows = []
    with Progress() as bar:
        task = bar.add_task("sweep", total=len(cases) * len(configs))
        for case in cases:
            inputs = make_inputs(case, DTYPES[dtype], device)
            default = str(pick_config(case.batch, case.d, case.N, case.L, case.lti))
            for text in configs:
                cfg = parse_config(text)

                def op(cfg=cfg, **kw):
                    return selective_scan_triton(**kw, config=cfg)

                try:
                    t_f = timer(pass_fn(op, inputs, False))
                    t_b = timer(pass_fn(op, inputs, True))
                    cells = (f"{_fmt(t_f)} | {100 * min_bytes(case, elt, False) / bw * 1e3 / t_f:.0f} % "
                             f"| {_fmt(t_b)} | {100 * min_bytes(case, elt, True) / bw * 1e3 / t_b:.0f} %")
                except Exception as err:  # noqa: BLE001 - a config that fails to compile/launch is reported
                    cells = f"failed: {type(err).__name__} | | |"
                mark = " (default)" if text == default else ""
                rows.append(f"| {case.label()} | {case.kind} | {dtype} | {text}{mark} | {cells} |")
                bar.advance(task)
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (smoke run)"
    head = [
        "## Scan kernel launch-config sweep",
        "",
        f"- device: **{name}**; date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}; command: `{command}`",
        "- config = BLOCK_L,BLOCK_D_FWD,BLOCK_D_BWD,WARPS_FWD,WARPS_BWD[,SEG_L][,seq] (set with AUDIOMAMBA_SCAN_CONFIG)",
        "",
        "| shape (B, d, N, L) | SSM | dtype | config | fwd ms | fwd % roofline | fwd+bwd ms | fwd+bwd % roofline |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    return "\n".join(head + rows) + "\n"
