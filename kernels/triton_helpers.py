"""The ``@triton.jit`` helpers that several kernels share: softplus and exp(ΔA) (real or complex),
the SSM state update and readout, row tiles of a batch, a matmul that uses ``tl.dot`` or a
broadcast product, and LayerNorm statistics and application. Kernels import them from here.
"""

from __future__ import annotations

import triton
import triton.language as tl
from triton.language.extra.cuda import libdevice

LOG2E = tl.constexpr(1.4426950408889634)
LN2 = tl.constexpr(0.6931471805599453)


@triton.jit
def softplus(x):
    # log(1 + e^x) through exp2/log2: Triton lowers tl.exp / tl.log to the base-2 instruction plus a scale and a
    # range check (five SASS instructions on sm_90), tl.exp2 / tl.log2 to the flush-to-zero instruction alone
    return tl.where(x <= 20.0, LN2 * tl.log2(1.0 + tl.exp2(x * LOG2E)), x)


@triton.jit
def softplus_fast(x, FAST: tl.constexpr):
    """softplus; with ``FAST`` (compiled for a GPU) its log2 is the MUFU instruction (libdevice's fast log2,
    absolute error about 2^-22 on [1, 2]) where tl.log2 compiles to a polynomial of ~15 instructions, and for
    e^x < 1/8 log(1 + e) is its series to e^6 (relative error below 6e-7), where that absolute error would be large
    against a small result. The CPU interpreter has no fast log2: there it is :func:`softplus`."""
    if FAST:
        e = tl.exp2(x * LOG2E)
        series = e * (1.0 - e * (0.5 - e * (0.33333334 - e * (0.25 - e * (0.2 - e * 0.16666667)))))
        y = tl.where(e < 0.125, series, LN2 * libdevice.fast_log2f(1.0 + e))
        return tl.where(x <= 20.0, y, x)
    return softplus(x)


@triton.jit
def silu_gate(y, z, FAST: tl.constexpr):
    """y · silu(z) = y z / (1 + e^-z); with ``FAST`` (a GPU) the division is the approximate one (two instructions,
    2 ulp) where tl.sigmoid's is the full-range division."""
    if FAST:
        return libdevice.fast_dividef(y * z, 1.0 + tl.exp2(-z * LOG2E))
    return y * z * tl.sigmoid(z)


@triton.jit
def exp_dtA(dt, A_re, A_im, IS_COMPLEX: tl.constexpr):
    """exp(Δ A) as (re, im) (im = 0 for real A); dt and A broadcast against each other.

    As 2^(Δ · A log2 e), with A's scale hoisted where A is loop-invariant: one MUFU.EX2 per element on sm_90,
    where tl.exp costs five instructions (results below 2^-126 flush to zero, as a decay they are zero anyway)."""
    mag = tl.exp2(dt * (A_re * LOG2E))
    a_re = mag
    a_im = tl.zeros_like(mag)
    if IS_COMPLEX:
        ang = dt * A_im
        a_re = mag * tl.cos(ang)
        a_im = mag * tl.sin(ang)
    return a_re, a_im


@triton.jit
def state_update(h_re, h_im, a_re, a_im, du, B_re, B_im, IS_COMPLEX: tl.constexpr):
    """h ← a h + Δu B (complex products as (re, im) pairs; the im parts are ignored for real A)."""
    if IS_COMPLEX:
        return a_re * h_re - a_im * h_im + du * B_re, a_re * h_im + a_im * h_re + du * B_im
    return a_re * h_re + du * B_re, h_im


@triton.jit
def readout(h_re, h_im, C_re, C_im, AXIS: tl.constexpr, IS_COMPLEX: tl.constexpr):
    """y = Σ_n C h over ``AXIS``: 2 Re(Σ C h) for complex A (conjugate pairs), Σ C h for real A."""
    if IS_COMPLEX:
        return 2.0 * tl.sum(C_re * h_re - C_im * h_im, axis=AXIS)
    return tl.sum(C_re * h_re, axis=AXIS)


