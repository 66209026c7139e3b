"""Triton scan kernels (under TRITON_INTERPRET=1 on CPU) against the sequential reference.

Forward y, last state and every gradient, for real/complex × selective/LTI × optional
D/z/delta_bias/softplus × L not a multiple of the chunk (BLOCK_L = 16; L = 1, 7, 37), plus
several channel blocks with masked tails (d = 5, BLOCK_D = 2, N = 3), chunk-parallel segments
(forward and backward) with the chunk-scan and the sequential forward, bf16 inputs, strided
inputs and the step kernel.
"""

from __future__ import annotations

import pytest
import torch
from audiomamba.kernels.reference import selective_scan_ref
from audiomamba.kernels.tuning import ScanConfig, parse_config, pick_config
from test_kernels_reference import make_args

from audiomamba import kernels

triton_scan = pytest.importorskip("audiomamba.kernels.triton_scan")

ALL_OPTS = ("D", "z", "delta_bias", "delta_softplus")


def run_both(args, opts, *, block_l=16, block_d=4, dtype=torch.float32, mixed=None, seg_l=0, seq=False,
             partials=False, loop=0, **cfg_extra):
    """Forward + backward through Triton and the sequential reference; returns both results."""
    u, delta, A, B, C, D, z, db = args
    if mixed == "dt_sel_bc_lti":  # selective delta with LTI B, C
        B, C = B[0, :, 0].expand(u.shape[1], -1).contiguous(), C[0, :, 0].expand(u.shape[1], -1).contiguous()
    full = dict(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=db)
    names = ["u", "delta", "A", "B", "C"] + [k for k in ("D", "z", "delta_bias") if k in opts]
    leaves = {k: full[k].detach().clone().requires_grad_() for k in names}
    # bf16 activations: u, z and selective delta / B / C; LTI delta stays float32 (a parameter in the models)
    low = ("u", "z") + (() if delta.dim() == 1 else ("delta",)) + (() if B.dim() == 2 else ("B", "C"))
    cast = {k: (v.to(dtype) if k in low and not v.is_complex() else v) for k, v in leaves.items()}
    sp = "delta_softplus" in opts
    y_t, h_t = triton_scan.selective_scan_triton(
        **cast, delta_softplus=sp, return_last_state=True,
        config=ScanConfig(block_l, block_d, max(1, block_d // 2), 4, 4, seg_l, seq, seg_l if seg_l else -1,
                          bwd_partials=partials, bwd_loop=loop, **cfg_extra),
    )
    y_r, h_r = selective_scan_ref(**cast, delta_softplus=sp, return_last_state=True)
    gy = torch.randn(y_r.shape, generator=torch.Generator().manual_seed(1))
    g_t = torch.autograd.grad((y_t.float() * gy).sum(), list(leaves.values()))
    g_r = torch.autograd.grad((y_r.float() * gy).sum(), list(leaves.values()))
    return (y_t, h_t, dict(zip(names, g_t, strict=True))), (y_r, h_r, dict(zip(names, g_r, strict=True)))


def assert_match(t, r, rtol=2e-4):
    """Compare y, h_last and grads with a tolerance relative to each tensor's scale."""
    (y_t, h_t, g_t), (y_r, h_r, g_r) = t, r
    assert y_t.dtype == y_r.dtype and h_t.dtype == h_r.dtype and h_t.shape == h_r.shape

    def close(a, b, what):
        scale = b.abs().max().item() + 1e-6
        err = (a - b).abs().max().item() if a.numel() else 0.0
        assert err <= rtol * scale + 1e-6, f"{what}: max error {err:.3g} vs scale {scale:.3g}"

    close(y_t.float(), y_r.float(), "y")
    close(h_t, h_r, "h_last")
    for k in g_r:
        assert g_t[k].shape == g_r[k].shape and g_t[k].dtype == g_r[k].dtype, k
        close(g_t[k], g_r[k], f"grad {k}")


OPTS = [(), ALL_OPTS, ("D", "delta_softplus"), ("z", "delta_bias")]


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("lti", [False, True], ids=["selective", "lti"])
@pytest.mark.parametrize(
    "L,opts", [(1, ALL_OPTS), (7, OPTS[2]), (7, OPTS[3]), (37, ()), (37, ALL_OPTS)],
    ids=["L1-all", "L7-D-softplus", "L7-z-bias", "L37-none", "L37-all"],
)
def test_triton_matches_reference(cplx, lti, L, opts):
    args = make_args(2, 4, 4, L, cplx=cplx, lti=lti)
    assert_match(*run_both(args, opts))


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("lti", [False, True], ids=["selective", "lti"])
def test_triton_several_channel_blocks_masked_tails(cplx, lti):
    """d = 5 over blocks of 2 channels (atomics across blocks), N = 3 padded to 4, L = 20 (2 chunks)."""
    args = make_args(2, 5, 3, 20, cplx=cplx, lti=lti, seed=3)
    assert_match(*run_both(args, ALL_OPTS, block_d=2))


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("lti", [False, True], ids=["selective", "lti"])
@pytest.mark.parametrize("seq", [False, True], ids=["scan-fwd", "seq-fwd"])
def test_triton_chunk_parallel_segments(cplx, lti, seq):
    """L = 50 in segments of 32 steps (2 chunks of 16; the last segment partial): the local pass,
    the carry across segments and the per-segment partial sums, forward and backward; with the
    chunk-scan forward and with the lane-per-channel sequential forward (sub-tiles of 8 steps)."""
    args = make_args(2, 5, 3, 50, cplx=cplx, lti=lti, seed=8)
    assert_match(*run_both(args, ALL_OPTS, block_d=2, seg_l=32, seq=seq))


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("lti", [False, True], ids=["selective", "lti"])
@pytest.mark.parametrize("sub_l", [4, 8], ids=["sub4", "sub8"])
def test_triton_seq_forward_without_unit_stride_specialisation(cplx, lti, sub_l):
    """``seq_lanes``: the sequential forward compiled without Triton's unit-L-stride specialisation (a second
    JIT of the same body) and ``seq_sub_l`` steps per tile give the reference's outputs and grads, in segments
    with a partial last one (L = 50, unrolled by 4 over tiles of 4 or 8 steps)."""
    args = make_args(2, 5, 3, 50, cplx=cplx, lti=lti, seed=8)
    assert_match(*run_both(args, ALL_OPTS, block_d=2, seg_l=32, seq=True, seq_lanes=True, seq_sub_l=sub_l))


def test_seq_forward_tile_follows_the_input_dtype(monkeypatch):
    """With ScanConfig's tile and unroll left at 0, the sequential forward takes them from SEQ_TILE_AUTO by the
    inputs' element size (float32: 4 steps per tile, unrolled by 4; bfloat16: 16 by 8, as timed on an H200), complex
    A keeps (8, 4), and the env / config values win; the outputs match the reference either way."""
    from audiomamba.kernels.tuning import SEQ_TILE_AUTO, SEQ_TILE_COMPLEX

    seen = []
    real = triton_scan._scan_fwd_seq_kernel

    class Spy:
        def __getitem__(self, grid):
            def launch(*args, **flags):
                seen.append((flags["SUB_L"], flags["UNROLL"]))
                return real[grid](*args, **flags)
            return launch

    monkeypatch.setattr(triton_scan, "_scan_fwd_seq_kernel", Spy())
    for cplx, dtype, want in ((False, torch.float32, SEQ_TILE_AUTO[4]), (False, torch.bfloat16, SEQ_TILE_AUTO[2]),
                              (True, torch.float32, SEQ_TILE_COMPLEX)):
        seen.clear()
        args = make_args(2, 5, 3, 40, cplx=cplx, lti=False, seed=8)
        assert_match(*run_both(args, ALL_OPTS, block_l=32, block_d=2, seq=True, dtype=dtype),
                     rtol=2e-4 if dtype == torch.float32 else 3e-2)
        assert seen and set(seen) == {want}, (seen, want)
    seen.clear()
    run_both(make_args(2, 5, 3, 40, cplx=False, lti=False, seed=8), ALL_OPTS, block_l=32, block_d=2, seq=True,
             seq_sub_l=8, unroll=2)
    assert set(seen) == {(8, 2)}


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("seg_l", [0, 32], ids=["one-segment", "segments"])
def test_triton_backward_partials_instead_of_atomics(cplx, seg_l):
    """``bwd_partials``: selective dB/dC stored per channel block (d = 5 over blocks of 1, and 2 in the
    mixed case) and summed in PyTorch give the reference's grads, with and without segments."""
    args = make_args(2, 5, 3, 50, cplx=cplx, lti=False, seed=8)
    assert_match(*run_both(args, ALL_OPTS, block_d=2, seg_l=seg_l, seq=True, partials=True))
    args = make_args(2, 5, 3, 20, cplx=cplx, lti=False, seed=3)
    assert_match(*run_both(args, ALL_OPTS, block_d=4, partials=True))


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("lti", [False, True], ids=["selective", "lti"])
@pytest.mark.parametrize(
    "L,seg_l,loop,opts",
    [(1, 0, 32, ALL_OPTS), (37, 0, 32, ALL_OPTS), (37, 0, 16, OPTS[2]), (50, 32, 32, ALL_OPTS),
     (70, 64, 32, OPTS[3]), (50, 0, 64, ())],
    ids=["L1", "L37-sub2", "L37-sub1-D-softplus", "L50-seg32", "L70-seg64-sub2-z-bias", "L50-chunk64-none"],
)
def test_triton_state_loop_backward(cplx, lti, L, seg_l, loop, opts):
    """``bwd_loop``: the state-loop backward (one channel per program, chunks of ``loop`` steps =
    1 or 2 of the forward's saved chunks of 16, a loop over N = 3 states) gives the reference's grads,
    in one segment and in segments (with the local pass and the carry), with partial last chunks."""
    args = make_args(2, 5, 3, L, cplx=cplx, lti=lti, seed=11)
    assert_match(*run_both(args, opts, block_d=2, seg_l=seg_l, seq=True, loop=loop))


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("lti", [False, True], ids=["selective", "lti"])
def test_triton_state_loop_backward_reverse_scan_both_ways(cplx, lti):
    """The adjoint's reverse scan over reversed loads (the default) and as Triton's flipped
    ``associative_scan(reverse=True)`` (``bwd_flip``) both give the reference's grads, with segments and a
    partial last chunk, and agree with each other. L = 52 makes the wrapper promise ALIGN = 4 (L and the
    rows' strides are multiples of 4; the other state-loop tests run at 2 and 1)."""
    args = make_args(2, 5, 3, 52, cplx=cplx, lti=lti, seed=12)
    rev = run_both(args, ALL_OPTS, block_d=2, seg_l=32, seq=True, loop=32)
    flip = run_both(args, ALL_OPTS, block_d=2, seg_l=32, seq=True, loop=32, bwd_flip=True)
    assert_match(*rev)
    assert_match(*flip)
    assert_match(rev[0], flip[0], rtol=1e-5)


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_triton_state_loop_backward_closed_form_lti(cplx):
    """LTI Δ and A: the state-loop backward's closed-form scans (``bwd_closed``) and the associative scans (the
    default) both give the reference's grads, and agree. The four states' decays q = -Re(ΔA)
    (Δ in [0.2, 0.9]) take every path of the same launch: q · CHUNK <= 4 (closed, adjoint in time order),
    q · CHUNK / 2 <= 30 (closed, adjoint over reversed lanes) and faster (associative scans); over segments of one
    chunk and one segment of four chunks of 16, the last one partial."""
    u, delta, A, B, C, D, z, db = make_args(2, 5, 4, 52, cplx=cplx, lti=True, seed=14)
    delta = torch.rand(5, generator=torch.Generator().manual_seed(2)) * 0.7 + 0.2
    a_re = torch.tensor([-0.1, -1.0, -4.0, -20.0]).expand(5, 4)
    A = torch.complex(a_re, A.imag) if cplx else a_re.contiguous()
    args = (u, delta, A, B, C, D, z, db)
    opts = ("D", "z")
    for seg_l, loop in ((32, 32), (0, 16)):  # one chunk per segment; four chunks in one (the carry between chunks)
        closed = run_both(args, opts, block_d=2, seg_l=seg_l, seq=True, loop=loop, bwd_closed=True)
        pairs = run_both(args, opts, block_d=2, seg_l=seg_l, seq=True, loop=loop)
        assert_match(*closed)
        assert_match(*pairs)
        assert_match(closed[0], pairs[0], rtol=1e-5)
        q = -delta[:, None] * a_re
        assert (q * loop <= 4).any() and ((q * loop > 4) & (q * loop / 2 <= 30)).any() and (q * loop / 2 > 30).any()


def test_triton_pipelined_loops_match_the_reference():
    """The state-loop backward's state loop and the sequential forward's tile loop with software pipelining
    (``bwd_stages``, ``fwd_stages``; the interpreter runs the loops as written, the GPU tests run them compiled)."""
    args = make_args(2, 5, 3, 52, cplx=False, lti=False, seed=13)
    assert_match(*run_both(args, ALL_OPTS, block_d=2, seg_l=32, seq=True, loop=32, bwd_stages=2, fwd_stages=2))
    # two states per iteration of the state loop, over an odd number of states (3: the unrolled loop's remainder)
    assert_match(*run_both(args, ALL_OPTS, block_d=2, seg_l=32, seq=True, loop=32, bwd_unroll_n=2))


@pytest.mark.parametrize("mixed,opts", [(None, ALL_OPTS), ("dt_sel_bc_lti", ALL_OPTS), (None, ("D",))])
def test_triton_backward_pass1_as_a_sum_matches_the_reference(mixed, opts):
    """Backward pass 1 for real A as one sum per state (``bwd_local_sum``): several segments (the adjoint entering
    each from the right), a last segment cut short by L, tiles reaching past a segment's end (segments of 32 steps,
    tiles of LOCAL_SUM_TILE), LTI B/C, without the gate and softplus; the same grads as the scan form."""
    args = make_args(2, 5, 3, 83, cplx=False, lti=False, seed=21)
    summed = run_both(args, opts, mixed=mixed, block_d=2, seg_l=32, seq=True, loop=32, bwd_local_sum=4)
    assert_match(*summed)
    scanned = run_both(args, opts, mixed=mixed, block_d=2, seg_l=32, seq=True, loop=32, bwd_local_sum=0)
    for name, g in summed[0][2].items():  # grads within float32 rounding of the scan form's, at each tensor's scale
        ref = scanned[0][2][name]
        assert (g - ref).abs().max() <= 2e-5 * ref.abs().max() + 1e-6, name
    # the tile backward's pass 1 too (its segments, BLOCK_D channels per program)
    assert_match(*run_both(args, opts, mixed=mixed, block_d=2, seg_l=32, bwd_local_sum=4))


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("L", [96, 83])
def test_triton_sequential_forward_unmasked_bc_loads(L, cplx, monkeypatch):
    """The sequential forward's ``EVEN`` promise (B and C loaded without predicates or zero fill): given with N =
    BLOCK_N = 4 where the tile length divides L (96), not where the last tile is cut short (83); ``FAST`` (the fast
    softplus and gate, GPU only) never under the interpreter. y, h_last and every grad against the reference, with
    segments of 32 steps (the local pass and the full one); real and complex (B and C too)."""
    flags = []
    real_launch = triton_scan.launch

    def spy(kernel, grid, *rest, **kwargs):
        if kernel is triton_scan._scan_fwd_seq_kernel:
            flags.append((kwargs["EVEN"], kwargs["FAST"]))
        return real_launch(kernel, grid, *rest, **kwargs)

    monkeypatch.setattr(triton_scan, "launch", spy)
    args = make_args(2, 5, 4, L, cplx=cplx, lti=False, seed=25)
    assert_match(*run_both(args, ALL_OPTS, block_d=2, seg_l=32, seq=True, loop=32))
    assert len(flags) == 2 and set(flags) == {(L == 96, False)}


def test_triton_backward_pass1_as_a_sum_with_delta_per_channel():
    """``bwd_local_sum`` with Δ, B and C per channel but real A (the sum's Δ is one constant per channel)."""
    args = make_args(2, 4, 3, 70, cplx=False, lti=True, seed=22)
    assert_match(*run_both(args, ALL_OPTS, block_d=2, seg_l=32, seq=True, loop=32, bwd_local_sum=4))


def test_triton_state_loop_backward_mixed_and_strided():
    """The state-loop backward with selective Δ and LTI B/C, complex A with real B/C, strided u/z/B."""
    args = make_args(2, 4, 4, 19, cplx=True, lti=False, seed=4)
    assert_match(*run_both(args, ALL_OPTS, mixed="dt_sel_bc_lti", loop=32))
    u, delta, A, B, C, D, z, db = make_args(2, 4, 4, 19, cplx=True, lti=False, seed=5)
    assert_match(*run_both((u, delta, A, B.real.contiguous(), C.real.contiguous(), D, z, db), ALL_OPTS, loop=32))
    u, delta, A, B, C, D, z, db = make_args(2, 4, 4, 21, cplx=False, lti=False, seed=6)
    u_s = u.transpose(1, 2).contiguous().transpose(1, 2)
    z_s = z.transpose(1, 2).contiguous().transpose(1, 2)
    B_s = B.transpose(1, 2).contiguous().transpose(1, 2)
    assert_match(*run_both((u_s, delta, A, B_s, C, D, z_s, db), ALL_OPTS, loop=32))
    # Δ, B and C with non-unit stride along L, as the model's transposed x_proj views have (dense here, so
    # that run_both's clones keep the strides)
    d_s, B_s, C_s = (x.transpose(1, 2).contiguous().transpose(1, 2) for x in (delta, B, C))
    assert d_s.stride(-1) == 4 and B_s.stride(-1) == 4 and d_s.clone().stride() == d_s.stride()
    assert_match(*run_both((u, d_s, A, B_s, C_s, D, z, db), ALL_OPTS, loop=32))


def test_triton_mixed_selective_delta_lti_bc():
    args = make_args(2, 4, 4, 19, cplx=True, lti=False, seed=4)
    assert_match(*run_both(args, ALL_OPTS, mixed="dt_sel_bc_lti"))


def test_triton_complex_a_with_real_b_c():
    u, delta, A, B, C, D, z, db = make_args(2, 4, 4, 19, cplx=True, lti=False, seed=5)
    assert_match(*run_both((u, delta, A, B.real.contiguous(), C.real.contiguous(), D, z, db), ALL_OPTS))


def test_triton_strided_inputs():
    """u, z given as (batch, L, d) transposed views; B as a (batch, L, N) transpose."""
    u, delta, A, B, C, D, z, db = make_args(2, 4, 4, 21, cplx=False, lti=False, seed=6)
    u_s = u.transpose(1, 2).contiguous().transpose(1, 2)
    z_s = z.transpose(1, 2).contiguous().transpose(1, 2)
    B_s = B.transpose(1, 2).contiguous().transpose(1, 2)
    assert not u_s.is_contiguous()
    assert_match(*run_both((u_s, delta, A, B_s, C, D, z_s, db), ALL_OPTS))


@pytest.mark.parametrize("cplx,lti", [(False, False), (True, True)], ids=["real-selective", "complex-lti"])
def test_triton_bf16_inputs_close_to_fp32(cplx, lti):
    """bf16 activations (u, z, selective delta/B/C): y and h_last within 2 % of the fp32 results' scale
    (max |·|), fp32 state, every grad within 6 %; and the kernel matches the reference on the same
    bf16 inputs within 1 %."""
    args = make_args(2, 4, 4, 37, cplx=cplx, lti=lti, seed=7)
    t, r32 = run_both(args, ALL_OPTS, dtype=torch.bfloat16)
    _, r = run_both(args, ALL_OPTS)
    assert t[0].dtype == torch.bfloat16 and t[1].dtype in (torch.float32, torch.complex64)
    # same bf16 inputs: kernel and reference agree tightly except for the final rounding to bf16
    assert_match(t, r32, rtol=1e-2)
    y_t, h_t, g_t = t
    y_r, h_r, g_r = r
    assert (y_t.float() - y_r).abs().max() <= 2e-2 * y_r.abs().max()
    assert (h_t - h_r).abs().max() <= 2e-2 * h_r.abs().max()
    for k in g_r:
        assert (g_t[k].to(g_r[k].dtype) - g_r[k]).abs().max() <= 6e-2 * g_r[k].abs().max(), k


def test_triton_forward_only_and_no_grad_paths():
    u, delta, A, B, C, D, z, db = make_args(1, 4, 4, 5, cplx=False, lti=True)
    with torch.no_grad():
        y = triton_scan.selective_scan_triton(u, delta, A, B, C, D, config=ScanConfig(16, 2, 1, 4, 4))
    torch.testing.assert_close(y, selective_scan_ref(u, delta, A, B, C, D), atol=1e-5, rtol=1e-5)


def test_public_op_forced_triton_backend(monkeypatch):
    """AUDIOMAMBA_SCAN=triton routes CPU tensors to the (interpreted) Triton kernel."""
    calls = []
    real = triton_scan.selective_scan_triton

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(triton_scan, "selective_scan_triton", spy)
    monkeypatch.setenv("AUDIOMAMBA_SCAN", "triton")
    u, delta, A, B, C, D, z, db = make_args(1, 4, 4, 5, cplx=False, lti=False)
    y = kernels.selective_scan(u, delta, A, B, C, D)
    assert calls == [1]
    torch.testing.assert_close(y, selective_scan_ref(u, delta, A, B, C, D), atol=1e-5, rtol=1e-5)
    monkeypatch.delenv("AUDIOMAMBA_SCAN")
    kernels.selective_scan(u, delta, A, B, C, D)
    assert calls == [1]


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("lti", [False, True], ids=["selective", "lti"])
def test_triton_step_iterated_equals_scan(cplx, lti):
    from audiomamba.kernels.triton_step import selective_state_update_triton

    L = 6
    u, delta, A, B, C, D, z, db = make_args(2, 5, 3, L, cplx=cplx, lti=lti, seed=8)
    y_full, h_full = selective_scan_ref(u, delta, A, B, C, D, z, db, True, return_last_state=True)
    h = torch.zeros(2, 5, 3, dtype=h_full.dtype)
    ys = []
    for t in range(L):
        dt = delta if lti else delta[:, :, t]
        Bt, Ct = (B, C) if lti else (B[:, :, t], C[:, :, t])
        ys.append(selective_state_update_triton(h, u[:, :, t], dt, A, Bt, Ct, D, z[:, :, t], db, True, block_d=2))
    torch.testing.assert_close(torch.stack(ys, -1), y_full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, h_full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("lti", [False, True], ids=["selective", "lti"])
def test_step_with_a_bf16_state(lti):
    """A real state h in bfloat16 (``generate --states bf16``): the Triton step and the reference read the same
    rounded state, compute in float32 and store rounded: the outputs of one step agree to float32 rounding, the
    stored states to a bf16 rounding (:func:`kernel_helpers.assert_bf16_rounded`); a float16 state likewise; a float64
    state is refused."""
    from audiomamba.kernels.errors import KernelError
    from audiomamba.kernels.reference import selective_state_update_ref
    from audiomamba.kernels.triton_step import selective_state_update_triton
    from kernel_helpers import assert_bf16_rounded

    u, delta, A, B, C, D, z, db = make_args(2, 5, 3, 1, cplx=False, lti=lti, seed=9)
    dt = delta if lti else delta[:, :, 0]
    Bt, Ct = (B, C) if lti else (B[:, :, 0], C[:, :, 0])
    h0 = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(1)).bfloat16()
    h_tri, h_ref = h0.clone(), h0.clone()
    y_tri = selective_state_update_triton(h_tri, u[:, :, 0], dt, A, Bt, Ct, D, z[:, :, 0], db, True, block_d=2)
    y_ref = selective_state_update_ref(h_ref, u[:, :, 0], dt, A, Bt, Ct, D, z[:, :, 0], db, True)
    torch.testing.assert_close(y_tri, y_ref, atol=1e-5, rtol=1e-5)
    assert h_tri.dtype == torch.bfloat16 and not torch.equal(h_tri, h0)
    assert_bf16_rounded(h_tri, h_ref)
    # float16 (``--states fp16``): the same, with float16's rounding
    h16_tri, h16_ref = h0.half(), h0.half()
    y16_tri = selective_state_update_triton(h16_tri, u[:, :, 0], dt, A, Bt, Ct, D, z[:, :, 0], db, True, block_d=2)
    y16_ref = selective_state_update_ref(h16_ref, u[:, :, 0], dt, A, Bt, Ct, D, z[:, :, 0], db, True)
    torch.testing.assert_close(y16_tri, y16_ref, atol=1e-5, rtol=1e-5)
    assert h16_tri.dtype == torch.float16
    torch.testing.assert_close(h16_tri.float(), h16_ref.float(), atol=0, rtol=2.0 ** -10)
    with pytest.raises(KernelError, match="float32, bfloat16 or float16"):
        kernels.selective_state_update(h0.double(), u[:, :, 0], dt, A, Bt, Ct, D, z[:, :, 0], db, True)


def test_scan_config_env_override_and_errors(monkeypatch):
    from audiomamba.kernels import tuning

    # (the config string sets the scan kernels; fully-LTI calls keep the chunked path's defaults on top)
    lti = dict(lti_chunk=tuning.LTI_CHUNK)
    monkeypatch.setenv("AUDIOMAMBA_SCAN_CONFIG", "32,2,1,4,8")
    assert pick_config(8, 128, 16, 4096, False) == ScanConfig(32, 2, 1, 4, 8, **lti)
    monkeypatch.setenv("AUDIOMAMBA_SCAN_CONFIG", "32,2,1,4,8,1024")
    assert pick_config(8, 128, 16, 4096, False) == ScanConfig(32, 2, 1, 4, 8, 1024, **lti)
    monkeypatch.delenv("AUDIOMAMBA_SCAN_CONFIG")
    cfg = pick_config(16, 128, 16, 16384, True)
    assert cfg.seq_fwd and cfg.block_d_fwd == 32 * cfg.warps_fwd and cfg.block_d_bwd * 16 * cfg.block_l <= 1024
    assert str(parse_config(str(cfg))) == str(cfg)
    assert pick_config(16, 128, 64, 16384, False).block_l == 16  # N = 64 (S4 blocks): shorter chunks
    assert pick_config(2, 4, 4, 7, False).block_l == 16
    from audiomamba.kernels.errors import KernelError

    with pytest.raises(KernelError, match="AUDIOMAMBA_SCAN_CONFIG"):
        parse_config("64,3,1,4,4")
    with pytest.raises(KernelError, match="AUDIOMAMBA_SCAN_CONFIG"):
        parse_config("64,2,1,4,4,32")  # segment shorter than a chunk
    assert pick_config(8, 128, 16, 131072, False).seg_l > 0  # long L: chunk-parallel segments
    assert pick_config(64, 2048, 16, 2048, False).seg_l == 0  # enough programs without segments
    assert not pick_config(8, 128, 16, 4096, False).bwd_partials
    # the state-loop backward: the default, over 128 steps for real A and 256 for complex; env and config-string overrides
    assert pick_config(16, 128, 16, 16000, False).bwd_loop == 128
    assert pick_config(16, 128, 16, 16000, True).bwd_loop == 256
    assert parse_config("32,32,1,1,1,256,seq,loop64") == ScanConfig(32, 32, 1, 1, 1, 256, True, bwd_loop=64)
    assert str(parse_config("32,32,1,1,1,256,seq,loop64")) == "32,32,1,1,1,256,seq,loop64"
    with pytest.raises(KernelError, match="AUDIOMAMBA_SCAN_CONFIG"):
        parse_config("32,32,1,1,1,256,seq,loop3")
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_LOOP", "0")
    assert pick_config(16, 128, 16, 16000, False).bwd_loop == 0
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_LOOP", "256")
    assert pick_config(16, 128, 16, 16000, True).bwd_loop == 256
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_LOOP", "100")
    with pytest.raises(KernelError, match="AUDIOMAMBA_SCAN_BWD_LOOP"):
        pick_config(8, 128, 16, 4096, False)
    monkeypatch.delenv("AUDIOMAMBA_SCAN_BWD_LOOP")
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_PARTIALS", "1")
    assert pick_config(8, 128, 16, 4096, False).bwd_partials
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_PARTIALS", "yes")
    with pytest.raises(KernelError, match="AUDIOMAMBA_SCAN_BWD_PARTIALS"):
        pick_config(8, 128, 16, 4096, False)
    monkeypatch.delenv("AUDIOMAMBA_SCAN_BWD_PARTIALS")
    # the sequential forward's compile (unit-L-stride specialisation or not) and steps per tile
    assert not pick_config(8, 128, 16, 4096, False).seq_lanes and pick_config(8, 128, 16, 4096, False).seq_sub_l == 0
    monkeypatch.setenv("AUDIOMAMBA_SCAN_SEQ_LANES", "1")
    monkeypatch.setenv("AUDIOMAMBA_SCAN_SEQ_SUB_L", "4")
    cfg = pick_config(8, 128, 16, 4096, False)
    assert cfg.seq_lanes and cfg.seq_sub_l == 4
    for name, bad in (("AUDIOMAMBA_SCAN_SEQ_LANES", "2"), ("AUDIOMAMBA_SCAN_SEQ_SUB_L", "3")):
        monkeypatch.setenv(name, bad)
        with pytest.raises(KernelError, match=name):
            pick_config(8, 128, 16, 4096, False)
        monkeypatch.delenv(name)
    # the state-loop backward's reverse scan, its inline lane flip, and the ALIGN promise
    cfg = pick_config(8, 128, 16, 4096, False)
    assert not cfg.bwd_flip and not cfg.bwd_lane_asm and cfg.align
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_FLIP", "1")
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_LANE_ASM", "1")
    monkeypatch.setenv("AUDIOMAMBA_SCAN_ALIGN", "0")
    cfg = pick_config(8, 128, 16, 4096, False)
    assert cfg.bwd_flip and cfg.bwd_lane_asm and not cfg.align
    for name in ("AUDIOMAMBA_SCAN_BWD_FLIP", "AUDIOMAMBA_SCAN_BWD_LANE_ASM", "AUDIOMAMBA_SCAN_ALIGN"):
        monkeypatch.setenv(name, "on")
        with pytest.raises(KernelError, match=name):
            pick_config(8, 128, 16, 4096, False)
        monkeypatch.delenv(name)
    # the forward's and the backward's segment lengths (auto, one segment, a power of two)
    assert pick_config(8, 128, 16, 131072, False).seg_l_bwd == -1
    for name, field, good, bad in (("AUDIOMAMBA_SCAN_SEG_L", "seg_l", 512, "100"),
                                   ("AUDIOMAMBA_SCAN_BWD_SEG_L", "seg_l_bwd", 16384, "1000")):
        for value in (0, good):
            monkeypatch.setenv(name, str(value))
            assert getattr(pick_config(8, 128, 16, 131072, False), field) == value
        monkeypatch.setenv(name, bad)
        with pytest.raises(KernelError, match=name):
            pick_config(8, 128, 16, 131072, False)
        monkeypatch.delenv(name)
    # software pipelining of the state-loop backward's and the sequential forward's loops
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_STAGES", "2")
    monkeypatch.setenv("AUDIOMAMBA_SCAN_FWD_STAGES", "3")
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_UNROLL_N", "2")
    cfg = pick_config(8, 128, 16, 4096, False)
    assert (cfg.bwd_stages, cfg.fwd_stages, cfg.bwd_unroll_n) == (2, 3, 2)
    for name in ("AUDIOMAMBA_SCAN_BWD_STAGES", "AUDIOMAMBA_SCAN_FWD_STAGES", "AUDIOMAMBA_SCAN_BWD_UNROLL_N"):
        monkeypatch.setenv(name, "4")
        with pytest.raises(KernelError, match=name):
            pick_config(8, 128, 16, 4096, False)
        monkeypatch.delenv(name)


def test_pass1_sum_warps_and_short_sequence_segments_as_measured(monkeypatch):
    """The picks timed on 2026-12-07 (one H100): pass 1 as a sum with 4 warps for 16-bit inputs and 2 for float32 at
    N <= 16, the scan form above and where set to 0 (env or config); and the sequential forward's segments at L <= 4096
    aiming at 2048 programs (512 steps at (8, 2048, 16, 2048)), while longer L and the U-Net levels keep theirs."""
    from audiomamba.kernels.tuning import local_sum_warps

    for name in ("AUDIOMAMBA_SCAN_BWD_LOCAL_SUM", "AUDIOMAMBA_SCAN_SEG_L", "AUDIOMAMBA_SCAN_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    cfg = pick_config(8, 128, 16, 131072, False)
    assert cfg.bwd_local_sum == -1
    assert local_sum_warps(cfg, torch.bfloat16, 16) == 4 and local_sum_warps(cfg, torch.float16, 16) == 4
    assert local_sum_warps(cfg, torch.float32, 16) == 2 and local_sum_warps(cfg, torch.float32, 64) == 0
    assert local_sum_warps(ScanConfig(bwd_local_sum=0), torch.bfloat16, 16) == 0
    assert local_sum_warps(ScanConfig(bwd_local_sum=8), torch.float32, 64) == 8
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_LOCAL_SUM", "0")
    assert local_sum_warps(pick_config(8, 128, 16, 131072, False), torch.bfloat16, 16) == 0
    monkeypatch.delenv("AUDIOMAMBA_SCAN_BWD_LOCAL_SUM")
    segs = {shape: pick_config(*shape, False).seg_l for shape in (
        (8, 2048, 16, 2048), (16, 512, 16, 1024), (16, 512, 16, 1000), (16, 256, 16, 4000), (16, 128, 16, 16384),
        (8, 128, 16, 131072))}
    assert list(segs.values()) == [512, 256, 256, 256, 256, 1024], segs


def test_backward_segments_and_register_cap_as_measured(monkeypatch):
    """The picks timed on 2026-12-07 04:39 (one H100): the backward cuts L into segments of at most 16384 steps for real
    A where it cuts at all (8 at (8, 128, 16, 131072), 2 before), the shapes with one segment and complex A keep
    theirs; and the state loop is capped at 128 registers for real A with 16-bit inputs only, 0 (env) turning it off."""
    from audiomamba.kernels.tuning import bwd_maxnreg, pick_seg_l, pick_seg_l_bwd

    for name in ("AUDIOMAMBA_SCAN_BWD_MAXNREG", "AUDIOMAMBA_SCAN_BWD_SEG_L", "AUDIOMAMBA_SCAN_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert pick_seg_l(8, 128, 131072, 32, 1) == 65536
    assert pick_seg_l_bwd(8, 128, 131072, 32, 1, False) == 16384
    assert pick_seg_l_bwd(8, 128, 131072, 32, 1, True) == 65536
    for shape in ((16, 128, 16384), (16, 512, 1024), (8, 2048, 2048), (16, 256, 4000), (16, 512, 1000)):
        assert pick_seg_l_bwd(shape[0], shape[1], shape[2], 32, 1, False) == 0, shape
    assert pick_seg_l_bwd(1, 64, 65536, 32, 1, False) == pick_seg_l(1, 64, 65536, 32, 1) == 2048  # below the cap
    cfg = pick_config(8, 128, 16, 131072, False)
    assert cfg.bwd_maxnreg == -1
    assert bwd_maxnreg(cfg, torch.bfloat16, False) == 128 and bwd_maxnreg(cfg, torch.float16, False) == 128
    assert bwd_maxnreg(cfg, torch.float32, False) == 0 and bwd_maxnreg(cfg, torch.bfloat16, True) == 0
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_MAXNREG", "0")
    assert bwd_maxnreg(pick_config(8, 128, 16, 131072, False), torch.bfloat16, False) == 0


def test_pick_config_cache_keys_on_every_variable_it_reads(monkeypatch):
    """pick_config caches per shape and environment: every AUDIOMAMBA_* variable that the tuning module reads is
    in the key, and a changed variable gives a new config (a stale one would time the wrong kernel in a sweep)."""
    import inspect
    import re

    from audiomamba.kernels import tuning

    read = set(re.findall(r'"(AUDIOMAMBA_[A-Z_]+)"', inspect.getsource(tuning)))
    assert read and read <= set(tuning._ENV_NAMES), read - set(tuning._ENV_NAMES)
    monkeypatch.delenv("AUDIOMAMBA_SCAN_BWD_LOOP", raising=False)
    assert pick_config(16, 128, 16, 16000, False).bwd_loop == 128
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_LOOP", "256")
    assert pick_config(16, 128, 16, 16000, False).bwd_loop == 256


def test_fast_launch_key_sees_what_triton_specialises():
    """kernels.launch keys a compiled kernel on what Triton specialises: a tensor's dtype and 16-byte alignment (the
    integers go into the key by value); and it steps aside in the interpreter."""
    from audiomamba.kernels import launch

    x = torch.zeros(64)
    assert launch._tensor_key(x) != launch._tensor_key(x[1:])            # 4 bytes off alignment
    assert launch._tensor_key(x) != launch._tensor_key(x.double())
    assert launch._tensor_key(x[4:]) == launch._tensor_key(x)            # 16 bytes on: the same specialisation
    # interpreted (these tests), Triton's launch returns no compiled kernel: nothing is cached, every call is Triton's
    launch._CACHE.clear()
    args = make_args(1, 4, 2, 16, cplx=False, lti=False, seed=2)
    assert_match(*run_both(args, ALL_OPTS, block_d=2, seq=True, loop=16))
    assert not launch._CACHE
    # Triton's launch hooks: an empty chain (the default since 3.6) lets the direct launch run, a hook stops it
    from triton import knobs

    assert not launch._hooks_set()
    assert launch._hook_active(lambda *a: None) and not launch._hook_active(None)
    chain = knobs.HookChain()
    assert not launch._hook_active(chain)
    chain.add(print)
    assert launch._hook_active(chain)


def test_cluster_launch_metadata() -> None:
    """kernels.launch.launch_cluster runs a compiled kernel's own launcher with its packed metadata asking for one
    cluster: Triton 3.4+ packs (num_warps, num_ctas, shared) and clusters num_ctas CTAs; older versions pack the
    cluster's dimensions after them. More than 16 CTAs (no cluster on sm_90) is refused before anything runs; past the
    portable 8 allow_cluster asks the driver (a CPU test: refused before that)."""
    from audiomamba.kernels import launch

    assert launch.cluster_packed_metadata((4, 1, 512), 8) == (4, 8, 512)
    assert launch.cluster_packed_metadata((4, 1, 512, 1, 1, 1), 4) == (4, 1, 512, 4, 1, 1)
    with pytest.raises(RuntimeError, match="no known cluster fields"):
        launch.cluster_packed_metadata((4, 1), 2)

    class Compiled:
        packed_metadata = (2, 1, 0)
        function = object()

        def run(self, *args):
            raise AssertionError("not launched here")

    c = Compiled()
    proxy = launch._ClusterLaunch(c, 8)
    assert proxy.packed_metadata == (2, 8, 0) and proxy.function is c.function and proxy.compiled is c
    with pytest.raises(ValueError, match="1 to 16"):
        launch.launch_cluster(object(), 17, torch.zeros(1))
    launch.allow_cluster(c, 8)  # portable: nothing to ask


def test_named_launch_binds_arguments_in_the_kernels_order():
    """kernels.launch.launch_named: positional and keyword arguments, constexprs and defaults land in the kernel's
    parameter order (what the compiled kernel's launcher takes), launch options apart; a spy in a kernel's place and
    the interpreter take Triton's own launch."""

    import triton.language as tl
    from audiomamba.kernels import launch
    from audiomamba.kernels.triton_mamba_step import _out_proj_kernel
    from triton.runtime.jit import JITFunction

    assert launch._signature(_out_proj_kernel) is None  # the interpreter's function: Triton's launch

    def toy(x_ptr, y_ptr, n, scale, BLOCK: tl.constexpr, FLAG: tl.constexpr = False, K: tl.constexpr = 4, m=3):
        pass

    jit = JITFunction(toy)  # as on a GPU (nothing compiles here)
    sig = launch._signature(jit)
    assert sig[0] == ("x_ptr", "y_ptr", "n", "scale", "BLOCK", "FLAG", "K", "m") and sig[2] == set(sig[0])
    values, options = launch._bind(sig, ("x", "y", 7), {"scale": 0.5, "BLOCK": 32, "num_warps": 8, "K": 2,
                                                        "launch_pdl": False})
    assert values == ["x", "y", 7, 0.5, 32, False, 2, 3]
    assert options == (("num_warps", 8), ("launch_pdl", False))
    assert launch._signature(object()) is None
    launch._NAMED.clear()
    grids = []

    class Spy:
        def __getitem__(self, grid):
            grids.append(grid)
            return lambda *a, **k: None

    launch.launch_named(Spy(), (3, 1), torch.zeros(2), 5, FLAG=True)
    assert grids == [(3, 1)] and not launch._NAMED


def test_row_align_promise():
    """The kernels' ALIGN: the largest of 8, 4, 2, 1 dividing L and every row stride, never more."""
    assert triton_scan._row_align(16000, [16 * 16000, 16000]) == 1  # the launcher marks multiples of 16
    assert triton_scan._row_align(16000, [16 * 16000, 8008]) == 8
    assert triton_scan._row_align(1000, [512 * 1000, 1000]) == 8
    assert triton_scan._row_align(250, [512 * 250, 250]) == 2
    assert triton_scan._row_align(1000, [1000, 1001]) == 1   # a padded row stride breaks the promise
    assert triton_scan._row_align(52, [0, 52]) == 4           # a broadcast (stride 0) row keeps it
    assert triton_scan._row_align(37, []) == 1


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_empty_sequence(cplx):
    """L = 0: empty y, zero last state and zero parameter grads on every implementation."""
    args = [x.requires_grad_() for x in make_args(2, 3, 4, 0, cplx=cplx, lti=False)]
    for fn in (selective_scan_ref, kernels.selective_scan_assoc, triton_scan.selective_scan_triton):
        y, h = fn(*args, return_last_state=True)
        assert y.shape == (2, 3, 0) and h.shape == (2, 3, 4) and not h.abs().any()
        grads = torch.autograd.grad(y.sum(), args[:5], allow_unused=True)
        assert all(g is None or not g.abs().any() for g in grads)
