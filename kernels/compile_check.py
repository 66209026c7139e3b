"""Compile the Triton kernels (scan, step, generation) for a GPU target without a GPU; report registers and spills.

The CPU interpreter (``TRITON_INTERPRET=1``) runs the kernels' arithmetic but not Triton's
compiler, so type errors of the compiled path (e.g. a loop-carried variable changing shape) and
register spills only show up on a GPU. This tool runs the real compiler pipeline down to PTX for
an NVIDIA target (default sm_90, H100) and, when Triton's bundled ``ptxas`` is present, to SASS
register counts::

    python -m audiomamba.kernels.compile_check            # every variant the ops can launch
    python -m audiomamba.kernels.compile_check --quick    # a few representative ones

It must run in a process where ``TRITON_INTERPRET`` is unset (it refuses otherwise).
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    """One compile-time specialisation of a kernel."""

    # "fwd", "seq" (sequential forward; "seqlanes": without unit-L-stride specialisation), "bwd", "bwdloop"
    # (state-loop backward), "bwdloc", "bwdlocsum" (pass 1 as a sum), "carry", "finish" (the backward's sums),
    # "step", or a generation kernel
    kernel: str
    consts: tuple[tuple[str, object], ...]
    num_warps: int

    def label(self) -> str:
        flags = [k for k, v in self.consts if v is True]
        blocks = [f"{k}={v}" for k, v in self.consts
                  if k.startswith("BLOCK") or k in ("SUB_L", "UNROLL", "CHUNK", "ALIGN", "STAGES", "UNROLL_N", "T", "ROWS", "PREC",
                                                    "CL")]
        flags += [f"{k}=False" for k, v in self.consts if k == "REV_LOADS" and v is False]
        flags += [f"{k}={v}" for k, v in self.consts if k == "PROFILE" and v not in (True, False)]  # 2: with marks
        flags += [f"{k}={v}" for k, v in self.consts if k == "XCHG" and v]  # bytes of distributed shared memory
        flags += [f"{k}={v}" for k, v in self.consts if k == "LN"]  # the run's LayerNorm: 0 two passes, 1 one
        flags += [f"{k}={v}" for k, v in self.consts if k == "MBAR"]  # the barriers through mbarriers (2: fenced)
        return f"{self.kernel} warps={self.num_warps} " + " ".join(blocks + flags)


def variants(quick: bool, block_l: int = 32, fwd_d: int = 1, bwd_d: int = 1, warps: int = 1,
             seq_d: int = 32, loop_chunk: int = 128) -> list[Variant]:
    """The specialisations to compile: all flag combinations the ops can produce, or a few."""
    from .triton_scan import LOCAL_SUM_TILE
    from .tuning import SEQ_TILE_AUTO, SEQ_TILE_COMPLEX

    out = []
    flag_sets = [(True, True, True, True), (False, False, False, False)]
    lti_sets = [(False, False, False), (True, True, True), (False, True, True), (True, False, False)]
    for cplx in (False, True):
        bc_sets = [(True, True), (False, False)] if cplx else [(False, False)]
        for bc, cc in bc_sets:
            for dt_lti, b_lti, c_lti in lti_sets:
                for hd, hz, hb, sp in flag_sets:
                    if quick and not (hd and (dt_lti == b_lti == c_lti == cplx) and bc == cplx):
                        continue
                    base = dict(IS_COMPLEX=cplx, B_COMPLEX=bc, C_COMPLEX=cc, B_LTI=b_lti, C_LTI=c_lti,
                                DT_LTI=dt_lti, HAS_D=hd, HAS_Z=hz, HAS_BIAS=hb, SOFTPLUS=sp,
                                R=2 if cplx else 1, BLOCK_N=16, BLOCK_L=block_l)
                    # the full passes with a carried-in start state (chunk-parallel segments) and the
                    # local passes; the one-segment variants differ from these by a load only
                    fwd = dict(base, SAVE_STATES=True, LOCAL=False, HAS_INIT=True, BLOCK_D=fwd_d)
                    fwd_loc = dict(base, SAVE_STATES=False, LOCAL=True, HAS_INIT=False, BLOCK_D=fwd_d)
                    bwd = dict(base, RB=2 if bc else 1, RC=2 if cc else 1, FAC=2.0 if cplx else 1.0,
                               HAS_INIT=True, BLOCK_D=bwd_d)
                    bwd_loc = {k: bwd[k] for k in ("IS_COMPLEX", "C_COMPLEX", "C_LTI", "DT_LTI", "HAS_Z",
                                                   "HAS_BIAS", "SOFTPLUS", "R", "FAC", "BLOCK_D", "BLOCK_N",
                                                   "BLOCK_L")}
                    out.append(Variant("fwd", tuple(fwd.items()), warps))
                    out.append(Variant("fwd", tuple(fwd_loc.items()), warps))
                    seq_w = max(1, seq_d // 32)
                    # the default tiles (by input dtype, tuning.SEQ_TILE_AUTO / SEQ_TILE_COMPLEX), and the kernel
                    # without the unit-L-stride specialisation (AUDIOMAMBA_SCAN_SEQ_LANES=1) at the old (8, 4)
                    tiles = [SEQ_TILE_COMPLEX] if cplx else sorted(set(SEQ_TILE_AUTO.values()))
                    for kind, (sub_l, unroll) in [("seq", t) for t in tiles] + [("seqlanes", (8, 4))]:
                        for pas in (fwd, fwd_loc):
                            out.append(Variant(kind, tuple(dict(pas, BLOCK_D=seq_d, SUB_L=sub_l, UNROLL=unroll).items()),
                                               seq_w))
                        if kind == "seq":  # the ALIGN promise of an L that is no multiple of 16 (e.g. 1000)
                            out.append(Variant(kind, tuple(dict(fwd, BLOCK_D=seq_d, SUB_L=sub_l, UNROLL=unroll,
                                                                ALIGN=8).items()), seq_w))
                        if kind == "seq" and not cplx:  # unmasked B/C loads and the fast gates, as on a GPU
                            for pas in (fwd, fwd_loc):
                                out.append(Variant(kind, tuple(dict(pas, BLOCK_D=seq_d, SUB_L=sub_l, UNROLL=unroll,
                                                                    EVEN=True, FAST=True).items()), seq_w))
                    out.append(Variant("bwd", tuple(bwd.items()), warps))
                    loop = {k: v for k, v in bwd.items() if k != "BLOCK_D"} | {"CHUNK": loop_chunk}
                    out.append(Variant("bwdloop", tuple(loop.items()), warps))
                    # the reverse scan as Triton's flipped one (AUDIOMAMBA_SCAN_BWD_FLIP=1), and the ALIGN promise of an
                    # L that is no multiple of 16 with the inline-PTX lane flip (AUDIOMAMBA_SCAN_BWD_LANE_ASM=1)
                    out.append(Variant("bwdloop", tuple((loop | {"REV_LOADS": False}).items()), warps))
                    # the state loop software-pipelined (AUDIOMAMBA_SCAN_BWD_STAGES=2): its loads go out by cp.async
                    out.append(Variant("bwdloop", tuple((loop | {"STAGES": 2}).items()), warps))
                    # two states per iteration of the state loop (AUDIOMAMBA_SCAN_BWD_UNROLL_N=2)
                    out.append(Variant("bwdloop", tuple((loop | {"UNROLL_N": 2}).items()), warps))
                    if dt_lti:  # the closed-form LTI scans, as the wrapper launches them on a GPU (ScanConfig.bwd_closed)
                        out.append(Variant("bwdloop", tuple((loop | {"CLOSED": True, "FAST_TRIG": True}).items()), warps))
                    if warps == 1 and loop_chunk in (64, 128):
                        out.append(Variant("bwdloop", tuple((loop | {"ALIGN": 4, "LANE_ASM": True}).items()), warps))
                    out.append(Variant("bwdloc", tuple(bwd_loc.items()), warps))
                    if not cplx and not cc:  # pass 1 as a sum per state (AUDIOMAMBA_SCAN_BWD_LOCAL_SUM=2 or 4)
                        loc_sum = {k: bwd[k] for k in ("C_LTI", "DT_LTI", "HAS_Z", "HAS_BIAS", "SOFTPLUS", "BLOCK_N",
                                                       "BLOCK_L")} | {"CL": LOCAL_SUM_TILE}
                        for w in (2, 4):
                            out.append(Variant("bwdlocsum", tuple(loc_sum.items()), w))
    for bias in (True, False):
        conv = dict(K=4, HAS_BIAS=bias, BLOCK_L=64, BLOCK_E=32)
        out.append(Variant("conv_fwd", tuple(conv.items()), 4))
        out.append(Variant("conv_bwd", tuple(dict(conv, BLOCK_L=16).items()), 4))
        out.append(Variant("conv_dpre", tuple(dict(conv, KP=4, BLOCK_L=16).items()), 4))
    out.append(Variant("conv_dx", (("K", 4), ("BLOCK_L", 64), ("BLOCK_E", 32)), 4))
    for cplx in (False, True):
        step = dict(IS_COMPLEX=cplx, B_COMPLEX=cplx, C_COMPLEX=cplx, HAS_D=True, HAS_Z=True, HAS_BIAS=not cplx,
                    SOFTPLUS=not cplx, BLOCK_D=16, BLOCK_N=16)
        out.append(Variant("step", tuple(step.items()), 4))
        carry = dict(IS_COMPLEX=cplx, REVERSE=cplx, R=2 if cplx else 1, BLOCK_D=16, BLOCK_N=16)
        out.append(Variant("carry", tuple(carry.items()), 4))
    # the fully-LTI path by chunks on tensor cores (ScanConfig.lti_chunk): chunks of 32 steps (the default), 16 per block, float32
    # (tf32x3) and 16-bit (tf32) inputs; all chunk lengths and blocks of 32 without --quick
    for cplx in (True, False):
        for T, rows in ((32, 16),) if quick else ((16, 16), (32, 16), (64, 16), (64, 32)):
            for prec in ("tf32x3", "tf32"):
                lti = dict(T=T, ROWS=rows, NP=16, R=2 if cplx else 1, IS_COMPLEX=cplx, HAS_D=True, HAS_Z=True,
                           PREC=prec)
                out.append(Variant("ltifwd", tuple(dict(lti, SAVE_STATES=True).items()), 4))
                out.append(Variant("ltibwd", tuple(lti.items()), 4))
    # the backward's finishing launch: the parameter grads' sums over (batch, segment), all flags on and all off
    for on in (True, False):
        finish = dict(HAS_D=on, DT_LTI=on, HAS_BIAS=on, B_LTI=on, C_LTI=on, BLOCK=1024)
        out.append(Variant("finish", tuple(finish.items()), 4))
    # the generation kernels (fused mamba-s6 block step, LayerNorm+head, sampling) at the tiles the
    # wrapper launches for sc09-small's widths (H 64/128/256, d_inner 128/256/512): one stream and batched
    from .triton_mamba_step import TILES_BATCHED, TILES_STREAM, default_precision

    for small, t in ((True, TILES_STREAM), (False, TILES_BATCHED)):
        batched_prec = default_precision()  # the batched tiles' tl.dot precision, as the wrapper launches them
        common = dict(USE_DOT=not small, PREC="ieee" if small else batched_prec, BLOCK_B=1 if small else t["rows"])
        nr = 2 if small else 16
        for H in ((64,) if quick else (64, 128, 256)):
            E = 2 * H
            k = min(E, t["k"])
            in_conv = dict(common, K=4, BLOCK_H=min(H, t["in_h"]), BLOCK_E=t["in_e"], ONE_CHUNK=H <= t["in_h"])
            out.append(Variant("in_conv", tuple(in_conv.items()), 4))
            # sizes that are multiples of the tiles, as at sc09's widths: no masks (``EVEN``)
            out.append(Variant("in_conv", tuple(dict(in_conv, EVEN=True).items()), 4))
            if not small and H < 256:  # all H columns in one chunk (``in_h=H``: x loaded once), 4 and 8 warps
                one = dict(in_conv, BLOCK_H=H, ONE_CHUNK=True)
                out += [Variant("in_conv", tuple(dict(one, EVEN=e).items()), w) for w in (4, 8) for e in (False, True)]
            if small:  # with programmatic dependent launch (AUDIOMAMBA_PDL=1): the grid dependency ops compile
                out.append(Variant("in_conv", tuple(dict(in_conv, PDL=True, PRELOAD=True).items()), 4))
            ssm = dict(common, XPROJ_INLINE=small, BLOCK_E=t["ssm_e"], BLOCK_K=k, BLOCK_N=16, BLOCK_R=max(nr, 4))
            ssm_warps = 4 if small else t.get("ssm_warps", 4)  # as _kernel_launch launches it
            out.append(Variant("ssm", tuple(ssm.items()), ssm_warps))
            out.append(Variant("ssm", tuple(dict(ssm, EVEN=True).items()), ssm_warps))
            if not small:
                xproj = dict(common, BLOCK_K=k, BLOCK_N=16, BLOCK_R=16)
                out.append(Variant("xproj", tuple(xproj.items()), 4))
                out.append(Variant("xproj", tuple(dict(xproj, EVEN=True).items()), 4))
                for even in (False, True):  # one of its three outputs per program (``x_split=1``)
                    out.append(Variant("xproj", tuple(dict(xproj, SPLIT=True, EVEN=even).items()), 4))
            for cplx in (True, False):
                block_e = t["ssm_e"] // (2 if cplx and not small else 1)  # as mamba_lti_block_step launches it
                lti = dict(IS_COMPLEX=cplx, BLOCK_B=common["BLOCK_B"], BLOCK_E=block_e, BLOCK_N=16)
                out.append(Variant("ssm_lti", tuple(lti.items()), ssm_warps))
            out_proj = dict(common, HAS_RES=True, BLOCK_H=t["out_h"], BLOCK_K=min(E, t["out_k"]))
            out.append(Variant("out_proj", tuple(out_proj.items()), 4))
            out.append(Variant("out_proj", tuple(dict(out_proj, EVEN=True).items()), 4))
            if small:
                out.append(Variant("out_proj", tuple(dict(out_proj, PDL=True, PRELOAD=True).items()), 4))
            if small:  # a run of blocks in one launch (AUDIOMAMBA_STEP_RUNS): persistent (barriers) and split
                from .triton_mamba_run import run_block_e, run_warps

                run_e = run_block_e(E)  # as the runs launch at this width (8 channels at 128-255, else 16)
                run = dict(K=4, RES_REVERSED=True, BLOCK_B=1, BLOCK_H=H, BLOCK_E=run_e, BLOCK_N=16,
                           BLOCK_R=max(2, H // 16), BLOCK_P=E // run_e, PDL=True, BLOCK_PC=min(E // run_e, 8192 // H))
                for selective, cplx in ((True, False), (False, True), (False, False)):
                    for persistent in (True, False) if selective or not quick else (True,):
                        kind = dict(run, SELECTIVE=selective, IS_COMPLEX=cplx, PERSISTENT=persistent)
                        out.append(Variant("run", tuple(kind.items()), run_warps(H, selective)))
                    # persistent as one thread-block cluster, its programs meeting at the hardware barrier
                    out.append(Variant("run", tuple(dict(kind, PERSISTENT=True, CLUSTER=True).items()),
                                       run_warps(H, selective)))
                # with the in-kernel profile's clock reads (bench.run_profile), and with its marks inside a phase
                # (PROFILE=2: LTI and selective)
                out.append(Variant("run", tuple(dict(kind, PERSISTENT=True, CLUSTER=True, PROFILE=True).items()),
                                   run_warps(H)))
                for selective in (False, True):
                    marked = dict(kind, SELECTIVE=selective, PERSISTENT=True, CLUSTER=True, PROFILE=2)
                    out.append(Variant("run", tuple(marked.items()), run_warps(H, selective)))
                # the LayerNorm's two sums in one reduction (AUDIOMAMBA_STEP_RUN_LN=one-pass: LN=1) and in two passes
                # (two-pass: LN=0), selective and real LTI; the default is folded into in_proj (fold: LN=2)
                for ln in (1, 0):
                    for selective in (True, False):
                        one = dict(kind, SELECTIVE=selective, IS_COMPLEX=False, PERSISTENT=True, CLUSTER=True, LN=ln)
                        out.append(Variant("run", tuple(one.items()), run_warps(H, selective)))
                # the partials through distributed shared memory (AUDIOMAMBA_STEP_RUN_DSMEM=1)
                from .triton_mamba_run import run_exchange_bytes

                for selective, cplx in ((True, False), (False, True), (False, False)):
                    xchg = run_exchange_bytes(selective, 1, H, run["BLOCK_P"], run["BLOCK_R"], 16)
                    if xchg:
                        dsm = dict(kind, SELECTIVE=selective, IS_COMPLEX=cplx, PERSISTENT=True, CLUSTER=True,
                                   XCHG=xchg)
                        out.append(Variant("run", tuple(dsm.items()), run_warps(H, selective)))
                        # and the new states stored inside the barrier (AUDIOMAMBA_STEP_RUN_LATE=1)
                        out.append(Variant("run", tuple(dict(dsm, LATE=True).items()), run_warps(H, selective)))
                        # and the next phase's own reads issued inside it (AUDIOMAMBA_STEP_RUN_PIPE=1)
                        out.append(Variant("run", tuple(dict(dsm, LATE=True, PIPE=True).items()),
                                           run_warps(H, selective)))
                        if selective:  # (at 4 warps too: the reads carried across a phase take registers)
                            out.append(Variant("run", tuple(dict(dsm, LATE=True, PIPE=True).items()), 4))
                        # and the barriers through mbarriers (AUDIOMAMBA_STEP_RUN_MBAR=1, 2: with fences)
                        for mbar in (1, 2):
                            out.append(Variant("run", tuple(dict(dsm, LATE=True, MBAR=mbar).items()),
                                               run_warps(H, selective)))
        out.append(Variant("norm_linear", tuple(dict(common, HAS_BIAS=True, BLOCK_H=64, BLOCK_V=64).items()), 4))
        out.append(Variant("sample", tuple(dict(GREEDY=not small, MIN_P=False, BLOCK_B=4, BLOCK_V=256).items()), 4))
        if small:  # --min-p sampling
            out.append(Variant("sample", tuple(dict(GREEDY=False, MIN_P=True, BLOCK_B=4, BLOCK_V=256).items()), 4))
        # the head, the draw and the next input's embedding in one launch (as head_sample_step_triton launches it)
        from .triton_sample import HEAD_BLOCK_H, HEAD_ONE_CHUNK_H, HEAD_ONE_CHUNK_WARPS, HEAD_WARPS

        head = dict(common, HAS_BIAS=True, GREEDY=False, MIN_P=False, BLOCK_H=HEAD_BLOCK_H, BLOCK_V=256,
                    PDL=small)
        out.append(Variant("head_sample", tuple(head.items()), HEAD_WARPS))
        if small:  # min-p; then H in one chunk, preloaded (sc09-small's and youtubemix's 64 columns)
            out.append(Variant("head_sample", tuple(dict(head, MIN_P=True).items()), HEAD_WARPS))
            one = dict(head, BLOCK_H=HEAD_ONE_CHUNK_H, ONE_CHUNK=True)
            out.append(Variant("head_sample", tuple(one.items()), HEAD_ONE_CHUNK_WARPS))
    return out


#: the generation step kernels, compiled with their sizes marked as multiples of 16 (:func:`compile_variant`)
STEP_KERNELS = ("in_conv", "xproj", "ssm", "ssm_lti", "out_proj", "run")


def compile_variant(v: Variant, arch: int = 90) -> str:
    """Compile one variant to PTX (and SASS stats with ptxas); returns a one-line summary."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from . import (
        triton_conv,
        triton_lti_chunk,
        triton_mamba_run,
        triton_mamba_step,
        triton_norm_linear,
        triton_sample,
        triton_scan,
        triton_step,
    )

    fn = {"fwd": triton_scan._scan_fwd_kernel, "seq": triton_scan._scan_fwd_seq_kernel,
          "seqlanes": triton_scan._scan_fwd_seq_lanes_kernel, "bwd": triton_scan._scan_bwd_kernel,
          "bwdloop": triton_scan._scan_bwd_loop_kernel,
          "bwdloc": triton_scan._scan_bwd_local_kernel, "bwdlocsum": triton_scan._scan_bwd_local_sum_kernel,
          "carry": triton_scan._seg_carry_kernel,
          "finish": triton_scan._bwd_finish_kernel,
          "step": triton_step._step_kernel, "in_conv": triton_mamba_step._in_conv_kernel,
          "xproj": triton_mamba_step._xproj_kernel, "ssm": triton_mamba_step._ssm_kernel,
          "ssm_lti": triton_mamba_step._ssm_lti_kernel,
          "out_proj": triton_mamba_step._out_proj_kernel, "norm_linear": triton_norm_linear._norm_linear_kernel,
          "sample": triton_sample._sample_kernel, "head_sample": triton_sample._head_sample_kernel,
          "conv_fwd": triton_conv._conv_fwd_kernel,
          "conv_bwd": triton_conv._conv_bwd_kernel, "conv_dpre": triton_conv._conv_dpre_kernel,
          "conv_dx": triton_conv._conv_dx_kernel, "run": triton_mamba_run._run_kernel,
          "ltifwd": triton_lti_chunk._lti_chunk_fwd_kernel, "ltibwd": triton_lti_chunk._lti_chunk_bwd_kernel}[v.kernel]
    consts = dict(v.consts)
    # the strides that are 1 when the sequential forward runs on contiguous (b, d, L) u/Δ/z/y, (b, N, L) B/C and
    # (d, N) A, which Triton's launcher specialises to the constant 1 unless the kernel says do_not_specialize
    if v.kernel in ("seq", "seqlanes", "bwdloop", "bwdlocsum"):
        skip = getattr(fn, "do_not_specialize", [])
        names = [p for p in ("su_l", "sdt_l", "sz_l", "sy_l", "sdy_l", "sB_l", "sC_l", "sA_n") if p not in skip]
        consts.update({name: 1 for name in names if name in inspect.signature(fn.fn).parameters})
    special = {"forced_ptr": "*i64", "token_ptr": "*i64", "force_ptr": "*i1", "eps": "fp32", "temperature": "fp32",
               "log_min_p": "fp32", "cnt_ptr": "*i32", "ticket_ptr": "*i64", "sync_ptr": "*i64", "prof_ptr": "*i64"}
    sig = {}
    for name, param in inspect.signature(fn.fn).parameters.items():
        if name not in consts and param.default is not inspect.Parameter.empty:
            consts[name] = param.default  # a constexpr with a default (e.g. PDL=False)
        if name in consts:
            sig[name] = "constexpr"
        elif name in special:
            sig[name] = special[name]
        elif name.endswith(("_ptr", "_buf")):
            sig[name] = "*bf16" if name in ("u_ptr", "y_ptr") and v.kernel in ("fwd", "seq", "seqlanes") else "*fp32"
        else:
            sig[name] = "i32"
    # PyTorch's allocations are 16-byte aligned, and the launcher marks such pointers; integers are left unmarked,
    # as for an L that is no multiple of 16 (the ALIGN variants show what the wrappers' promise then buys)
    attrs = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(sig) if sig[name].startswith("*")}
    # the generation step kernels' sizes at sc09's widths (H 64-256, d_inner 128-512, N 16; a batch of 2048) are
    # multiples of 16, which the launcher marks as it marks pointers: without the mark a row of h (N states) or of x
    # (H columns) is not known to start 16-byte aligned, so its loads compile one element wide
    if v.kernel in STEP_KERNELS:
        sizes = ("H", "E", "N") + (("batch",) if consts.get("BLOCK_B", 1) > 1 else ())
        attrs.update({(i,): [["tt.divisibility", 16]] for i, name in enumerate(sig) if name in sizes})
    src = ASTSource(fn, sig, constexprs=consts, attrs=attrs)
    kern = triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": v.num_warps})
    # asynchronous copies (a software-pipelined loop's prefetches), then cross-lane shuffles: reductions and layout
    # changes; in a time loop they cost every step; then CTA barriers (layout changes through shared memory among
    # them: each a wait in a latency-bound kernel)
    ptx = kern.asm["ptx"]
    shfl = f", cp.async {ptx.count('cp.async.')}, shfl.sync {ptx.count('shfl.sync')}, bar.sync {ptx.count('bar.sync')}"
    if "barrier.cluster" in ptx:  # a run launched as one thread-block cluster (AUDIOMAMBA_STEP_RUNS=cluster)
        shfl += f", barrier.cluster {ptx.count('barrier.cluster.arrive')}"
    if "st.shared::cluster" in ptx:  # its partials pushed to the other CTAs' shared memory (AUDIOMAMBA_STEP_RUN_DSMEM)
        shfl += f", dsmem stores {ptx.count('st.shared::cluster')}"
    if "mbarrier" in ptx:  # its barriers through mbarriers (AUDIOMAMBA_STEP_RUN_MBAR)
        shfl += (f", mbarrier arrives {ptx.count('mbarrier.arrive.release.cluster.shared::cluster')}, "
                 f"waits {ptx.count('mbarrier.try_wait.parity')}, fences {ptx.count('fence.acq_rel.cluster')}")
    ptxas = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")
    if not os.path.exists(ptxas):
        return "compiled to PTX (no ptxas for register counts)" + shfl
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
        f.write(kern.asm["ptx"])
    try:
        res = subprocess.run([ptxas, f"-arch=sm_{arch}a", "-v", f.name, "-o", os.devnull],
                             capture_output=True, text=True, check=True)
    finally:
        os.unlink(f.name)
    regs = re.search(r"Used (\d+) registers", res.stderr)
    spill = re.search(r"(\d+) bytes spill stores", res.stderr)
    return f"registers {regs.group(1) if regs else '?'}, spill stores {spill.group(1) if spill else '?'} B" + shfl \
        + sass_instructions(kern.asm["cubin"], os.path.dirname(ptxas))