@triton.jit
def below(offs, n, EVEN: tl.constexpr = False):
    """The mask ``offs < n``, or with ``EVEN`` (the caller knows every offset is in range: the size is a multiple of
    the tile) a constant true one, which the compiler folds away with the loads' and stores' predicates (sm_90: about
    2-17 % fewer instructions in the generation step kernels)."""
    if EVEN:
        return tl.full(offs.shape, 1, tl.int1)
    return offs < n


@triton.jit
def row_tile(batch, BLOCK_B: tl.constexpr, EVEN: tl.constexpr = False):
    """This program's rows of the batch (int64, for offsets) along grid axis 0, and their mask (constant with
    ``EVEN``: batch a multiple of BLOCK_B)."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    return rows.to(tl.int64), below(rows, batch, EVEN)


@triton.jit
def mm(a, b, USE_DOT: tl.constexpr, PREC: tl.constexpr):
    """a (M, K) @ b (K, N) in float32: tl.dot for M >= 16, else a broadcast product. PREC "bf16"
    rounds both operands to bfloat16 (the precision the models train in under autocast) and
    accumulates in float32; otherwise it is tl.dot's input precision."""
    if USE_DOT:
        if PREC == "bf16":
            out = tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16), out_dtype=tl.float32)
        elif PREC == "bf16-rounded":  # the same products in float32 (the CPU interpreter's bf16 tl.dot is wrong)
            out = tl.dot(a.to(tl.bfloat16).to(tl.float32), b.to(tl.bfloat16).to(tl.float32), input_precision="ieee")
        else:
            out = tl.dot(a, b, input_precision=PREC)
    else:
        out = tl.sum(a[:, :, None] * b[None, :, :], axis=1)
    return out


@triton.jit
def ln_stats(x_ptr, rows, m_b, H, eps, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, EVEN: tl.constexpr = False):
    """LayerNorm mean and 1/std (BLOCK_B,) of rows of x (B, H), two passes over H in chunks (``EVEN``: H a
    multiple of BLOCK_H)."""
    total = tl.zeros((BLOCK_B,), dtype=tl.float32)
    for h0 in range(0, H, BLOCK_H):
        offs_h = h0 + tl.arange(0, BLOCK_H)
        m_bh = m_b[:, None] & below(offs_h, H, EVEN)[None, :]
        total += tl.sum(tl.load(x_ptr + rows[:, None] * H + offs_h[None, :], mask=m_bh, other=0.0).to(tl.float32), 1)
    mean = total / H
    sq = tl.zeros((BLOCK_B,), dtype=tl.float32)
    for h0 in range(0, H, BLOCK_H):
        offs_h = h0 + tl.arange(0, BLOCK_H)
        m_bh = m_b[:, None] & below(offs_h, H, EVEN)[None, :]
        x = tl.load(x_ptr + rows[:, None] * H + offs_h[None, :], mask=m_bh, other=0.0).to(tl.float32)
        xc = tl.where(m_bh, x - mean[:, None], 0.0)
        sq += tl.sum(xc * xc, axis=1)
    return mean, 1.0 / tl.sqrt(sq / H + eps)


@triton.jit
def ln_apply(x_ptr, nw_ptr, nb_ptr, rows, m_b, offs_h, H, mean, rstd, EVEN: tl.constexpr = False):
    """LayerNorm(x) at columns ``offs_h`` of rows of x (B, H): (BLOCK_B, len(offs_h)), 0 where padded."""
    m_h = below(offs_h, H, EVEN)
    m_bh = m_b[:, None] & m_h[None, :]
    x = tl.load(x_ptr + rows[:, None] * H + offs_h[None, :], mask=m_bh, other=0.0).to(tl.float32)
    nw = tl.load(nw_ptr + offs_h, mask=m_h, other=0.0).to(tl.float32)
    nb = tl.load(nb_ptr + offs_h, mask=m_h, other=0.0).to(tl.float32)
    return tl.where(m_bh, (x - mean[:, None]) * rstd[:, None] * nw[None, :] + nb[None, :], 0.0)


