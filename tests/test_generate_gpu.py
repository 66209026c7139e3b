"""Generation on CUDA with graph capture: log-likelihoods equal the parallel forward (skips without a GPU)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from audiomamba.generate import SamplingConfig, generate_tokens
from audiomamba.model import build_model
from audiomamba.tokenizer import shift_right

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("center", ["mamba-s6", "s4-mlp", "mha-mlp"])
def test_graph_generation_matches_forward_and_eager(center: str) -> None:
    torch.manual_seed(0)
    cfg = {"d_model": 32, "pool": [4, 4], "levels": [{"block": "mamba-s4", "n": 1}, {"block": "mamba-s6", "n": 1}],
           "center": {"block": center, "n": 1}}
    model = build_model(cfg).cuda().eval()
    prompt = torch.randint(0, 256, (3, 40))
    graph = generate_tokens(model, 3, 160, 3, SamplingConfig(), seed=5, prompts=prompt, device="cuda",
                            use_graph=True, progress=False)
    assert torch.equal(graph.tokens[:, :40], prompt)
    with torch.no_grad():
        logits = model(shift_right(graph.tokens.cuda())).double()
    ref = F.log_softmax(logits, -1).gather(-1, graph.tokens.cuda()[..., None])[..., 0].cpu()
    assert (graph.logp.double() - ref).abs().max() < 2e-3
    again = generate_tokens(model, 3, 160, 3, SamplingConfig(), seed=5, prompts=prompt, device="cuda",
                            use_graph=True, progress=False)
    assert torch.equal(graph.tokens, again.tokens)  # same seed, same samples
    assert set(graph.startup) == {"states", "warm-up", "capture"} and sum(graph.startup.values()) < graph.seconds
    greedy = generate_tokens(model, 3, 64, 3, SamplingConfig(temperature=0), device="cuda", use_graph=True, progress=False)
    eager = generate_tokens(model, 3, 64, 3, SamplingConfig(temperature=0), device="cuda", use_graph=False, progress=False)
    assert (greedy.tokens != eager.tokens).float().mean() < 0.05  # same arg-max path up to float ties


@pytest.mark.parametrize("batch", [1, 32])
def test_graph_generation_with_bf16_states(batch: int) -> None:
    """bf16 states through the fused kernels in CUDA graphs (one stream: the runs of LTI blocks too; 32 rows: the
    batched tiles): the prompt's log-probabilities stay within 0.05 nats of the parallel forward's, and the states
    the stepper holds are bf16 (complex ones complex64)."""
    from audiomamba.generate.stepper import Stepper

    torch.manual_seed(0)
    cfg = {"d_model": 32, "pool": [4, 4], "levels": [{"block": "mamba-s4", "n": 1}, {"block": "mamba-s6", "n": 1}],
           "center": {"block": "mamba-s4-real", "n": 1}}
    model = build_model(cfg).cuda().eval()
    prompt = torch.randint(0, 256, (batch, 160))
    gen = generate_tokens(model, batch, 160, batch, SamplingConfig(), seed=5, prompts=prompt, device="cuda",
                          use_graph=True, progress=False, state_dtype=torch.bfloat16)
    with torch.no_grad():
        logits = model(shift_right(prompt.cuda())).double()
    ref = F.log_softmax(logits, -1).gather(-1, prompt.cuda()[..., None])[..., 0].cpu()
    assert 0 < (gen.logp.double() - ref).abs().max() < 0.05
    state = Stepper(model, batch, torch.device("cuda"), SamplingConfig(), state_dtype=torch.bfloat16).init_state()
    dtypes = {t.dtype for t in torch.utils._pytree.tree_leaves(state) if isinstance(t, torch.Tensor)}
    assert {torch.bfloat16, torch.complex64} <= dtypes


def test_step_consistency_with_the_faster_settings() -> None:
    """``step_consistency(fast=True)`` on a GPU: the fused step with bf16 states, with bf16 tiles (2 clips repeated to
    16 rows, so the batched kernels run) and with both, beside the default paths, within the same limits on a tiny
    U-Net."""
    from audiomamba.generate.diagnose import format_consistency, step_consistency

    torch.manual_seed(0)
    cfg = {"d_model": 32, "pool": [4, 4], "levels": [{"block": "mamba-s6", "n": 1}, {"block": "mamba-s4-real", "n": 1}],
           "center": {"block": "mamba-s6", "n": 1}}
    model = build_model(cfg).cuda().eval()
    result = step_consistency(model, torch.randint(0, 256, (2, 64), device="cuda"), reference_scan=False, fast=True)
    assert {"step_fused_bf16_states", "step_fused_bf16_tiles", "step_fused_bf16_tiles_states",
            "step_composed_bf16_states", "step_fused_fp16_states", "step_composed_fp16_states",
            "step_fused_bf16_tiles_fp16_states", "step_fused_tf32_tiles_fp16_states"} <= set(result["paths"])
    assert result["agree"] and result["fast_agree"], format_consistency(result)


@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.get_device_capability()[0] < 9, reason="PDL needs sm_90+")
@pytest.mark.parametrize("batch", [1, 32])
def test_pdl_changes_no_sample(monkeypatch, batch: int) -> None:
    """AUDIOMAMBA_PDL=1 (programmatic dependent launch of the step kernels) gives bit-identical samples
    and log-probabilities in CUDA graphs: each kernel waits for its predecessor before touching memory."""
    runs = _generate_under(monkeypatch, "AUDIOMAMBA_PDL", ("0", "1"), batch, 320, center="mamba-s4", n_outer=2)
    assert torch.equal(runs[0].tokens, runs[1].tokens) and torch.equal(runs[0].logp, runs[1].logp)


@pytest.mark.parametrize("graph", [True, False])
def test_row_groups_on_streams_change_no_sample(monkeypatch, graph: bool) -> None:
    """Rows stepped in groups on their own CUDA streams (AUDIOMAMBA_STEP_GROUPS; uneven groups of 22 + 21 + 21
    rows, a prompt on some steps; 4 groups of 16) draw the same tokens as one group, in CUDA graphs and eagerly, whether
    the warm-up before the capture steps one group of each size (the default) or every group. float32 states: with
    float16 ones (the default from 16 rows) the pooling layers' cuBLAS products, which pick another algorithm for
    another row count, shift a state by a float32 ulp that can flip its float16 rounding (an H100, 2026-12-05 17:50:
    up to 1.05e-5 nats against 1.4e-6 with float32 states, same tokens)."""
    torch.manual_seed(0)
    monkeypatch.setenv("AUDIOMAMBA_STEP_STATES", "fp32")
    cfg = {"d_model": 32, "pool": [4, 4], "levels": [{"block": "mamba-s6", "n": 2}, {"block": "mamba-s4-real", "n": 1}],
           "center": {"block": "mamba-s4", "n": 1}}
    model = build_model(cfg).cuda().eval()
    prompt = torch.randint(0, 256, (64, 24))
    runs = []
    for groups, warmup in (("1", "distinct"), ("3", "distinct"), ("3", "all"), ("4", "distinct")):
        monkeypatch.setenv("AUDIOMAMBA_STEP_GROUPS", groups)
        monkeypatch.setenv("AUDIOMAMBA_STEP_WARMUP", warmup)
        runs.append(generate_tokens(model, 64, 320, 64, SamplingConfig(), seed=3, prompts=prompt, device="cuda",
                                    use_graph=graph, progress=False))
    for other in runs[1:]:
        assert torch.equal(runs[0].tokens, other.tokens)
        assert torch.allclose(runs[0].logp, other.logp, rtol=0, atol=1e-5)


@pytest.mark.parametrize("pdl", ["0", "1"])
@pytest.mark.parametrize("batch", [1, 3])
def test_block_runs_change_no_sample(monkeypatch, pdl: str, batch: int) -> None:
    """AUDIOMAMBA_STEP_RUNS=1 (each run of Mamba blocks as one persistent launch with grid barriers), =cluster (the
    same as one thread-block cluster where it has at most 16 programs) and =split (one launch per phase) in CUDA graphs, with and without PDL, teacher-forced through 640 tokens (a sampled token could
    flip on a float32 tie and the rest of its row would differ): log-probabilities as the per-block launches' within
    float32 rounding (the sums over channels are ordered differently), and the first free-running samples equal."""
    torch.manual_seed(0)
    cfg = {"d_model": 64, "pool": [4, 4], "levels": [{"block": "mamba-s6", "n": 3}, {"block": "mamba-s4-real", "n": 2}],
           "center": {"block": "mamba-s4", "n": 2}}
    model = build_model(cfg).cuda().eval()
    monkeypatch.setenv("AUDIOMAMBA_PDL", pdl)
    prompt = torch.randint(0, 256, (batch, 640), generator=torch.Generator().manual_seed(1))
    forced, free = {}, {}
    for flag in ("0", "1", "split", "cluster", ""):  # "": unset, the default (LTI runs, as clusters)
        monkeypatch.setenv("AUDIOMAMBA_STEP_RUNS", flag)
        forced[flag] = generate_tokens(model, batch, 640, batch, SamplingConfig(), seed=3, prompts=prompt,
                                       device="cuda", use_graph=True, progress=False)
        free[flag] = generate_tokens(model, batch, 32, batch, SamplingConfig(), seed=3, device="cuda",
                                     use_graph=True, progress=False)
    for flag in ("1", "split", "cluster", ""):
        assert torch.equal(forced[flag].tokens, prompt)
        assert torch.allclose(forced[flag].logp, forced["0"].logp, rtol=0, atol=1e-3)
        assert torch.equal(free[flag].tokens, free["0"].tokens)


@pytest.mark.parametrize("prompt_len", [0, 500])
def test_write_samples_judges_noise_on_the_gpu(tmp_path, monkeypatch, prompt_len: int) -> None:
    """``write_samples(device="cuda")`` judges every sample's noise on the GPU (from the tokens, on a thread of its
    own) while the pool writes the WAVs: the same files and verdicts as the CPU's pool, statistics within 1e-5; with a
    prompt, only the part after it is judged on both."""
    from audiomamba.generate import output
    from audiomamba.generate.output import write_samples
    from audiomamba.generate.sampler import Generated

    monkeypatch.setattr(output, "NOISE_GPU_MIN_ROWS", 1)  # 12 rows judged on the GPU (by default: the CPU's pool)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(100, 156, (12, 4000), generator=g)
    tokens[3] = torch.randint(0, 256, (4000,), generator=g)  # loud noise throughout
    gen = Generated(tokens, -torch.rand(12, 4000, generator=g) * 5, prompt_len, 1.0)
    cpu = write_samples(gen, tmp_path / "cpu", sashimi_filter=True, spectrogram_count=0)
    timings: dict[str, float] = {}
    gpu = write_samples(gen, tmp_path / "gpu", sashimi_filter=True, spectrogram_count=0, device="cuda", timings=timings)
    assert timings["noise"] > 0 and cpu[3]["noise"]
    for c, r in zip(cpu, gpu, strict=True):
        assert {k: v for k, v in c.items() if not isinstance(v, float)} == {k: v for k, v in r.items() if not isinstance(v, float)}
        assert all(abs(c[k] - r[k]) <= 1e-5 for k in c if isinstance(c[k], float))  # the index rounds to 5 decimals
        assert (tmp_path / "cpu" / c["file"]).read_bytes() == (tmp_path / "gpu" / r["file"]).read_bytes()


def test_wavs_written_while_the_gpu_samples(tmp_path, monkeypatch) -> None:
    """generate_to_folder on the GPU with CUDA graphs: the WavSink copies each chunk after its event on a stream of
    its own while the replays go on (48 rows in 2 batches, chunks of 160 steps); the folder is byte for byte the one
    written after sampling, and no file was written at the end."""
    import audiomamba.generate.output as output
    from audiomamba.generate import generate_to_folder

    torch.manual_seed(0)
    cfg = {"d_model": 32, "pool": [4, 4], "levels": [{"block": "mamba-s6", "n": 1}, {"block": "mamba-s4-real", "n": 1}],
           "center": {"block": "mamba-s6", "n": 1}}
    model = build_model(cfg).cuda().eval()
    monkeypatch.setattr(output, "SINK_CHUNK", 160)
    saved = []
    real_save = output.save_pcm16
    monkeypatch.setattr(output, "save_pcm16", lambda *a: saved.append(a[0]) or real_save(*a))
    folders = []
    for ahead in (True, False):
        out = tmp_path / str(ahead)
        timings: dict[str, float] = {}
        saved.clear()
        generate_to_folder(model, out, n=48, seconds=0.05, batch=24, sampling=SamplingConfig(), seed=5,
                           sashimi_filter=True, device="cuda", progress=False, timings=timings, write_ahead=ahead)
        assert len(saved) == (0 if ahead else 48) and not (out / ".partial").exists()
        folders.append({str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.wav"))})
    assert folders[0] == folders[1] and len(folders[0]) == 48


def test_a_capture_survives_the_sinks_copy_in_its_thread(tmp_path, monkeypatch) -> None:
    """The WavSink's thread may copy the previous batch's last chunk (an event wait, a copy to the CPU on its own
    stream) while the next batch's graphs are captured: on an H100 (2026-12-06) that invalidated the capture under
    the default "global" capture mode. Here the sink's own write runs in its thread inside every capture, for sure."""
    import threading

    from audiomamba.generate.output import WavSink

    sink = WavSink(tmp_path, n=4, length=64)
    tokens = torch.randint(0, 256, (64, 4), device="cuda")
    event = torch.cuda.Event()
    event.record()
    real_begin = torch.cuda.CUDAGraph.capture_begin
    copies, active = [], [True]

    def begin(self, *args, **kwargs):
        real_begin(self, *args, **kwargs)
        if not active[0]:
            return
        worker = threading.Thread(target=lambda: copies.append(sink._write(0, tokens, 0, 64, event)))
        worker.start()
        worker.join()

    monkeypatch.setattr(torch.cuda.CUDAGraph, "capture_begin", begin)
    torch.manual_seed(0)
    cfg = {"d_model": 32, "pool": [4, 4], "levels": [{"block": "mamba-s6", "n": 1}, {"block": "mamba-s4-real", "n": 1}],
           "center": {"block": "mamba-s6", "n": 1}}
    model = build_model(cfg).cuda().eval()
    runs = []
    for with_copy in (True, False):
        active[0] = with_copy
        runs.append(generate_tokens(model, 2, 64, 2, SamplingConfig(), seed=5, device="cuda", use_graph=True,
                                    progress=False))
    assert copies and (sink.written == 64).all()
    assert torch.equal(runs[0].tokens, runs[1].tokens) and torch.equal(runs[0].logp, runs[1].logp)
    sink.close()


