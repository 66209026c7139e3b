"""Generation with a real (tiny) U-Net: exact log-likelihoods, prompts, seeds, greedy path, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from audiomamba.generate import SamplingConfig, generate_to_folder, generate_tokens
from audiomamba.model import build_model
from audiomamba.tokenizer import shift_right

MIXED = {
    "d_model": 16,
    "pool": [2, 2],
    "levels": [{"block": "mamba-s4", "n": 1}, {"block": "mamba-s6", "n": 1}],
    "center": {"block": "mha-mlp", "n": 1},
}


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(MIXED).eval()


def _forward_logp(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        logits = model(shift_right(tokens))
    return F.log_softmax(logits.double(), -1).gather(-1, tokens[..., None])[..., 0]


def test_step_loglik_equals_parallel_forward(model: torch.nn.Module) -> None:
    gen = generate_tokens(model, n=3, length=24, batch=3, sampling=SamplingConfig(), seed=1, progress=False)
    assert gen.tokens.shape == (3, 24) and gen.logp.shape == (3, 24)
    ref = _forward_logp(model, gen.tokens)
    assert (gen.logp.double() - ref).abs().max() <= 1e-4
    assert torch.allclose(gen.loglik(), ref.sum(1), atol=1e-3)


def test_prompt_is_reproduced_and_scored(model: torch.nn.Module) -> None:
    prompt = torch.randint(0, 256, (2, 10), generator=torch.Generator().manual_seed(3))
    gen = generate_tokens(model, 2, 20, 2, SamplingConfig(), seed=0, prompts=prompt, progress=False)
    assert torch.equal(gen.tokens[:, :10], prompt)
    ref = _forward_logp(model, gen.tokens)
    assert (gen.logp.double() - ref).abs().max() <= 1e-4
    assert torch.allclose(gen.loglik(), ref[:, 10:].sum(1), atol=1e-3)  # only the generated part


def test_same_seed_same_audio_and_other_seed_differs(model: torch.nn.Module) -> None:
    a = generate_tokens(model, 2, 16, 2, SamplingConfig(), seed=7, progress=False).tokens
    started = []
    b = generate_tokens(model, 3, 16, 2, SamplingConfig(), seed=7, progress=False,  # two batches, one call
                        on_started=lambda: started.append(1)).tokens[:2]
    assert started == [1]
    c = generate_tokens(model, 2, 16, 2, SamplingConfig(), seed=8, progress=False).tokens
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_zero_temperature_is_the_argmax_path(model: torch.nn.Module) -> None:
    for temp in (0.0, 1e-6):
        gen = generate_tokens(model, 2, 16, 2, SamplingConfig(temperature=temp), seed=0, progress=False)
        with torch.no_grad():
            logits = model(shift_right(gen.tokens))
        assert torch.equal(logits.argmax(-1), gen.tokens)


def test_n_not_divisible_by_batch(model: torch.nn.Module) -> None:
    gen = generate_tokens(model, n=5, length=8, batch=2, sampling=SamplingConfig(), seed=0, progress=False)
    assert gen.tokens.shape == (5, 8)
    # batch k uses seed + k: the fifth sample equals the first of a run started at seed + 2
    alone = generate_tokens(model, n=1, length=8, batch=1, sampling=SamplingConfig(), seed=2, progress=False)
    assert torch.equal(gen.tokens[4], alone.tokens[0])


def test_generate_to_folder_writes_wavs_index_and_plot(model: torch.nn.Module, tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    rows, gen = generate_to_folder(model, tmp_path / "out", n=5, seconds=0.002, batch=2,
                                   sampling=SamplingConfig(top_p=0.9), sashimi_filter=True, progress=False,
                                   timings=timings)
    # (no CUDA graph here: the start-up is the states only, summed over the 3 batches)
    assert set(timings) == {"sampling", "startup states", "decode", "noise", "grid", "wavs", "wavs ahead", "files",
                            "index"}
    assert timings["sampling"] == gen.seconds and min(timings.values()) > 0
    assert timings["startup states"] == gen.startup["states"] < gen.seconds
    assert timings["files"] >= max(timings["grid"], timings["index"])  # the pool waits for the grid and the index
    out = tmp_path / "out"
    assert len(rows) == 5 and (out / "index.csv").is_file() and (out / "spectrograms.png").is_file()
    index = json.loads((out / "index.json").read_text())
    kept = [r for r in index if r["kept"]]
    assert 0 < len(kept) < 5  # the SaShiMi filter drops the least and most likely
    for r in index:
        assert (out / r["file"]).is_file() and "runaway_noise" in r and r["bpb"] > 0
    assert sorted(p.name for p in (out / "dropped").iterdir()) == sorted(Path(r["file"]).name for r in index if not r["kept"])


def _folder_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_wavs_written_while_sampling_are_the_wavs_written_after(model: torch.nn.Module, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The WavSink (write_ahead, the default) writes each row's WAV in chunks while the samples are made (here 3
    batches of 64 steps in chunks of 24 steps), then moves them into place: the folder is byte for byte the one
    written after sampling (the SaShiMi filter's dropped/ included, a prompt's samples too), and no .partial is
    left."""
    import audiomamba.generate.output as output

    monkeypatch.setattr(output, "SINK_CHUNK", 24)
    appends = []
    real_write = output.WavSink._write
    monkeypatch.setattr(output.WavSink, "_write", lambda self, *a: appends.append(a[2:4]) or real_write(self, *a))
    saved = []
    real_save = output.save_pcm16
    monkeypatch.setattr(output, "save_pcm16", lambda *a: saved.append(a[0]) or real_save(*a))
    folders = {}
    for ahead in (True, False):
        timings: dict[str, float] = {}
        out = tmp_path / f"ahead-{ahead}"
        saved.clear()
        generate_to_folder(model, out, n=5, seconds=0.004, batch=2, sampling=SamplingConfig(), seed=3,
                           sashimi_filter=True, progress=False, timings=timings, write_ahead=ahead)
        folders[ahead] = _folder_files(out)
        assert ("wavs ahead" in timings) == ahead and not (out / ".partial").exists()
        assert len(saved) == (0 if ahead else 5)  # ahead: every file was moved into place, none written at the end
    # the spectrogram grid's PNG holds no clock or path: equal too
    assert folders[True] == folders[False] and any(name.startswith("dropped/") for name in folders[True])
    assert sorted(set(appends)) == [(0, 24), (24, 48), (48, 64)] and len(appends) == 9  # 3 chunks x 3 batches
    from audiomamba.errors import ConfigError

    monkeypatch.setenv("AUDIOMAMBA_WRITE_AHEAD", "yes")
    with pytest.raises(ConfigError, match="AUDIOMAMBA_WRITE_AHEAD='yes'"):
        generate_to_folder(model, tmp_path / "bad", n=1, seconds=0.001, batch=1, sampling=SamplingConfig(),
                           progress=False)