def sass_instructions(cubin: bytes, bin_dir: str) -> str:
    """", sass N": the number of machine instructions in the compiled kernel (static, from Triton's bundled
    ``nvdisasm``), or "" where that tool is missing."""
    nvdisasm = os.path.join(bin_dir, "nvdisasm")
    if not os.path.exists(nvdisasm):
        return ""
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(cubin)
    try:
        out = subprocess.run([nvdisasm, "-c", f.name], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    instruction = re.compile(r"\s*/\*[0-9a-f]+\*/\s+\S")
    return f", sass {sum(1 for line in out.splitlines() if instruction.match(line))}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="compile a few representative variants only")
    parser.add_argument("--arch", type=int, default=90, help="CUDA compute capability, e.g. 90 for H100")
    parser.add_argument("--config", default="32,1,1,1,1", help="BLOCK_L,BLOCK_D_FWD,BLOCK_D_BWD,WARPS[,...]")
    parser.add_argument("--loop-chunk", type=int, default=128, help="CHUNK of the state-loop backward")
    parser.add_argument("--only", default="", help="compile only this kernel kind (e.g. bwdloop)")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        print("unset TRITON_INTERPRET to compile the kernels", file=sys.stderr)
        return 2
    bl, fd, bd, w = (int(x) for x in args.config.split(",")[:4])
    failed = 0
    for v in variants(args.quick, bl, fd, bd, w, loop_chunk=args.loop_chunk):
        if args.only and v.kernel != args.only:
            continue
        try:
            print(f"ok    {v.label()}: {compile_variant(v, args.arch)}", flush=True)
        except Exception as err:  # noqa: BLE001 - report every failing variant, then fail
            failed += 1
            print(f"FAIL  {v.label()}: {type(err).__name__}: {str(err).splitlines()[-1] if str(err) else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