@pytest.mark.parametrize("batch", [1, 32])
def test_direct_launches_change_no_sample(monkeypatch, batch: int) -> None:
    """The step kernels' direct launches (kernels.launch.launch_named, the default) draw the same tokens as Triton's
    own launch (AUDIOMAMBA_FAST_LAUNCH=0), in CUDA graphs, one stream (PDL) and a batch; they are used."""
    from audiomamba.kernels import launch
    from audiomamba.kernels.triton_mamba_step import _in_conv_kernel, _ssm_kernel

    used = []
    runs = _generate_under(monkeypatch, "AUDIOMAMBA_FAST_LAUNCH", ("0", "1"), batch, 160, center="mamba-s6",
                           before=launch._NAMED.clear, after=lambda: used.append(bool(launch._NAMED)))
    assert used == [False, True]
    assert torch.equal(runs[0].tokens, runs[1].tokens)
    assert torch.allclose(runs[0].logp, runs[1].logp, rtol=0, atol=1e-6)
    if batch > 1:
        assert {key[0] for key in launch._NAMED} >= {_in_conv_kernel, _ssm_kernel}


def _generate_under(monkeypatch, var: str, values: tuple[str, ...], batch: int, length: int, center: str,
                    n_outer: int = 1, before=None, after=None) -> list:
    """The same seeded generation (a tiny U-Net: ``n_outer`` mamba-s6 blocks, a mamba-s4-real level, ``center``; CUDA
    graphs) once per value of the environment variable ``var``; ``before``/``after`` run around each."""
    torch.manual_seed(0)
    cfg = {"d_model": 32, "pool": [4, 4], "levels": [{"block": "mamba-s6", "n": n_outer},
                                                     {"block": "mamba-s4-real", "n": 1}],
           "center": {"block": center, "n": 1}}
    model = build_model(cfg).cuda().eval()
    runs = []
    for value in values:
        monkeypatch.setenv(var, value)
        if before is not None:
            before()
        runs.append(generate_tokens(model, batch, length, batch, SamplingConfig(), seed=3, device="cuda",
                                    use_graph=True, progress=False))
        if after is not None:
            after()
    return runs