def test_rows_changed_after_the_sink_wrote_them_are_written_again(tmp_path: Path, monkeypatch) -> None:
    """A row whose tokens change after the sink wrote it (a noisy sample made again) is written from its tokens; a
    sink whose thread failed (a full disk) leaves every file to be written at the end. Either way the folder is the
    one written without a sink."""
    import audiomamba.generate.output as output
    from audiomamba.generate.output import WavSink, write_samples
    from audiomamba.generate.sampler import Generated

    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 256, (4, 300), generator=g)
    gen = Generated(tokens.clone(), -torch.rand(4, 300, generator=g), 0, 1.0)
    plain = write_samples(gen, tmp_path / "plain", spectrogram_count=0)
    for case in ("changed", "failed"):
        out = tmp_path / case
        sink = WavSink(out, 4, 300, chunk=128)
        if case == "failed":
            monkeypatch.setattr(output.WavSink, "_write", lambda self, *a: 1 / 0)
        fed = tokens.clone()
        if case == "changed":
            fed[2] = 7  # what the sink wrote for row 2 is not what the samples hold at the end
        buf = fed.T.contiguous()
        for steps in range(100, 301, 100):  # (time, B), as a batch's buffer
            sink.feed(0, buf, steps)
        timings: dict[str, float] = {}
        rows = write_samples(gen, out, spectrogram_count=0, sink=sink, timings=timings)
        assert rows == plain and _folder_files(out) == _folder_files(tmp_path / "plain")
        assert (sink.error is not None) == (case == "failed") and not (out / ".partial").exists()
        monkeypatch.undo()


def test_write_samples_pool_gives_what_one_thread_gives(tmp_path: Path) -> None:
    import soundfile as sf

    from audiomamba.generate.noise import detect_runaway_noise
    from audiomamba.generate.output import write_samples
    from audiomamba.generate.sampler import Generated
    from audiomamba.tokenizer import mu_law_decode

    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 256, (21, 4000), generator=g)
    tokens[3] = 128  # one near-silent sample
    gen = Generated(tokens, -torch.rand(21, 4000, generator=g) * 5, 100, 1.0)
    one = write_samples(gen, tmp_path / "one", sashimi_filter=True, workers=1)
    # fewer rows than NOISE_GPU_MIN_ROWS: the CPU's pool judges them even for a GPU's samples (no CUDA touched here)
    pool = write_samples(gen, tmp_path / "pool", sashimi_filter=True, workers=3, device="cuda")
    assert one == pool and (tmp_path / "one" / "index.json").read_text() == (tmp_path / "pool" / "index.json").read_text()
    waves = mu_law_decode(tokens).numpy()
    for row in pool:
        assert (tmp_path / "one" / row["file"]).read_bytes() == (tmp_path / "pool" / row["file"]).read_bytes()
        pcm, rate = sf.read(str(tmp_path / "pool" / row["file"]), dtype="float32")
        assert rate == 16000 and np.abs(pcm - waves[row["index"]]).max() <= 1 / 32768
        assert row["noise"] == detect_runaway_noise(waves[row["index"], 100:]).noise
    assert sum(not r["kept"] for r in pool) > 0 and (tmp_path / "pool" / "dropped").is_dir()


