"""Launch configuration of the Triton scan kernels (block sizes, warps, segments), with an env override.

``AUDIOMAMBA_SCAN_CONFIG="BLOCK_L,BLOCK_D_FWD,BLOCK_D_BWD,WARPS_FWD,WARPS_BWD[,SEG_L][,seq][,loopCHUNK]"``
(powers of two; SEG_L = 0 or left out: one forward segment; ``seq``: the sequential lane-per-channel
forward, BLOCK_D_FWD = 32 · WARPS_FWD; ``loopCHUNK``: the state-loop backward over chunks of CHUNK
steps, else the tile backward) overrides the heuristic, for tuning on a new GPU
(``audiomamba bench kernel --sweep`` times a few).

SEG_L is the segment length of the chunk-parallel forward: L is cut into segments of SEG_L steps
that are scanned in parallel (a local pass, a tiny serial carry across segments, then the full
pass). The backward picks its own segment count (:func:`pick_seg_l_bwd`) unless ``seg_l_bwd`` is set.
BLOCK_L is the chunk of the backward's scan and the spacing of the states the forward saves for it.

Measured on an H100 (fp32, N = 16): the sequential forward with 32 lanes and 1 warp, segments of
256-1024 steps, and a 1-warp backward over (1, 32, N) tiles were the fastest of the configs tried;
on an H200 the state-loop backward (``bwd_loop``) beat the tile one for real A (2026-12-02) and, over
chunks of 256 steps, for complex A (2026-12-04).
``AUDIOMAMBA_SCAN_CONFIG`` gives the tile backward unless it ends in ``loopCHUNK`` or
``AUDIOMAMBA_SCAN_BWD_LOOP`` is set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from .errors import KernelError


@dataclass(frozen=True)
class ScanConfig:
    """Chunk length along L, channels per program, warps (forward and backward), segment length
    (steps scanned by one program; 0 = all of L) and the forward kernel: the chunk scan, or with
    ``seq_fwd`` the sequential lane-per-channel kernel (BLOCK_D_FWD = lanes = 32 · WARPS_FWD)."""

    block_l: int = 64
    block_d_fwd: int = 2
    block_d_bwd: int = 1
    warps_fwd: int = 8
    warps_bwd: int = 8
    #: Env: AUDIOMAMBA_SCAN_SEG_L=0|64|...|131072 (a power of two; 0 = one segment: no local pass, no carry). The pick
    #: never goes below MIN_SEG_CHUNKS chunks; 64 and 128 are for sweeps at short L (2 and 4 chunks of 32 steps).
    seg_l: int = 0
    seq_fwd: bool = False
    #: backward segment length: -1 = from :func:`pick_seg_l_bwd` for the backward's programs, 0 = one. At (8, 128, 16,
    #: 131072) :func:`pick_seg_l` gives 2 segments (2048 one-warp programs); with pass 1 as a sum, 8 segments of 16384
    #: steps were 1.04-1.05x (one H100, 2026-12-07 04:39 UTC; :data:`BWD_SEG_MAX`).
    #: Env: AUDIOMAMBA_SCAN_BWD_SEG_L=0|512|...|131072 (a power of two).
    seg_l_bwd: int = -1
    #: time steps unrolled per iteration of the sequential forward's inner loop (1 = none; a power of
    #: two <= 16; 0 = by input dtype, :data:`SEQ_TILE_AUTO`). Env: AUDIOMAMBA_SCAN_UNROLL.
    unroll: int = 0
    #: selective dB/dC of the backward stored per channel block and summed in PyTorch, instead of
    #: atomics into one (batch, N, L) buffer (costs batch·(d / BLOCK_D_BWD)·L·N floats per tensor).
    #: Env: AUDIOMAMBA_SCAN_BWD_PARTIALS=1. Off until an H200 benchmark says it is faster.
    bwd_partials: bool = False
    #: chunk length (steps) of the state-loop backward (:func:`kernels.triton_scan._scan_bwd_loop_kernel`:
    #: one channel per program, lanes along L, a loop over the N states); 0 = the tile backward.
    #: Env: AUDIOMAMBA_SCAN_BWD_LOOP=0|64|128|256|512.
    bwd_loop: int = 0
    #: compile the sequential forward without Triton's specialisation of unit L strides (u, Δ, z, y), so that
    #: its (SUB_L, BLOCK_D) tiles keep one channel per lane with the steps in registers. With the
    #: specialisation (L-contiguous tensors, the usual case) Triton lays the tiles out with L across lanes
    #: for coalesced loads, and every step then pays cross-lane shuffles to pick its row and to sum over
    #: the N states: sm_90 PTX (kernels/compile_check.py, 2026-12-03) has 336 shfl.sync in the 4-step inner
    #: loop with it, 0 without. Env: AUDIOMAMBA_SCAN_SEQ_LANES=1. Off: on an H200 (2026-12-03) it was 0.83-0.99x
    #: the specialised kernel (uncoalesced rows cost more than the shuffles).
    seq_lanes: bool = False
    #: the state-loop backward's reverse scan as Triton's ``associative_scan(reverse=True)``, which flips every
    #: input and output across lanes (the state before 2026-12-03 evening), instead of a forward scan over
    #: tiles loaded in reversed time order with only its result flipped back. sm_90 PTX (fp32, CHUNK 128, one
    #: warp, kernels/compile_check.py): 128 shuffles per state and chunk with the flips, 68 without.
    #: Env: AUDIOMAMBA_SCAN_BWD_FLIP=1.
    bwd_flip: bool = False
    #: the flip of the adjoint back to time order by one ``shfl.sync.bfly`` (lane mask 31) per register in
    #: inline PTX, where ``tl.flip`` takes five. Only right when the tile keeps CHUNK / 32 neighbouring steps per
    #: lane, so it applies only with one warp and the wrapper's ALIGN of at least 4; the CPU interpreter cannot run it.
    #: Env: AUDIOMAMBA_SCAN_BWD_LANE_ASM=1. Off: right on the GPU but 1.00x (0.99-1.00x at the benchmark shapes, fwd+bwd,
    #: one H100 2026-12-07 01:54 UTC), though its state loop has 16 of ~284 instructions fewer.
    bwd_lane_asm: bool = False
    #: promise the sequential forward and the state-loop backward the largest of 8, 4, 2 that divides L and the
    #: rows' strides (``ALIGN``), so that Triton keeps neighbouring steps in one lane when L is no multiple of 16
    #: (sm_90 PTX at L = 1000: backward 156 -> 68 shuffles per state and chunk, bf16 forward 1536 -> 52).
    #: Env: AUDIOMAMBA_SCAN_ALIGN=0 (off, for side-by-side timing).
    align: bool = True
    #: steps per (SUB_L, BLOCK_D) tile of u/Δ/z/y in the sequential forward (0 = by input dtype,
    #: :data:`SEQ_TILE_AUTO`). Env: AUDIOMAMBA_SCAN_SEQ_SUB_L=2|4|8|16.
    seq_sub_l: int = 0
    #: software-pipelining stages of the state-loop backward's loop over the N states (``tl.range(num_stages=)``:
    #: the next states' B, C, A and saved-state loads go out by ``cp.async`` while this state scans; 1 = none).
    #: sm_90 PTX (fp32, CHUNK 128): 40 cp.async, registers 168 -> 153. Env: AUDIOMAMBA_SCAN_BWD_STAGES=1|2|3.
    bwd_stages: int = 1
    #: the same for the sequential forward's loop over its (SUB_L, BLOCK_D) tiles. Env: AUDIOMAMBA_SCAN_FWD_STAGES.
    fwd_stages: int = 1
    #: states per iteration of the state-loop backward's loop over the N states (``tl.range(loop_unroll_factor=)``): two
    #: independent scan chains in one block for the scheduler to interleave, against the latency stalls that leave the
    #: loop at about 43 % of its issue rate (sm_90 SASS, fp32, CHUNK 128: 284 instructions per state, 563 per pair).
    #: Env: AUDIOMAMBA_SCAN_BWD_UNROLL_N=1|2. 1 until an H200 sweep says otherwise.
    bwd_unroll_n: int = 1
    #: where Δ and A are LTI (one decay a for every step), the state-loop backward's two scans per state in closed form
    #: (:func:`kernels.triton_scan._closed_scans`: one cumulative sum per component of b_t / a^t, then times a^t) instead
    #: of associative scans of (a, b) pairs, while -Re(Δ A) · CHUNK / 2 <= 30 (per state, checked in the kernel).
    #: 25 % fewer SASS instructions and 55 % fewer shuffles per state and chunk (complex A, CHUNK 256), yet on an H200
    #: (2026-12-04 18:08 UTC, complex LTI fwd+bwd) 1.00x in fp32 and 0.93-0.95x in bf16 against the pair scans: the loop
    #: is bound by latency, not by its instruction count. Off. Env: AUDIOMAMBA_SCAN_BWD_CLOSED=1.
    bwd_closed: bool = False
    #: register cap per thread of the state-loop backward (Triton's ``maxnreg``; 0 = none: 245 registers for complex A,
    #: 8 one-warp programs per SM). H200, 2026-12-04 18:21 UTC, complex LTI (16, 128, 16, 16384) fp32 fwd+bwd: 128
    #: (104 B of spills) 0.91x, 168 (64 B) 0.79x. Real A (168 registers uncapped, 12 one-warp programs per SM): 96
    #: 0.87-1.01x (one H100, 2026-12-05 12:41 UTC); 128 (16 B of spills, 16 programs per SM) 1.00-1.04x and 136 (none,
    #: 15 per SM) 0.85-1.05x (one H200, 2026-12-06 21:48 UTC).
    #: -1 = by the inputs (:func:`bwd_maxnreg`): 128 for real A with 16-bit inputs (one H100, 2026-12-07 04:40 UTC,
    #: `python -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_MAXNREG default,128 --backward --selective`: bf16
    #: 1.01-1.03x at every selective shape, fp32 0.99-1.01x), none otherwise.
    #: Env: AUDIOMAMBA_SCAN_BWD_MAXNREG=0|96|128|136|168.
    bwd_maxnreg: int = -1
    #: backward pass 1 (the adjoint entering each segment) for real A as one sum per state, not a scan per state
    #: (:func:`kernels.triton_scan._scan_bwd_local_sum_kernel`), with this many warps per program; 0 = the scan form;
    #: -1 = by the inputs' dtype where N <= 16 (:func:`local_sum_warps`). One H100, 2026-12-07 01:53 UTC, fwd+bwd at
    #: (8, 128, 16, 131072), the only benchmark shape with a pass 1 (2 segments): 2 warps 1.18x (fp32) / 1.24x (bf16), 4
    #: warps 1.16x / 1.27x against the scan form (bf16 18.15 -> 14.33 ms, now below fp32's 15.40).
    #: Env: AUDIOMAMBA_SCAN_BWD_LOCAL_SUM=0|1|2|4|8.
    bwd_local_sum: int = -1
    #: softplus and the silu gate of the sequential forward with the MUFU log2 and the approximate division on a GPU
    #: (:func:`kernels.triton_helpers.softplus_fast`, :func:`kernels.triton_helpers.silu_gate`), where tl.log2 compiles
    #: to a polynomial and tl.sigmoid to the full-range division (sm_90 SASS at the (16, 512, 16, 1024) bf16 row: 3494
    #: -> 2838 instructions per 16 steps with the unmasked B/C loads of ``EVEN``). One H100, 2026-12-07 08:57 UTC,
    #: `python -m audiomamba.bench.scan_env_sweep combos "default;AUDIOMAMBA_SCAN_FAST_GATES=1;..." --selective`
    #: (forward): fp32 1.14-1.17x, bf16 1.03-1.05x at every selective shape; with it the replayed table against
    #: mamba_ssm had every row >= 1.0 (that row 0.150 against 0.156 ms). The interpreter has no fast log2 / division:
    #: there it is off. Env: AUDIOMAMBA_SCAN_FAST_GATES=0|1.
    fast_gates: bool = True
    #: the sequential forward's B/C loads without predicates or zero fill where N = BLOCK_N and its tile length divides
    #: L (the kernel's ``EVEN``). One H100, 2026-12-07 11:20 UTC, side by side with the fast gates on (`python -m
    #: audiomamba.bench.scan_env_sweep combos "default;...;AUDIOMAMBA_SCAN_SEQ_EVEN=0;..." --selective`): off loses
    #: 3-4 % in fp32 and 5 % in bf16 at every selective shape (both it and the fast gates off: 1.01-1.03x in fp32 only,
    #: 0.88-0.90x in bf16). Env: AUDIOMAMBA_SCAN_SEQ_EVEN=0|1.
    seq_even: bool = True
    #: fully LTI calls (Δ, B and C per channel: mamba-s4 / mamba-s4-real) by chunks of this many steps on tensor cores
    #: (:mod:`kernels.triton_lti_chunk`: per chunk a Toeplitz product and two state products, a scan over chunks
    #: instead of over steps); 0 = the scan kernels. :func:`pick_config` sets :data:`LTI_CHUNK` (32, measured);
    #: a ScanConfig made by hand keeps the scan kernels. Env: AUDIOMAMBA_SCAN_LTI_CHUNK=0|16|32|64.
    lti_chunk: int = 0
    #: chunks per block of the chunked LTI path (the matmuls' M). Env: AUDIOMAMBA_SCAN_LTI_ROWS=16|32|64.
    lti_rows: int = 16
    #: warps per program of the chunked LTI forward and backward; 0 = by the inputs' dtype (:func:`lti_warps`): 2 for
    #: 16-bit inputs, 4 for float32. One H200, 2026-12-05 04:29 UTC, chunks of 32, complex LTI, against 4 warps:
    #: forward with 2, bf16 1.06x / 1.54x, fp32 1.07x / 0.95x at (16, 128, 16, 16384) / (8, 128, 16, 131072);
    #: fwd+bwd with a 2-warp backward, bf16 0.95x / 1.39x, fp32 1.00x / 0.97x; with an 8-warp one 0.56-0.94x (at
    #: L = 16384 the eager call is bound by launching the operators' builder, so its row is noise).
    #: Env: AUDIOMAMBA_SCAN_LTI_WARPS, AUDIOMAMBA_SCAN_LTI_WARPS_BWD = 1|2|4|8.
    lti_warps: int = 0
    lti_warps_bwd: int = 0
    #: register cap per thread of the chunked LTI kernels (Triton's ``maxnreg``; 0 = none). sm_90, complex A, chunks of
    #: 64, 2026-12-05: uncapped the backward takes 255 registers at 8 warps (one program per SM); at 128 (two per SM) it
    #: spills 800 B (tf32) / 1900 B (tf32x3), at 168 464 / 1228 B; the forward at 168 spills 24 / 136 B (3 programs per
    #: SM instead of 2 for float32 inputs). Env: AUDIOMAMBA_SCAN_LTI_MAXNREG=0|128|168.
    lti_maxnreg: int = 0

    def __str__(self) -> str:
        s = f"{self.block_l},{self.block_d_fwd},{self.block_d_bwd},{self.warps_fwd},{self.warps_bwd}"
        if self.seg_l or self.seq_fwd:
            s += f",{self.seg_l}"
        return s + (",seq" if self.seq_fwd else "") + (f",loop{self.bwd_loop}" if self.bwd_loop else "")


def _pow2(x: int) -> bool:
    return x > 0 and x & (x - 1) == 0


def parse_config(text: str) -> ScanConfig:
    """Parse "BLOCK_L,BLOCK_D_FWD,BLOCK_D_BWD,WARPS_FWD,WARPS_BWD[,SEG_L]" into a :class:`ScanConfig`."""
    parts = text.split(",")
    loop = 0
    if parts[-1].strip().startswith("loop"):
        tail = parts.pop().strip()[4:]
        loop = int(tail) if tail.isdigit() and _pow2(int(tail)) else -1
    seq = parts[-1].strip() == "seq"
    if seq:
        parts = parts[:-1]
    try:
        vals = [int(v) for v in parts]
    except ValueError:
        vals = []
    if len(vals) == 6 and vals[5] == 0:
        vals = vals[:5]
    if (len(vals) not in (5, 6) or not all(_pow2(v) for v in vals) or (len(vals) == 6 and vals[5] < vals[0])
            or loop < 0):
        raise KernelError(
            f"bad scan config {text!r} in AUDIOMAMBA_SCAN_CONFIG: give 5 or 6 powers of two "
            "BLOCK_L,BLOCK_D_FWD,BLOCK_D_BWD,WARPS_FWD,WARPS_BWD[,SEG_L >= BLOCK_L][,seq][,loopCHUNK] "
            "such as 64,4,2,4,4,2048 or 32,32,1,1,1,256,seq,loop128"
        )
    cfg = ScanConfig(*vals)
    return ScanConfig(*vals[:5], cfg.seg_l, seq, bwd_loop=loop)


def pick_config(batch: int, d: int, N: int, L: int, is_complex: bool) -> ScanConfig:
    """Heuristic launch config (checked with ptxas for sm_90 at N = 16: no register spills; timed on
    an H100, see ``bench/kernel.py``).

    N <= 16: the sequential forward (one lane per channel, 32 channels and 1 warp per program, L cut
    into segments so that there are enough programs) and a 1-warp state-loop backward with its own segment
    count (only when batch · d programs are too few), over chunks of 128 steps for real A and 256 for complex A. Larger N (S4-style blocks):
    the chunk-scan kernels over (BLOCK_D, BLOCK_L, N) tiles of ~1024 elements with 4-8 warps.
    """
    env = _env_values()
    key = (batch, d, N, L, is_complex, env)
    cfg = _PICKED.get(key)
    if cfg is None:  # a scan call's Python time counts at short L (kernels/launch.py): pick once per shape
        if len(_PICKED) > 4096:
            _PICKED.clear()
        cfg = _PICKED[key] = _pick_with_env(batch, d, N, L, is_complex)
    return cfg


#: the environment's overrides of single fields: (variable, ScanConfig field, allowed values, what to give)
_ENV_KNOBS = (
    ("AUDIOMAMBA_SCAN_UNROLL", "unroll", (1, 2, 4, 8, 16), "1, 2, 4, 8 or 16 (steps unrolled per loop iteration)"),
    ("AUDIOMAMBA_SCAN_BWD_PARTIALS", "bwd_partials", (0, 1), "0 or 1 (1: selective dB/dC per channel block, no atomics)"),
    ("AUDIOMAMBA_SCAN_BWD_LOOP", "bwd_loop", (0, 64, 128, 256, 512),
     "0, 64, 128, 256 or 512 (chunk of the state-loop backward; 0 = the tile backward)"),
    ("AUDIOMAMBA_SCAN_SEQ_LANES", "seq_lanes", (0, 1),
     "0 or 1 (1: the sequential forward compiled without unit-L-stride specialisation)"),
    ("AUDIOMAMBA_SCAN_SEQ_SUB_L", "seq_sub_l", (2, 4, 8, 16), "2, 4, 8 or 16 (steps per tile of the sequential forward)"),
    ("AUDIOMAMBA_SCAN_BWD_FLIP", "bwd_flip", (0, 1),
     "0 or 1 (1: the state-loop backward's reverse scan with Triton's lane flips)"),
    ("AUDIOMAMBA_SCAN_ALIGN", "align", (0, 1), "0 or 1 (0: no ALIGN promise to the scan kernels)"),
    ("AUDIOMAMBA_SCAN_BWD_LANE_ASM", "bwd_lane_asm", (0, 1),
     "0 or 1 (1: the state-loop backward flips the adjoint with one inline shuffle per register)"),
    ("AUDIOMAMBA_SCAN_BWD_STAGES", "bwd_stages", (1, 2, 3),
     "1, 2 or 3 (software-pipelining stages of the state-loop backward's state loop)"),
    ("AUDIOMAMBA_SCAN_FWD_STAGES", "fwd_stages", (1, 2, 3),
     "1, 2 or 3 (software-pipelining stages of the sequential forward's tile loop)"),
    ("AUDIOMAMBA_SCAN_BWD_UNROLL_N", "bwd_unroll_n", (1, 2),
     "1 or 2 (states per iteration of the state-loop backward's loop over the states)"),
    ("AUDIOMAMBA_SCAN_BWD_MAXNREG", "bwd_maxnreg", (0, 96, 128, 136, 168),
     "0, 96, 128, 136 or 168 (register cap per thread of the state-loop backward; 0 = none)"),
    ("AUDIOMAMBA_SCAN_BWD_LOCAL_SUM", "bwd_local_sum", (0, 1, 2, 4, 8),
     "0, 1, 2, 4 or 8 (the backward's pass 1 for real A as a sum per state with this many warps; 0 = a scan)"),
    ("AUDIOMAMBA_SCAN_SEQ_EVEN", "seq_even", (0, 1),
     "0 or 1 (0: the sequential forward's B/C loads keep their predicates where every tile is full)"),
    ("AUDIOMAMBA_SCAN_FAST_GATES", "fast_gates", (0, 1),
     "0 or 1 (1: the sequential forward's softplus and silu gate with the fast log2 and division)"),
    ("AUDIOMAMBA_SCAN_BWD_CLOSED", "bwd_closed", (0, 1),
     "0 or 1 (1: the state-loop backward's LTI scans in closed form, not as associative scans)"),
    ("AUDIOMAMBA_SCAN_SEG_L", "seg_l", (0, *(1 << k for k in range(6, 18))),
     "0 or a power of two from 64 to 131072 (segment length of the forward; 0 = one segment)"),
    ("AUDIOMAMBA_SCAN_BWD_SEG_L", "seg_l_bwd", (0, *(1 << k for k in range(9, 18))),
     "0 or a power of two from 512 to 131072 (segment length of the backward; 0 = one segment)"),
    ("AUDIOMAMBA_SCAN_LTI_CHUNK", "lti_chunk", (0, 16, 32, 64),
     "0, 16, 32 or 64 (steps per chunk of the fully-LTI path on tensor cores; 0 = the scan kernels; 128 needs more "
     "shared memory than an H200 has)"),
    ("AUDIOMAMBA_SCAN_LTI_ROWS", "lti_rows", (16, 32, 64), "16, 32 or 64 (chunks per block of the fully-LTI path)"),
    ("AUDIOMAMBA_SCAN_LTI_WARPS", "lti_warps", (1, 2, 4, 8), "1, 2, 4 or 8 (warps per program of the fully-LTI forward)"),
    ("AUDIOMAMBA_SCAN_LTI_WARPS_BWD", "lti_warps_bwd", (1, 2, 4, 8),
     "1, 2, 4 or 8 (warps per program of the fully-LTI backward)"),
    ("AUDIOMAMBA_SCAN_LTI_MAXNREG", "lti_maxnreg", (0, 128, 168),
     "0, 128 or 168 (register cap per thread of the fully-LTI kernels; 0 = none)"),
)
#: every environment variable that :func:`pick_config` reads (part of its cache key)
_ENV_NAMES = ("AUDIOMAMBA_SCAN_CONFIG", *(knob[0] for knob in _ENV_KNOBS))
# os.environ's own mapping, keyed as it stores them: 12 lookups through os.environ.get cost 13 µs per scan call on a
# 2-core CPU (encoding every key and value), through the mapping under it 0.8 µs; the values stay encoded, which is
# all a cache key needs. Setting os.environ updates this mapping, so the key follows the environment.
_ENV_DATA = getattr(os.environ, "_data", None)
_ENV_KEYS = tuple(os.environ.encodekey(name) for name in _ENV_NAMES) if _ENV_DATA is not None else ()


def _env_values() -> tuple:
    """The values of :data:`_ENV_NAMES` in the environment (encoded where the platform encodes them)."""
    if _ENV_KEYS:
        get = _ENV_DATA.get
        return tuple([get(key) for key in _ENV_KEYS])
    return tuple(os.environ.get(name) for name in _ENV_NAMES)


_PICKED: dict[tuple, ScanConfig] = {}


def env_overrides() -> str:
    """The tuning variables set in the environment, as "NAME=value" joined by ", " ("" when none): for report headers,
    so that a benchmark's file says which kernels it timed."""
    return ", ".join(f"{name}={os.environ[name].strip()}" for name in _ENV_NAMES if os.environ.get(name, "").strip())