@pytest.mark.parametrize("pool,batch,groups", [([4, 4], 1, "1"), ([4, 4], 64, "3"), ([2, 3, 2], 3, "1")])
def test_sub_period_graphs_change_no_greedy_sample(monkeypatch, pool: list[int], batch: int, groups: str) -> None:
    """AUDIOMAMBA_STEP_GRAPH=sub (the default: one CUDA graph per depth of the inner levels, each of pool[0] steps,
    the inner pooling buffers shifting) against =period (one graph of the whole period): greedy samples and a prompt's
    log-probabilities as the period graph's, for one stream (runs of blocks), row groups on streams and three levels
    (an attention center with its KV cache). The sampling noise is drawn per graph, so only greedy draws compare."""
    torch.manual_seed(0)
    levels = ["mamba-s6", "mamba-s4-real", "mamba-s4"][:len(pool)]
    cfg = {"d_model": 32, "pool": pool, "levels": [{"block": b, "n": 1} for b in levels],
           "center": {"block": "mha-mlp" if len(pool) > 2 else "mamba-s6", "n": 1}}
    model = build_model(cfg).cuda().eval()
    monkeypatch.setenv("AUDIOMAMBA_STEP_GROUPS", groups)
    period = model.config.pool_product
    P = 2 * period + pool[0] + 1  # the prompt ends inside a sub-period
    prompt = torch.randint(0, 256, (batch, P))
    runs = []
    for span in ("period", "sub"):
        monkeypatch.setenv("AUDIOMAMBA_STEP_GRAPH", span)
        runs.append(generate_tokens(model, batch, 10 * period, batch, SamplingConfig(temperature=0), prompts=prompt,
                                    device="cuda", use_graph=True, progress=False))
    assert torch.equal(runs[0].tokens, runs[1].tokens)
    assert torch.allclose(runs[0].logp, runs[1].logp, rtol=0, atol=1e-6)
    assert torch.equal(runs[1].tokens[:, :P], prompt)
    with torch.no_grad():  # after the prompt every token is the forward's arg-max (a stale forced token would not be)
        best = model(shift_right(runs[1].tokens.cuda())).argmax(-1).cpu()
    assert (best[:, P:] != runs[1].tokens[:, P:]).float().mean() < 0.02