@triton.jit
def ln_regs(x, m_bh, nw, nb, H, eps):
    """LayerNorm of rows of x (BLOCK_B, BLOCK_H) already in registers (all H columns in one tile; ``m_bh`` masks the
    padding), with weights nw, nb (BLOCK_H,): the result of ln_stats + ln_apply, 0 where padded."""
    mean = tl.sum(x, 1) / H
    xc = tl.where(m_bh, x - mean[:, None], 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(xc * xc, axis=1) / H + eps)
    return tl.where(m_bh, (x - mean[:, None]) * rstd[:, None] * nw[None, :] + nb[None, :], 0.0)


@triton.jit
def cluster_barrier(token):
    """Every thread of every CTA of the thread-block cluster meets here: ``barrier.cluster.arrive.release`` (this
    thread's earlier stores, global ones too, become visible to the cluster) then ``wait.acquire`` (sm_90+). Launched
    without a cluster (:func:`kernels.launch.launch_cluster`), the cluster is the CTA itself. ``token``: any int32
    (the asm takes an input), returned unchanged; the asm has side effects, so it is never removed, and the run
    kernel follows it with a CTA barrier before the loads that must see the other CTAs' stores (``.cg``: past L1)."""
    return tl.inline_asm_elementwise(
        "barrier.cluster.arrive.release;\n\tbarrier.cluster.wait.acquire;\n\tmov.u32 $0, $1;",
        "=r,r", [token], dtype=tl.int32, is_pure=False, pack=1)


@triton.jit
def cluster_arrive(token):
    """The first half of :func:`cluster_barrier`: ``barrier.cluster.arrive.release`` (this thread's earlier stores
    become visible to the cluster; later ones are not covered, so stores that no other CTA reads can go between
    this and :func:`cluster_wait`, their latency off the barrier's path). Returns ``token``."""
    return tl.inline_asm_elementwise("barrier.cluster.arrive.release;\n\tmov.u32 $0, $1;", "=r,r", [token],
                                     dtype=tl.int32, is_pure=False, pack=1)


@triton.jit
def cluster_wait(token):
    """The second half of :func:`cluster_barrier`: ``barrier.cluster.wait.acquire``. Returns ``token``."""
    return tl.inline_asm_elementwise("barrier.cluster.wait.acquire;\n\tmov.u32 $0, $1;", "=r,r", [token],
                                     dtype=tl.int32, is_pure=False, pack=1)


@triton.jit
def mbar_pair(token, P):
    """Two mbarriers (a static ``.b64`` pair beside Triton's shared memory, at the same address in every CTA of the
    cluster) made ready for ``P`` arrivals a phase by thread 0, then ``fence.mbarrier_init.release.cluster`` (sm_90+):
    :func:`mbar_signal` and :func:`mbar_wait` stand in for :func:`cluster_barrier` with them. Every CTA must pass a
    cluster barrier after this before any other signals it. Call it once, outside any loop (each call declares its
    own pair). Returns the first one's shared address (int32; the second is 8 bytes on)."""
    return tl.inline_asm_elementwise(
        "{\n\t.shared .align 8 .b64 am_mbar[2];\n\t.reg .pred p;\n\t.reg .u32 t, a;\n\tmov.u32 a, am_mbar;"
        "\n\tmov.u32 t, %tid.x;\n\tsetp.eq.u32 p, t, 0;\n\t@p mbarrier.init.shared::cta.b64 [a], $2;"
        "\n\t@p mbarrier.init.shared::cta.b64 [a+8], $2;\n\tfence.mbarrier_init.release.cluster;"
        "\n\tmov.u32 $0, a;\n\t}",
        "=r,r,r", [token, P], dtype=tl.int32, is_pure=False, pack=1)