def local_sum_warps(cfg: ScanConfig, dtype, N: int) -> int:
    """Warps of the backward's pass 1 as a sum (0: the scan form): ``cfg.bwd_local_sum``, or where -1, 4 for 16-bit
    inputs and 2 for float32 (measured: :class:`ScanConfig`'s ``bwd_local_sum``) at N <= 16, the scan form above
    (its (N, 128) accumulator was timed at N = 16 only)."""
    if cfg.bwd_local_sum >= 0:
        return cfg.bwd_local_sum
    if N > 16:
        return 0
    return 4 if dtype.itemsize < 4 else 2


def bwd_maxnreg(cfg: ScanConfig, dtype, is_complex: bool) -> int:
    """Register cap of the state-loop backward (0: none): ``cfg.bwd_maxnreg``, or where -1, 128 for real A with 16-bit
    inputs (measured: :class:`ScanConfig`'s ``bwd_maxnreg``); complex A (245 registers uncapped) lost with 128 (0.91x)."""
    if cfg.bwd_maxnreg >= 0:
        return cfg.bwd_maxnreg
    return 128 if not is_complex and dtype.itemsize < 4 else 0


def pick_seg_l_bwd(batch: int, d: int, L: int, block_l: int, block_d: int, is_complex: bool) -> int:
    """The backward's segment length where ``seg_l_bwd`` is -1: :func:`pick_seg_l`'s, at most :data:`BWD_SEG_MAX` for
    real A where it cuts L at all (more segments: a longer pass 1, which the sum form makes cheap, for a second wave
    of state-loop programs that is no longer a tail)."""
    seg = pick_seg_l(batch, d, L, block_l, block_d)
    return min(seg, BWD_SEG_MAX) if seg and not is_complex else seg