def test_row_groups_give_the_tokens_of_one_group(model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows split into groups (uneven: 2 + 2 + 1, each with its own state and KV cache) draw the same tokens with the
    same log-probabilities as the whole batch stepped at once, prompts included."""
    prompt = torch.randint(0, 256, (5, 6), generator=torch.Generator().manual_seed(4))
    runs = {}
    for groups in ("1", "3"):
        monkeypatch.setenv("AUDIOMAMBA_STEP_GROUPS", groups)
        runs[groups] = generate_tokens(model, 5, 20, 5, SamplingConfig(), seed=3, prompts=prompt, progress=False)
    assert torch.equal(runs["1"].tokens, runs["3"].tokens)
    assert torch.equal(runs["3"].tokens[:, :6], prompt)
    assert (runs["1"].logp - runs["3"].logp).abs().max() <= 1e-5


def test_step_groups_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from audiomamba.errors import ConfigError
    from audiomamba.generate.stepper import (
        AUTO_GROUP_ROWS,
        AUTO_GROUPS_MAX,
        group_rows,
        step_groups,
        warmup_groups,
    )
    from audiomamba.generate.stepper import AUTO_GROUPS_MIN_BATCH as MIN

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv("AUDIOMAMBA_STEP_GROUPS", raising=False)
    assert step_groups(4 * MIN, cpu) == 1
    assert step_groups(MIN, gpu) == min(AUTO_GROUPS_MAX, MIN // AUTO_GROUP_ROWS) > 1
    assert step_groups(64 * MIN, gpu) == AUTO_GROUPS_MAX
    assert step_groups(MIN - 1, gpu) == 1
    real, cplx = [{"h": torch.zeros(1, 4)}], [{"h": torch.zeros(1, 4)}, {"h": torch.zeros(1, 4, dtype=torch.complex64)}]
    assert step_groups(MIN, gpu, real) > 1 and step_groups(MIN, gpu, cplx) == 1
    monkeypatch.setenv("AUDIOMAMBA_STEP_GROUPS", "4")
    assert step_groups(2, cpu) == 2 and step_groups(64, cpu) == 4 and step_groups(64, gpu, cplx) == 4
    monkeypatch.setenv("AUDIOMAMBA_STEP_GROUPS", "two")
    with pytest.raises(ConfigError, match="AUDIOMAMBA_STEP_GROUPS='two'") as err:
        step_groups(64, cpu)
    assert "\n" not in str(err.value)
    assert group_rows(5, 3) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    monkeypatch.delenv("AUDIOMAMBA_STEP_WARMUP", raising=False)
    assert warmup_groups(group_rows(5, 3)) == [0, 2] and warmup_groups(group_rows(2048, 8)) == [0]
    monkeypatch.setenv("AUDIOMAMBA_STEP_WARMUP", "all")
    assert warmup_groups(group_rows(2048, 8)) == list(range(8))
    monkeypatch.setenv("AUDIOMAMBA_STEP_WARMUP", "some")
    with pytest.raises(ConfigError, match="AUDIOMAMBA_STEP_WARMUP='some'") as err:
        warmup_groups(group_rows(5, 3))
    assert "\n" not in str(err.value)
    assert group_rows(4, 1) == [slice(0, 4)]


def test_graph_span_and_the_depth_of_each_sub_period(monkeypatch) -> None:
    from audiomamba.errors import ConfigError
    from audiomamba.generate.stepper import graph_span, sub_period_depth, sub_period_of_depth

    two = build_model({"d_model": 16, "d_state": 4, "pool": [4, 2], "levels": [{"block": "mamba-s6", "n": 1}] * 2,
                       "center": {"block": "mamba-s6", "n": 1}})
    one = build_model({"d_model": 16, "d_state": 4, "pool": [4], "levels": [{"block": "mamba-s6", "n": 1}],
                       "center": {"block": "mamba-s6", "n": 1}})
    monkeypatch.delenv("AUDIOMAMBA_STEP_GRAPH", raising=False)
    assert graph_span(two) == 4 and graph_span(one) == 4  # one level: the period is the outer factor
    monkeypatch.setenv("AUDIOMAMBA_STEP_GRAPH", "period")
    assert graph_span(two) == 8
    monkeypatch.setenv("AUDIOMAMBA_STEP_GRAPH", "half")
    with pytest.raises(ConfigError, match="AUDIOMAMBA_STEP_GRAPH='half'") as err:
        graph_span(two)
    assert "\n" not in str(err.value)
    # pool [16, 16]: level 1 runs at the end of every sub-period of 16 steps, the center at the end of every 16th
    assert [sub_period_depth([16, 16], s) for s in range(32)] == [1] * 15 + [2] + [1] * 15 + [2]
    assert [sub_period_depth([2, 3, 2], s) for s in range(6)] == [1, 1, 2, 1, 1, 3]
    assert [sub_period_of_depth([2, 3, 2], d) for d in (1, 2, 3)] == [0, 2, 5]


def test_cli_line_says_where_the_time_outside_sampling_went() -> None:
    from audiomamba.generate.output import outside_sampling_line

    timings = {"sampling": 9.0, "decode": 0.25, "files": 1.5, "noise": 2.0, "wavs": 0.75, "grid": 1.25, "index": 0.125}
    line = outside_sampling_line(0.5, timings)
    assert line.startswith("outside sampling: loading 0.50 s, decoding") and "files and index 1.50 s" in line
    assert "noise check 2.00, WAVs 0.75, spectrogram grid 1.25, index 0.12" in line and "regenerating" not in line
    assert "regenerating noisy samples 3.00 s" in outside_sampling_line(0.5, {"regenerate": 3.0})
    assert "start-up" not in line
    timings.update({"startup states": 0.25, "startup warm-up": 0.5, "startup capture": 0.75})
    assert outside_sampling_line(0.5, timings).endswith(
        "; sampling's start-up 1.50 s (states 0.25, warm-up 0.50, capture 0.75)")


def test_the_grid_figure_built_ahead_draws_the_same_png(tmp_path: Path) -> None:
    """The grid's figure built on a thread while sampling (preload_plotting) gives the PNG that plot_grid draws from
    scratch, byte for byte; one built for another size is not used, and it is used once."""
    from audiomamba.generate.output import plot_grid, preload_plotting

    waves = np.random.default_rng(0).uniform(-1, 1, (3, 800))
    grid = preload_plotting(3, 800)
    grid.thread.join(60)
    assert not grid.thread.is_alive()
    ahead = plot_grid(waves, tmp_path / "ahead.png", ["a", "b", "c"], grid)
    assert grid.take(3, 800) is None  # taken
    plain = plot_grid(waves, tmp_path / "plain.png", ["a", "b", "c"])
    assert ahead.stat().st_size > 1000 and ahead.read_bytes() == plain.read_bytes()
    other = preload_plotting(2, 800)
    assert other.take(3, 800) is None
    assert plot_grid(waves[:2], tmp_path / "two.png", ["a", "b"], preload_plotting(2, 800)).stat().st_size > 1000


def test_the_grid_drawn_over_its_background_looks_like_a_whole_figure_draw(tmp_path: Path) -> None:
    """plot_grid draws only the images, their frames and the titles over the axes' background bitmap: the PNG is the
    figure matplotlib draws whole (every artist, titles included), up to antialiasing where a frame meets an image."""
    import io

    from matplotlib.image import imread

    import audiomamba.generate.output as output

    def pixels(source) -> np.ndarray:  # 0-255 RGB
        return np.rint(imread(source, format="png")[..., :3] * 255).astype(int)

    waves = np.random.default_rng(0).uniform(-1, 1, (3, 800))
    built = output._grid_figure(3, 800)
    drawn = pixels(output.plot_grid(waves, tmp_path / "g.png", ["a", "b", "c"]))
    again = pixels(output.plot_grid(waves, tmp_path / "h.png", ["a", "b", "c"]))
    assert (drawn == again).all()
    fig = built[0]  # the same figure, its data set as plot_grid sets it, drawn whole
    for image, spec, ax, title in zip(built[2], output.log_spectrograms(waves), built[1], "abc", strict=True):
        image.set_data(spec)
        image.set_clim(float(spec.min()), float(spec.max()))
        ax.set_title(title, fontsize=8, y=1.0)
    for artist in fig.findobj():
        artist.set_animated(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    whole = pixels(buf)
    diff = np.abs(whole - drawn).max(-1)
    assert whole.shape == drawn.shape
    assert (diff > 0).mean() < 0.05 and diff.max() <= 64, ((diff > 0).mean(), diff.max())
    reversed_ = pixels(output.plot_grid(waves[::-1].copy(), tmp_path / "r.png", ["a", "b", "c"]))
    assert (whole != reversed_).any()  # the images are the waves'


def test_log_spectrograms_put_a_tone_in_its_bin_and_pad_short_clips() -> None:
    from audiomamba.generate.output import log_spectrograms

    t = np.arange(16000) / 16000
    spec = log_spectrograms(np.stack([np.sin(2 * np.pi * 1000 * t), 0.5 * np.sin(2 * np.pi * 2500 * t)]))
    assert spec.shape == (2, 129, (16000 - 256) // 64 + 1)
    assert (spec[0].argmax(0) == 16).all() and (spec[1].argmax(0) == 40).all()  # 1000 and 2500 Hz / 62.5 Hz per bin
    assert log_spectrograms(np.zeros((1, 100))).shape == (1, 129, 1)


def test_row_groups_fork_before_any_work_and_join_after(model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a GPU every group's stream waits for the current stream before any group's work is queued, and the current
    stream waits for every group at the end: a group stream can be the current one (PyTorch's stream pool), and a fork
    queued after that group's work made the later groups wait for it (slow turns on an H200, 2026-12-04). Checked with
    stand-in streams on the CPU."""
    import contextlib

    from audiomamba.generate import stepper as st

    log: list[str] = []

    class FakeStream:
        def __init__(self, name: str) -> None:
            self.name = name

        def wait_stream(self, other: FakeStream) -> None:
            log.append(f"{self.name} waits {other.name}")

    main = FakeStream("main")
    monkeypatch.setattr(st.torch.cuda, "current_stream", lambda device=None: main)

    @contextlib.contextmanager
    def on(stream: FakeStream):
        log.append(f"on {stream.name}")
        yield

    monkeypatch.setattr(st.torch.cuda, "stream", on)
    real_advance = st._advance

    def advance(*args, **kwargs):
        log.append("work")
        return real_advance(*args, **kwargs)

    monkeypatch.setattr(st, "_advance", advance)
    stepper = st.Stepper(model, 4, torch.device("cpu"), SamplingConfig(), groups=2)
    stepper._streams = [FakeStream("s0"), FakeStream("s1")]
    stepper.run(None, stepper.period)
    first_work = log.index("work")
    assert log[:2] == ["s0 waits main", "s1 waits main"] and first_work > 2
    assert log[-2:] == ["main waits s0", "main waits s1"] and "on s1" in log and log.count("work") == 2 * stepper.period


def test_bf16_states_keep_the_likelihoods(model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    """``state_dtype`` bf16 (``generate --states bf16``, ``AUDIOMAMBA_STEP_STATES``): the Mamba blocks' conv windows
    and real SSM states are stored in bfloat16 (complex ones stay complex64, attention caches untouched), and the
    step log-probabilities stay close to the parallel forward's; a bad name is a one-line ConfigError."""
    from audiomamba.errors import ConfigError
    from audiomamba.generate.stepper import Stepper, step_state_dtype

    prompt = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(5))
    gen = generate_tokens(model, 2, 24, 2, SamplingConfig(), seed=0, prompts=prompt, progress=False,
                          state_dtype=torch.bfloat16)
    diff = (gen.logp.double() - _forward_logp(model, prompt)).abs()
    assert 0 < diff[:, 1:].max() <= 0.05  # the first token's state is all zeros: nothing to round yet
    monkeypatch.setenv("AUDIOMAMBA_STEP_STATES", "bf16")
    stepper = Stepper(model, 2, torch.device("cpu"), SamplingConfig())
    assert stepper.state_dtype == torch.bfloat16
    leaves = [t for t in torch.utils._pytree.tree_leaves(stepper.init_state()) if isinstance(t, torch.Tensor)]
    dtypes = {t.dtype for t in leaves}
    assert torch.bfloat16 in dtypes and torch.complex64 in dtypes and torch.float32 in dtypes  # caches, pools: fp32
    assert step_state_dtype("fp16") == torch.float16
    monkeypatch.setenv("AUDIOMAMBA_STEP_STATES", "fp8")
    for call, name in ((lambda: step_state_dtype(), "AUDIOMAMBA_STEP_STATES='fp8'"),
                       (lambda: step_state_dtype("half"), "--states='half'")):
        with pytest.raises(ConfigError, match=name) as err:
            call()
        assert "\n" not in str(err.value)


def test_auto_states_are_fp16_for_a_gpu_batch_and_an_overflow_is_caught(model: torch.nn.Module,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset (or ``auto``), the step states are float16 for a GPU batch of 16+ rows and float32 for fewer rows or on a
    CPU; a 16-bit state that overflowed is a one-line KernelError at the end of a generation, float32 states are not
    checked."""
    from audiomamba.kernels.errors import KernelError

    from audiomamba.generate.stepper import (
        FP16_STATES_MIN_BATCH,
        Stepper,
        auto_state_dtype,
        check_states_finite,
        step_state_dtype,
    )

    monkeypatch.delenv("AUDIOMAMBA_STEP_STATES", raising=False)
    assert step_state_dtype() is None and step_state_dtype("auto") is None
    assert auto_state_dtype(FP16_STATES_MIN_BATCH, "cuda") == torch.float16
    assert auto_state_dtype(FP16_STATES_MIN_BATCH - 1, "cuda") == torch.float32
    assert auto_state_dtype(2048, "cpu") == torch.float32
    stepper = Stepper(model, 2, torch.device("cpu"), SamplingConfig())
    assert stepper.state_dtype is None
    state = stepper.init_state()
    leaves = [t for t in torch.utils._pytree.tree_leaves(state) if isinstance(t, torch.Tensor)]
    assert torch.float32 in {t.dtype for t in leaves} and torch.float16 not in {t.dtype for t in leaves}
    check_states_finite(state)
    mamba = [t for t in leaves if t.dtype == torch.float32 and t.dim() == 3]
    mamba[0][0, 0, 0] = float("inf")
    check_states_finite(state)  # float32 states: not a 16-bit overflow
    half = [t.half() for t in mamba]
    check_states_finite(half[1:])
    with pytest.raises(KernelError, match="--states fp32") as err:
        check_states_finite({"ssm": half[0], "conv": half[1]})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("cfg,groups", [(MIXED, "1"), (MIXED, "3"),
                                        ({**MIXED, "pool": [4, 4], "center": {"block": "mamba-s4-real", "n": 2}}, "1"),
                                        ({"d_model": 16, "pool": [2, 3, 2],
                                          "levels": [{"block": "mamba-s6", "n": 1}, {"block": "s4-mlp", "n": 1},
                                                     {"block": "mamba-s4-real", "n": 1}],
                                          "center": {"block": "mamba-s6", "n": 1}}, "2")])
def test_inner_levels_on_side_streams_change_no_sample(cfg: dict, groups: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """AUDIOMAMBA_STEP_OVERLAP=1 (the inner levels step on side streams, their UpPool refill staged and landed at the
    next step) and =outer (only the outermost level forks): the same tokens and log-probabilities as without, bit for
    bit, with prompts, row groups, an attention center and three pooling levels; each setting forks as many times as
    its levels run."""
    from audiomamba.model.unet import Level

    torch.manual_seed(1)
    net = build_model(cfg).eval()
    monkeypatch.setenv("AUDIOMAMBA_STEP_GROUPS", groups)
    prompt = torch.randint(0, 256, (5, 7), generator=torch.Generator().manual_seed(4))
    forks = []
    real_fork = Level._fork_inner
    monkeypatch.setattr(Level, "_fork_inner", lambda self, *a: forks.append(1) or real_fork(self, *a))
    runs, counts = [], []
    length = 4 * net.config.pool_product
    for overlap in ("0", "1", "outer"):
        monkeypatch.setenv("AUDIOMAMBA_STEP_OVERLAP", overlap)
        forks.clear()
        runs.append(generate_tokens(net, 5, length, 5, SamplingConfig(), seed=3, prompts=prompt, progress=False))
        counts.append(len(forks))
    for run in runs[1:]:
        assert torch.equal(runs[0].tokens, run.tokens) and torch.equal(runs[0].logp, run.logp)
    assert torch.equal(runs[1].tokens[:, :7], prompt)
    per_group = sum(length // math.prod(net.config.pool[: d + 1]) for d in range(len(net.config.pool)))
    # every inner level's run with 1, the outermost level's only with outer, none without the setting
    assert counts == [0, int(groups) * per_group, int(groups) * length // net.config.pool[0]]


def test_inner_level_forks_after_the_current_stream_and_lands_a_step_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """The order a GPU sees, with stand-in streams and events on the CPU: at the step where the inner level runs,
    its side stream first waits for the current one, the inner level steps on it and its event is recorded after;
    the current stream waits for that event only at the next step (after that step's down blocks), and
    join_overlap lands a refill still pending."""
    import contextlib

    from audiomamba.model import unet

    log: list[str] = []

    class Fake:
        device = "cpu"

        def __init__(self, name: str) -> None:
            self.name = name

        def wait_stream(self, other) -> None:
            log.append(f"{self.name} waits {other.name}")

        def wait_event(self, event) -> None:
            log.append(f"{self.name} waits {event.name}")

        def record(self, stream) -> None:
            log.append(f"{self.name} recorded on {stream.name}")

    current = [Fake("main")]

    @contextlib.contextmanager
    def on(stream):
        current.append(stream)
        yield
        current.pop()

    monkeypatch.setattr(unet.torch.cuda, "current_stream", lambda device=None: current[-1])
    monkeypatch.setattr(unet.torch.cuda, "stream", on)
    torch.manual_seed(0)
    net = build_model({**MIXED, "center": {"block": "mamba-s6", "n": 1}}).eval()
    state = net.init_state(2, "cpu")
    net.attach_overlap(state, "cpu")
    outer = state["body"]["overlap"]
    outer["side"], outer["done"] = Fake("side"), Fake("done")
    state["body"]["inner"].pop("overlap")  # the inner level steps its center in line here
    real_inner = net.body.inner.step
    net.body.inner.step = lambda *a, **k: log.append(f"inner on {current[-1].name}") or real_inner(*a, **k)
    real_up = net.body.up_pool.pending
    net.body.up_pool.pending = lambda st: log.append("up reads") or real_up(st)
    tokens = torch.tensor([3, 4])
    with torch.no_grad():
        for t in range(3):
            log.append(f"step {t}")
            net.step(tokens, state)
        assert log == ["step 0", "up reads",
                       "step 1", "side waits main", "inner on side", "done recorded on side", "up reads",
                       "step 2", "main waits done", "up reads"]
        net.step(tokens, state)  # the inner level runs again: its refill stays pending
        assert outer["staged"] and log[-1] == "up reads"
        net.join_overlap(state)
        assert not outer["staged"] and log[-1] == "main waits done"

        # both levels on side streams: the inner level forks its center from the outer level's side stream, and a
        # join of both lands the outer level first (its side stream ran the inner level's up blocks, which read the
        # buffer the inner join overwrites)
        state = net.init_state(2, "cpu")
        net.attach_overlap(state, "cpu")
        for name, over in (("0", state["body"]["overlap"]), ("1", state["body"]["inner"]["overlap"])):
            over["side"], over["done"] = Fake("side" + name), Fake("done" + name)
        log.clear()
        for _ in range(4):
            net.step(tokens, state)
        assert "side1 waits side0" in log and log.index("side0 waits main") < log.index("side1 waits side0")
        last = {entry: i for i, entry in enumerate(log)}
        assert last["done1 recorded on side1"] < last["done0 recorded on side0"]  # the center ran inside side0's fork
        log.clear()
        net.join_overlap(state)
        assert log == ["main waits done0", "main waits done1"]


def test_overlap_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """AUDIOMAMBA_STEP_OVERLAP: unset, on a GPU only; 1 on any device; 0 off; a bad value is a one-line ConfigError
    naming the variable; the bench reports' header says which."""
    from audiomamba.bench.generate import groups_note

    from audiomamba.errors import ConfigError
    from audiomamba.generate.stepper import overlap_enabled, overlap_levels

    monkeypatch.delenv("AUDIOMAMBA_STEP_OVERLAP", raising=False)
    assert overlap_enabled("cuda") and not overlap_enabled("cpu")
    assert "inner levels: inline (AUDIOMAMBA_STEP_OVERLAP unset)" in groups_note(torch.device("cpu"))
    monkeypatch.setenv("AUDIOMAMBA_STEP_OVERLAP", "0")
    assert not overlap_enabled("cuda") and "inner levels: inline (AUDIOMAMBA_STEP_OVERLAP=0)" in groups_note(
        torch.device("cpu"))
    monkeypatch.setenv("AUDIOMAMBA_STEP_OVERLAP", "1")
    assert overlap_enabled("cpu") and "inner levels: on side streams (AUDIOMAMBA_STEP_OVERLAP=1)" in groups_note(
        torch.device("cpu"))
    # every level forks while the row groups' streams stay within 32 (8 groups x 3 for two pooling levels), only the
    # outermost beyond (16 x 3 was 2.3x slower than 16 x 2 on an H100) or with outer
    assert overlap_levels(8, 2) is None and overlap_levels(10, 2) is None and overlap_levels(1, 31) is None
    assert overlap_levels(12, 2) == 1 and overlap_levels(16, 2) == 1 and overlap_levels(64, 2) == 1
    assert overlap_levels(8, 4) == 3
    monkeypatch.setenv("AUDIOMAMBA_STEP_OVERLAP", "outer")
    assert overlap_enabled("cpu") and overlap_levels(1, 2) == 1
    monkeypatch.setenv("AUDIOMAMBA_STEP_OVERLAP", "on")
    with pytest.raises(ConfigError, match="AUDIOMAMBA_STEP_OVERLAP='on'"):
        overlap_enabled()


@pytest.mark.parametrize("pool,offset", [([4, 4], False), ([4, 4], True), ([2, 3, 2], True), ([16, 16], True)])
def test_graph_schedule_covers_every_step_once(pool: list[int], offset: bool) -> None:
    """The replays of sub-period graphs: every step once and in order (the steps without a graph, then the spans,
    then the rest); each span's key is the depth the inner levels reach at the step where the outer level's inner
    level runs in it; every period is yielded once, after its last step. With the offset (the inner levels on side
    streams) every span starts at that step, phase span - 1."""
    from audiomamba.generate.stepper import graph_schedule, sub_period_depth

    period, span = math.prod(pool), pool[0]
    total = 3 * period
    plan = graph_schedule(total, period, span, pool, offset)
    steps = list(range(plan.head)) + [t for lo, _ in plan.spans for t in range(lo, lo + span)]
    steps += list(range(plan.tail, total))
    assert steps == list(range(total))
    assert plan.head == (span - 1 if offset else 0) and total - plan.tail == (1 if offset else 0)
    for lo, key in plan.spans:
        runs_at = next(t for t in range(lo, lo + span) if t % span == span - 1)  # the outer level's inner level
        assert (runs_at == lo) == offset and key == sub_period_depth(pool, runs_at // span)
    assert plan.periods_after == [(lo + span) // period for lo, _ in plan.spans]
    assert plan.periods_after[-1] == (total // period if not offset else total // period - 1)
    assert graph_schedule(total, total, total, [], offset).spans == [(0, 0)]  # one graph of the period


@pytest.mark.parametrize("overlap", ["0", "1"])
@pytest.mark.parametrize("cfg,groups", [({**MIXED, "pool": [4, 4], "center": {"block": "mamba-s6", "n": 1}}, 1),
                                        ({"d_model": 16, "pool": [2, 3, 2],
                                          "levels": [{"block": "mamba-s6", "n": 1}, {"block": "s4-mlp", "n": 1},
                                                     {"block": "mamba-s4-real", "n": 1}],
                                          "center": {"block": "mha-mlp", "n": 1}}, 2)])
def test_graph_replays_on_the_cpu_give_the_eager_tokens(cfg: dict, groups: int, overlap: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Stepper._run_graphed on the CPU, with stand-in CUDA graphs: a "capture" keeps the span's function and the
    Python values of the state at that moment (pooling positions, flags), and a replay runs the span again from them,
    which is what a real replay does (the kernels as captured, whatever the Python positions are now). Greedy
    tokens and log-probabilities with a prompt equal the eager Stepper's: sub-period graphs from phase 0 and, with the
    inner levels on side streams, from the phase where the outer level's inner level runs (steps before and after
    the graphs eager); row groups, an attention center's KV cache, three pooling levels."""
    import contextlib
    import sys

    from audiomamba.generate import stepper as st

    class FakeStream:
        def __init__(self, *a, **k) -> None:
            pass

        def wait_stream(self, other) -> None:
            pass

    class FakeGraph:
        replays = 0

        def pool(self):
            return None

        def replay(self) -> None:
            FakeGraph.replays += 1
            for i, value in self.python:
                self.leaves[i] = value
            self.fn()

    class Capture:
        def __init__(self, graph, pool=None, capture_error_mode=None) -> None:
            self.graph = graph

        def __enter__(self):
            frame = sys._getframe(1).f_locals  # _run_graphed's: the span's function and the state's leaves
            g = self.graph
            g.fn, g.leaves = frame["one_span"], frame["leaves"]
            g.python = [(i, v) for i, v in enumerate(g.leaves) if not isinstance(v, torch.Tensor)]
            return g

        def __exit__(self, *exc) -> bool:
            return False

    monkeypatch.setattr(st.torch.cuda, "Stream", FakeStream)
    monkeypatch.setattr(st.torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(st.torch.cuda, "current_stream", lambda device=None: FakeStream())
    monkeypatch.setattr(st.torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(st.torch.cuda, "CUDAGraph", FakeGraph)
    monkeypatch.setattr(st.torch.cuda, "graph", Capture)
    monkeypatch.setenv("AUDIOMAMBA_STEP_OVERLAP", overlap)
    torch.manual_seed(2)
    net = build_model(cfg).eval()
    period = net.config.pool_product
    prompt = torch.randint(0, 256, (4, period + 3), generator=torch.Generator().manual_seed(4))
    out = {}
    for graph in (False, True):
        stepper = st.Stepper(net, 4, torch.device("cpu"), SamplingConfig(temperature=0), use_graph=graph,
                             groups=groups)
        yielded = [k for k, _, _ in stepper.periods(prompt, 3 * period)]
        assert yielded == [1, 2, 3]
        out[graph] = stepper.run(prompt, 3 * period)
    assert FakeGraph.replays > 0
    assert torch.equal(out[True][0], out[False][0]) and torch.equal(out[True][0][:, : period + 3], prompt)
    assert torch.allclose(out[True][1], out[False][1], rtol=0, atol=1e-5)


def test_host_copy_on_the_cpu_is_the_tensor_itself() -> None:
    """host_copy of a CPU tensor gives it back unchanged (no pinned memory, no narrowing), whatever ``small`` says."""
    from audiomamba.generate.sampler import host_copy

    tok = torch.randint(0, 256, (8, 5))
    assert host_copy(tok, small=True) is tok and host_copy(tok).dtype == torch.int64