@triton.jit
def mbar_signal(mbar, P, FENCE: tl.constexpr):
    """The arrive half of a cluster barrier through mbarriers (:func:`mbar_pair`): after a CTA barrier (every thread's
    stores before it issued), thread t < ``P`` arrives on the mbarrier at ``mbar`` of CTA t
    (``mbarrier.arrive.release.cluster.shared::cluster``), so each CTA's mbarrier completes its phase once all ``P``
    CTAs have arrived. ``FENCE``: every thread first issues ``fence.acq_rel.cluster`` (its own stores released at
    cluster scope, as ``barrier.cluster.arrive.release`` does; without it the CTA barrier orders them before the
    releasing arrive). Returns 0."""
    if FENCE:
        tl.inline_asm_elementwise("fence.acq_rel.cluster;\n\tmov.u32 $0, $1;", "=r,r", [mbar], dtype=tl.int32,
                                  is_pure=False, pack=1)
    tl.debug_barrier()
    return tl.inline_asm_elementwise(
        "{\n\t.reg .pred p;\n\t.reg .u32 t, a;\n\tmov.u32 t, %tid.x;\n\tsetp.lt.u32 p, t, $2;"
        "\n\t@p mapa.shared::cluster.u32 a, $1, t;\n\t@p mbarrier.arrive.release.cluster.shared::cluster.b64 _, [a];"
        "\n\tmov.u32 $0, 0;\n\t}",
        "=r,r,r", [mbar, P], dtype=tl.int32, is_pure=False, pack=1)


@triton.jit
def mbar_wait(mbar, parity):
    """The wait half (:func:`mbar_signal`): every thread polls this CTA's mbarrier at ``mbar`` until the phase of
    ``parity`` (0 or 1: the mbarrier's uses so far, mod 2) completes (``try_wait.parity.acquire.cluster``: the
    stores released before the arrivals are seen after it). Returns ``parity``."""
    return tl.inline_asm_elementwise(
        "{\n\t.reg .pred p;\n\tAM_WAIT:\n\tmbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [$1], $2;"
        "\n\t@!p bra AM_WAIT;\n\tmov.u32 $0, $2;\n\t}",
        "=r,r,r", [mbar, parity], dtype=tl.int32, is_pure=False, pack=1)


#: the sizes (bytes) :func:`cluster_smem` declares; a run's exchange takes the smallest that holds it
CLUSTER_SMEM_SIZES = (4096, 8192, 16384, 32768)


@triton.jit
def cluster_smem(token, BYTES: tl.constexpr):
    """The shared-memory address (int32, the CTA's window) of a static array of ``BYTES`` bytes (one of
    :data:`CLUSTER_SMEM_SIZES`) beside Triton's own shared memory, at the same address in every CTA of the kernel,
    so :func:`dsmem_store` reaches another CTA's copy. Call it once, with a scalar ``token``, outside any loop: each
    call declares its own array."""
    tl.static_assert((BYTES == 4096) | (BYTES == 8192) | (BYTES == 16384) | (BYTES == 32768),
                     "cluster_smem: BYTES must be one of CLUSTER_SMEM_SIZES")
    if BYTES == 4096:
        addr = tl.inline_asm_elementwise("{\n\t.shared .align 16 .b8 am_xchg[4096];\n\tmov.u32 $0, am_xchg;\n\t}",
                                         "=r,r", [token], dtype=tl.int32, is_pure=False, pack=1)
    elif BYTES == 8192:
        addr = tl.inline_asm_elementwise("{\n\t.shared .align 16 .b8 am_xchg[8192];\n\tmov.u32 $0, am_xchg;\n\t}",
                                         "=r,r", [token], dtype=tl.int32, is_pure=False, pack=1)
    elif BYTES == 16384:
        addr = tl.inline_asm_elementwise("{\n\t.shared .align 16 .b8 am_xchg[16384];\n\tmov.u32 $0, am_xchg;\n\t}",
                                         "=r,r", [token], dtype=tl.int32, is_pure=False, pack=1)
    else:
        addr = tl.inline_asm_elementwise("{\n\t.shared .align 16 .b8 am_xchg[32768];\n\tmov.u32 $0, am_xchg;\n\t}",
                                         "=r,r", [token], dtype=tl.int32, is_pure=False, pack=1)
    return addr