@pytest.mark.parametrize("graph", ["sub", "period"])
@pytest.mark.parametrize("batch,groups", [(1, "1"), (48, "3")])
def test_inner_levels_on_side_streams_change_no_sample_on_the_gpu(monkeypatch, graph: str, batch: int,
                                                                    groups: str) -> None:
    """AUDIOMAMBA_STEP_OVERLAP=1 on a GPU (the inner levels on side streams inside the CUDA graphs, one stream and
    row groups on their streams; sub-period graphs, then starting where the outer level's inner level runs, and
    whole-period graphs): a teacher-forced prompt's log-probabilities and the greedy continuation as with the inner
    levels in line, so no refill was read before its side stream finished. Greedy: the offset graphs draw their
    noise in other chunks."""
    torch.manual_seed(0)
    cfg = {"d_model": 32, "pool": [4, 4], "levels": [{"block": "mamba-s6", "n": 2}, {"block": "mamba-s4-real", "n": 1}],
           "center": {"block": "mamba-s6", "n": 1}}
    model = build_model(cfg).cuda().eval()
    monkeypatch.setenv("AUDIOMAMBA_STEP_GRAPH", graph)
    monkeypatch.setenv("AUDIOMAMBA_STEP_GROUPS", groups)
    P = 200
    prompt = torch.randint(0, 256, (batch, P), generator=torch.Generator().manual_seed(2))
    runs = []
    for overlap in ("0", "1"):
        monkeypatch.setenv("AUDIOMAMBA_STEP_OVERLAP", overlap)
        runs.append(generate_tokens(model, batch, 640, batch, SamplingConfig(temperature=0), prompts=prompt,
                                    device="cuda", use_graph=True, progress=False))
    assert torch.equal(runs[1].tokens[:, :P], prompt)
    assert torch.allclose(runs[0].logp[:, :P], runs[1].logp[:, :P], rtol=0, atol=1e-5)
    assert (runs[0].tokens != runs[1].tokens).float().mean() < 0.02  # an arg-max tie may flip a continuation


def test_host_copy_brings_tokens_and_log_probabilities_back_exactly() -> None:
    """The tokens come back from the GPU as uint8 through pinned memory and are widened again; the log-probabilities
    through pinned memory as they are: both equal the plain copies, and the tokens are int64 again."""
    from audiomamba.generate.sampler import host_copy

    gen = torch.Generator(device="cuda").manual_seed(0)
    tok = torch.randint(0, 256, (4096, 64), device="cuda", generator=gen)
    lp = -torch.rand(4096, 64, device="cuda", generator=gen) * 9
    for src, small in ((tok, True), (tok, False), (lp, False), (lp, True)):
        out = host_copy(src, small=small)
        assert out.device.type == "cpu" and out.dtype == src.dtype and torch.equal(out, src.cpu())