def lti_warps(cfg: ScanConfig, dtype, backward: bool) -> int:
    """Warps per program of the chunked LTI forward or backward: ``cfg``'s, or where 0 by the inputs' dtype (2 for
    16-bit inputs, 4 for float32: measured, :class:`ScanConfig`'s ``lti_warps``)."""
    warps = cfg.lti_warps_bwd if backward else cfg.lti_warps
    return warps or (4 if dtype.itemsize >= 4 else 2)


#: the chunked LTI path's chunk by default (fully-LTI calls only; explicit ScanConfigs keep the scan
#: kernels unless they set ``lti_chunk``). One H200, 2026-12-05 02:37-02:44 UTC (BENCHMARKS.md, "The fully-LTI scan by
#: chunks"): complex-LTI fwd+bwd against the scan kernels, chunks of 32 with 4 backward warps (2 for 16-bit inputs
#: since 04:29 UTC: :func:`lti_warps`), 1.56x / 2.03x (fp32) and
#: 1.79x / 2.76x (bf16) at (16, 128, 16, 16384) / (8, 128, 16, 131072); forward 1.54-2.67x; the all-mamba-s4 U-Net's
#: training step 1.18x (sc09-small) and 1.52x (youtubemix) eager, 1.28x and 2.19x compiled.
LTI_CHUNK = 32