@triton.jit
def dsmem_store(value, addr, rank):
    """Store float32 ``value`` at shared address ``addr`` (from :func:`cluster_smem`) of CTA ``rank`` of this
    thread-block cluster (distributed shared memory, ``mapa`` + ``st.shared::cluster``, sm_90+). The stores are seen
    by that CTA after the next :func:`cluster_barrier` (its arrive is a release, its wait an acquire). Returns a
    token (0) that nothing needs: the asm has side effects, so it stays."""
    return tl.inline_asm_elementwise(
        "{\n\t.reg .u32 a;\n\tmapa.shared::cluster.u32 a, $2, $3;\n\tst.shared::cluster.f32 [a], $1;"
        "\n\tmov.u32 $0, 0;\n\t}",
        "=r,f,r,r", [value, addr, rank], dtype=tl.int32, is_pure=False, pack=1)


@triton.jit
def smem_load(addr):
    """The float32 at shared address ``addr`` of this CTA (``ld.shared``), read where it stands in the program: the
    asm is volatile, so it stays after the :func:`cluster_barrier` before it."""
    return tl.inline_asm_elementwise("ld.shared.f32 $0, [$1];", "=f,r", [addr], dtype=tl.float32, is_pure=False,
                                     pack=1)


@triton.jit
def sm_clock(token):
    """This SM's cycle counter (``%clock64``, int64) once ``token`` (any int32 but -1) is known: the read is
    predicated on it, so a token computed from a value (a sum of a tile) marks when that value is ready. Volatile:
    never removed, and kept in order with the other volatile asm (the barriers), though independent loads may still
    move around it. For in-kernel profiles only (``PROFILE`` of the run kernel)."""
    return tl.inline_asm_elementwise(
        "{\n\t.reg .pred p;\n\tsetp.ne.s32 p, $1, -1;\n\tmov.u64 $0, 0;\n\t@p mov.u64 $0, %clock64;\n\t}",
        "=l,r", [token], dtype=tl.int64, is_pure=False, pack=1)


@triton.jit
def pdl_wait(PDL: tl.constexpr):
    """Programmatic dependent launch (sm_90+, ``AUDIOMAMBA_PDL=1``; :func:`kernels.backend.pdl_enabled`):
    wait until the previous kernel of the stream has finished and its writes are visible, then let
    the next kernel start launching. Called before any access to memory that a kernel of the step
    writes (only weights may be loaded before it), so launch latency and weight loads overlap and
    every read and write of activations and states stays ordered as without PDL. Nothing when PDL is off."""
    if PDL:
        tl.extra.cuda.gdc_wait()
        tl.extra.cuda.gdc_launch_dependents()


@triton.jit
def ln_linear(x_ptr, nw_ptr, nb_ptr, w_ptr, rows, m_b, offs_v, m_v, H, eps, USE_DOT: tl.constexpr,
              PREC: tl.constexpr, PDL: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    """Linear(LayerNorm(x)) without its bias for rows of x (B, H), H in one tile of BLOCK_H columns, at the outputs
    ``offs_v`` of the weight w (V, H): (BLOCK_B, len(offs_v)) float32. The weights load first (they do not depend on
    the previous kernel: with PDL they load while it finishes), then :func:`pdl_wait`."""
    offs_h = tl.arange(0, BLOCK_H)
    m_h = offs_h < H
    w = tl.load(w_ptr + offs_v[None, :] * H + offs_h[:, None], mask=m_h[:, None] & m_v[None, :], other=0.0)
    pdl_wait(PDL)
    mean, rstd = ln_stats(x_ptr, rows, m_b, H, eps, BLOCK_B, BLOCK_H)
    xn = ln_apply(x_ptr, nw_ptr, nb_ptr, rows, m_b, offs_h, H, mean, rstd)
    return mm(xn, w.to(tl.float32), USE_DOT, PREC)