def _pick_with_env(batch: int, d: int, N: int, L: int, is_complex: bool) -> ScanConfig:
    cfg = replace(_pick_config(batch, d, N, L, is_complex), lti_chunk=LTI_CHUNK)
    over = {}
    for name, field, allowed, what in _ENV_KNOBS:
        value = _env_choice(name, allowed, what)
        if value is not None:
            over[field] = type(getattr(cfg, field))(value)  # bool fields take 0 / 1 as False / True
    return replace(cfg, **over)


def _env_choice(name: str, allowed, what: str) -> int | None:
    """The integer in environment variable ``name`` (None when unset); a KernelError unless in ``allowed``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) not in allowed:
        raise KernelError(f"bad {name}={text!r}: give {what}")
    return int(text)


def _pick_config(batch: int, d: int, N: int, L: int, is_complex: bool) -> ScanConfig:
    env = os.environ.get("AUDIOMAMBA_SCAN_CONFIG", "").strip()
    if env:
        return parse_config(env)
    n_pad = max(2, 1 << (max(N, 1) - 1).bit_length())
    l_pad = max(16, 1 << (max(L, 1) - 1).bit_length())
    if n_pad <= 16:
        block_l = min(32, l_pad)
        seg = pick_seg_l(batch, d, L, block_l, SEQ_LANES, SEQ_TARGET_PROGRAMS if L > SEQ_SHORT_L else SEQ_TARGET_SHORT)
        # the state-loop backward: real A over chunks of 128 steps (1.15-1.82x the tile backward's fwd+bwd on every
        # selective benchmark shape, H200), complex A over 256 (1.28-1.47x the tile backward, H200 2026-12-04)
        return ScanConfig(block_l, SEQ_LANES, 1, 1, 1, seg, True,
                          bwd_loop=BWD_LOOP_CHUNK_COMPLEX if is_complex else BWD_LOOP_CHUNK)
    block_l = max(16, min(64, 1024 // n_pad, l_pad))
    tile = n_pad * block_l
    fwd_d = max(1, (1024 if is_complex else 2048) // tile)
    bwd_d = max(1, 1024 // tile)
    while fwd_d > 1 and batch * -(-d // fwd_d) < 264:
        fwd_d //= 2
    while bwd_d > 1 and batch * -(-d // bwd_d) < 264:
        bwd_d //= 2
    warps = 8 if tile >= 1024 else 4
    return ScanConfig(block_l, fwd_d, bwd_d, warps, warps, pick_seg_l(batch, d, L, block_l, fwd_d))


#: the sequential forward's (steps per tile, steps unrolled) by input element size in bytes, where ScanConfig
#: leaves them at 0. One H200, 2026-12-03 18:21 UTC, selective real A, forward alone, each sweep in one process
#: (`python -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_SEQ_SUB_L 8,4,16 --quick`, then the unroll at 16):
#: float32 at (4, 4) 1.45x / 1.56x the old (8, 4) at (16, 128, 16, 16384) / (16, 256, 16, 4000); bfloat16 at
#: (16, 8) 1.32x / 1.32x, where (4, 4) was 0.89x. Complex A keeps (8, 4) (not measured).
SEQ_TILE_AUTO = {4: (4, 4), 2: (16, 8)}
SEQ_TILE_COMPLEX = (8, 4)
#: chunk of the state-loop backward by default (128 beat 64 and 256 on every selective shape, H200 2026-12-02)
BWD_LOOP_CHUNK = 128
#: ... and for complex A: 256 steps, 8 per lane (one H200, 2026-12-04 00:31 and 00:39 UTC, `python -m
#: audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_CONFIG "0;32,32,1,1,1,256,seq,loop256;..." --backward --complex`,
#: complex LTI fwd+bwd against the tile backward: 1.38x / 1.47x (fp32 / bf16) at (16, 128, 16, 16384), 1.28x / 1.39x at
#: (8, 128, 16, 131072); chunk 128 gave 1.22x / 1.24x; 2 or 4 warps per chunk of 256 or 512 were 0.44-0.65x)
BWD_LOOP_CHUNK_COMPLEX = 256
#: channels (lanes) per program of the sequential forward, and the programs it aims at
SEQ_LANES = 32
SEQ_TARGET_PROGRAMS = 4096
#: ... and at L <= SEQ_SHORT_L, where each extra segment's local pass and carry weigh more: at (8, 2048, 16, 2048)
#: segments of 512 (2048 programs) against 256 (4096) were 1.03x / 1.06x (fp32 / bf16) on one H200 (2026-12-05 04:20
#: UTC) and twice on one H100 (2026-12-07 01:54 and 01:55 UTC, `python -m audiomamba.bench.scan_env_sweep
#: AUDIOMAMBA_SCAN_SEG_L default,64,128,512 --selective`); the other benchmark and U-Net shapes pick the same segments
#: with either target, and at L >= 16384 fewer programs lost (segments of 512 at (16, 128, 16, 16384) 0.99-1.01x, 2048
#: at (8, 128, 16, 131072) 0.97-1.00x).
SEQ_TARGET_SHORT = 2048
SEQ_SHORT_L = 4096
#: programs the chunk-parallel scan aims at (H100: 132 SMs; several resident programs each)
TARGET_PROGRAMS = 2048
#: shortest segment, in chunks (shorter ones make the local and carry passes dominate)
MIN_SEG_CHUNKS = 8
#: the backward's longest segment for real A where L is cut at all (:func:`pick_seg_l_bwd`). One H100, 2026-12-07
#: 04:39 UTC (`python -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_SEG_L default,32768,16384 --backward
#: --selective`): at (8, 128, 16, 131072), the only benchmark shape whose backward is cut (2 segments of 65536 picked),
#: 16384 (8 segments) 1.04x fp32 / 1.05x bf16 fwd+bwd, 32768 1.03x / 1.05x; every other shape keeps one segment.
BWD_SEG_MAX = 16384


def pick_seg_l(batch: int, d: int, L: int, block_l: int, block_d: int, target: int = TARGET_PROGRAMS) -> int:
    """Segment length so that batch · d-blocks · segments reaches ``target`` programs
    (0 = a single segment when the channel blocks alone already fill the GPU or L is short)."""
    base = batch * -(-d // block_d)
    want = -(-target // base)
    if want <= 1:
        return 0
    per = -(-L // want)
    seg = max(MIN_SEG_CHUNKS * block_l, 1 << (per - 1).bit_length())
    return 0 if seg >= L else seg
