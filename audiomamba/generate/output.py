"""Writing generated samples: WAV files, an index with likelihoods and flags, a spectrogram grid."""

from __future__ import annotations

import csv
import json
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from audiomamba.audio import SAMPLE_RATE, pcm16, save_pcm16, wav_header
from audiomamba.generate.noise import NOISE_CHUNK, NoiseProfile, detect_noise
from audiomamba.generate.sampler import Generated
from audiomamba.tokenizer import mu_law_decode

SASHIMI_KEEP = (0.40, 0.95)  # keep samples between these likelihood quantiles
SPECTROGRAMS = 8  # clips in the spectrogram grid
#: steps of every row that :class:`WavSink` writes at a time while sampling goes on (1/8 s of audio)
SINK_CHUNK = 2000
#: fewest samples whose noise a GPU judges (fewer: the CPU's pool, a few ms a clip): a process's first FFT on the GPU
#: costs about 0.2 s of start-up (one H100, 2026-12-07 12:00: the noise check of a one-second clip took 0.21 s in
#: the matrix's first case, 0.00 in the next), a fifth of a one-second clip's real time
NOISE_GPU_MIN_ROWS = 64


def sashimi_keep(loglik: torch.Tensor, band: tuple[float, float] = SASHIMI_KEEP) -> torch.Tensor:
    """SaShiMi's filter: drop the 40 % least and 5 % most likely samples. loglik (n,) -> bool (n,)."""
    if loglik.numel() < 3:
        return torch.ones_like(loglik, dtype=torch.bool)
    lo, hi = torch.quantile(loglik.double(), torch.tensor(band, dtype=torch.float64))
    return (loglik >= lo) & (loglik <= hi)


def sashimi_filter_option(name: str | None) -> bool:
    """``--filter`` of the CLI: None (no filter) or 'sashimi' -> whether to apply SaShiMi's filter."""
    if name not in (None, "sashimi"):
        from audiomamba.errors import ConfigError

        raise ConfigError(f"unknown --filter {name!r}: the only filter is 'sashimi'")
    return name == "sashimi"


def _pcm_levels() -> torch.Tensor:
    """The 16-bit PCM value of each of the 256 tokens (their μ-law decoding, converted once): a lookup table."""
    return torch.from_numpy(pcm16(mu_law_decode(torch.arange(256)).numpy()))


def _digest_weights(length: int) -> torch.Tensor:
    return torch.arange(1, length + 1, dtype=torch.int64) % 65521 + 1


def _row_digest(tokens: torch.Tensor) -> torch.Tensor:
    """One int64 per row of tokens (n, T) that changes when any token does (a position-weighted sum): whether a
    row's WAV written ahead still holds its tokens."""
    return (tokens.cpu().to(torch.int64) * _digest_weights(tokens.shape[1])).sum(1)


class WavSink:
    """The WAVs written while the GPU samples (issue 18: file writing off the critical path).

    Generation hands it each batch's token buffer after every period (:meth:`feed`); every :data:`SINK_CHUNK` steps
    it records a CUDA event, and its thread waits for that event (the GIL released), copies the finished steps to
    the CPU on a stream of its own and appends them to each row's WAV in ``out/.partial/`` (the header, for the
    known length, first). So the disk's writeback happens during sampling, and at the end :func:`write_samples`
    only moves the files into place (``out/`` or ``out/dropped/``). A row whose tokens changed after they were
    written (a noisy sample made again) is written again from its tokens; an error in the thread (a full disk)
    leaves every row to be written at the end, as without the sink: nothing is lost either way."""

    def __init__(self, out: Path, n: int, length: int, chunk: int | None = None) -> None:
        self.dir = Path(out) / ".partial"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.n, self.length, self.chunk = n, length, chunk or SINK_CHUNK
        self.header = wav_header(length)
        self.levels = _pcm_levels()
        self.written = np.zeros(n, dtype=np.int64)  # steps of each row in its file
        self.digest = torch.zeros(n, dtype=torch.int64)
        self.weights = _digest_weights(length)
        self.fed: dict[int, int] = {}
        self.error: str | None = None
        self.seconds = 0.0  # the thread's writing time
        self._queue: queue.Queue = queue.Queue()
        self._stream = None
        self._thread = threading.Thread(target=self._work, name="wav-sink", daemon=True)
        self._thread.start()

    def path(self, i: int) -> Path:
        return self.dir / f"sample_{i:05d}.wav"

    def feed(self, lo: int, tokens: torch.Tensor, steps: int) -> None:
        """Rows ``lo`` .. ``lo + B`` of the samples: their token buffer ``tokens`` (time, B), of which the first
        ``steps`` steps have been queued on the current stream; writes them once a chunk (or the end) is there."""
        steps = min(steps, self.length)
        start = self.fed.get(lo, 0)
        if self.error is not None or steps <= start or (steps - start < self.chunk and steps < self.length):
            return
        event = None
        if tokens.is_cuda:
            event = torch.cuda.Event()
            event.record()
        self.fed[lo] = steps
        self._queue.put((lo, tokens, start, steps, event))

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.error is None:
                t0 = time.perf_counter()
                try:
                    self._write(*item)
                except Exception as err:  # written at the end instead
                    self.error = f"{type(err).__name__}: {err}"
                self.seconds += time.perf_counter() - t0

    def _write(self, lo: int, tokens: torch.Tensor, start: int, stop: int, event) -> None:
        if event is not None:
            # wait for the GPU to reach the event with the GIL released (sampling's thread keeps queueing replays),
            # then copy on a stream of our own: the default stream would wait for everything queued since
            event.synchronize()
            if self._stream is None:
                self._stream = torch.cuda.Stream(tokens.device)
            with torch.cuda.stream(self._stream):
                chunk = tokens[start:stop].to("cpu")
        else:
            chunk = tokens[start:stop].clone()
        chunk = chunk.T  # (B, steps)
        self.digest[lo : lo + chunk.shape[0]] += (chunk * self.weights[start:stop]).sum(1)
        pcm = self.levels[chunk].contiguous().numpy()
        for r in range(pcm.shape[0]):
            with open(self.path(lo + r), "ab" if start else "wb") as fh:
                if not start:
                    fh.write(self.header)
                fh.write(pcm[r].tobytes())
        self.written[lo : lo + pcm.shape[0]] = stop

    def _join(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def stop(self) -> None:
        """Wait for the writes queued so far; later feeds are ignored."""
        self._join()
        self.error = self.error or "stopped"

    def finish(self, tokens: torch.Tensor) -> np.ndarray:
        """Wait for the writes, then which rows' files hold exactly ``tokens`` (n, length): bool (n,) (the others'
        files are left for :meth:`close` to remove)."""
        self._join()
        if self.error is not None or tuple(tokens.shape) != (self.n, self.length):
            return np.zeros(self.n, dtype=bool)
        return (self.written == self.length) & (_row_digest(tokens) == self.digest).numpy()

    def close(self) -> None:
        """Remove ``out/.partial/`` and whatever is left in it."""
        shutil.rmtree(self.dir, ignore_errors=True)


def write_samples(
    gen: Generated,
    out: Path,
    prompt_names: list[str] | None = None,
    sashimi_filter: bool = False,
    spectrogram_count: int = SPECTROGRAMS,
    labeller=None,
    noise_profile: NoiseProfile | None = None,
    workers: int | None = None,
    timings: dict[str, float] | None = None,
    device: str | torch.device | None = None,
    grid: GridFigure | None = None,
    sink: WavSink | None = None,
) -> list[dict]:
    """Decode and write every sample; returns the index rows (also written as index.csv/json).

    Samples dropped by the SaShiMi filter are written to ``out/dropped/`` (nothing is lost).
    ``labeller(waves (n, T) float32) -> (digit (n,), probability (n,))`` (a digit classifier), if
    given, adds the predicted digit and its probability to each row and to the spectrogram titles.
    ``noise_profile`` (the run's, from its training data) sets what counts as noise throughout.
    ``workers``: threads writing the files (default min(8, CPUs); 1 writes them one after another).
    ``timings``, if given, receives seconds by the wall: "decode" (tokens to waves, likelihoods, filter, labels) and
    "files" (the thread pool: noise check, WAVs, spectrogram grid and then the index side by side); and the seconds
    each part took, summed over its jobs: "noise", "wavs", "grid", "index".
    ``device``: where the noise is judged; a GPU judges every sample from the tokens on a thread started first, while
    this one decodes and the pool writes the files (on a CPU, and for fewer than :data:`NOISE_GPU_MIN_ROWS` samples,
    the pool's threads judge it, a few samples per job).
    ``grid``: the spectrogram grid's figure built ahead (:func:`preload_plotting`). ``sink``: the :class:`WavSink`
    that wrote the WAVs while sampling; its files are moved into place (``timings["wavs ahead"]``: its thread's
    seconds), any row it did not finish is written here.
    """
    timings = {} if timings is None else timings
    clock = _Clock(timings)
    judge = clock.timed("noise", detect_noise)
    n, length = gen.tokens.shape
    on_gpu = device is not None and torch.device(device).type == "cuda" and n >= NOISE_GPU_MIN_ROWS
    noise_job = None
    if on_gpu:  # judged from the tokens, on a thread of its own started first: beside this one's decoding and the files
        side = ThreadPoolExecutor(max_workers=1)
        noise_job = side.submit(_judge_tokens, judge, gen, device, noise_profile)
        side.shutdown(wait=False)  # the job runs on; its thread ends with it
    out.mkdir(parents=True, exist_ok=True)
    # the waves on the CPU: every sample's for the labeller and the CPU's noise check, else only the grid's
    waves = mu_law_decode(gen.tokens if labeller is not None or not on_gpu else gen.tokens[:spectrogram_count]).numpy()
    loglik = gen.loglik()
    bpb = gen.bpb(loglik)
    keep = sashimi_keep(loglik) if sashimi_filter else torch.ones(n, dtype=torch.bool)
    digits, probs = labeller(waves) if labeller is not None else (None, None)
    paths = [(out if keep[i] else out / "dropped") / f"sample_{i:05d}.wav" for i in range(n)]
    # A pool of threads judges the noise (numpy's array work runs partly outside the GIL: 1.4x on two threads of a
    # 2-core CPU) and writes the WAVs and the spectrogram grid (file writes and the Agg renderer release it too).
    if not bool(keep.all()):
        (out / "dropped").mkdir(exist_ok=True)
    workers = workers or min(8, os.cpu_count() or 2)
    clock.lap("decode")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # the grid first: one job as long as several noise jobs, so it must not wait behind them (an H200 machine,
        # 2026-12-04: queued last, it ended the pool 0.6 s after the noise check)
        plot = None
        if spectrogram_count:
            titles = [str(paths[i].relative_to(out))
                      + (f"  '{int(digits[i])}' p={float(probs[i]):.2f}" if digits is not None else "")
                      for i in range(min(spectrogram_count, n))]
            plot = pool.submit(clock.timed("grid", plot_grid), waves[:spectrogram_count], out / "spectrograms.png", titles,
                               grid)
        step = max(NOISE_CHUNK, -(-n // (4 * workers)))  # about 4 noise jobs per thread
        judged = waves[:, gen.prompt_len :]
        noise_parts = [] if on_gpu else [pool.submit(judge, judged[lo : lo + step], noise_profile)
                                         for lo in range(0, n, step)]
        # 16-bit PCM straight from the tokens: the 256 decoded levels converted once (the same samples as
        # converting each decoded wave), looked up for the whole batch in one torch gather (multi-threaded: 2048 x 1 s
        # in 0.08 s on a 2-core CPU, against 0.11 s row by row in numpy, 0.43 s while the pool's threads hold the GIL)
        ahead = sink.finish(gen.tokens) if sink is not None else np.zeros(len(paths), dtype=bool)
        if sink is not None:
            timings["wavs ahead"] = sink.seconds
        todo = np.flatnonzero(~ahead)
        # (no row ahead: the tokens as they are, not a 2048 x 16 000 int64 copy through an index)
        pcm = _pcm_levels()[gen.tokens if len(todo) == len(paths) else gen.tokens[torch.from_numpy(todo)]].numpy()
        save = clock.timed("wavs", save_pcm16)
        wav_jobs = [pool.submit(save, paths[i], pcm[j]) for j, i in enumerate(todo)]
        if ahead.any():  # the files written while sampling: moved into place, one job (a rename each)
            wav_jobs.append(pool.submit(clock.timed("wavs", _move_all), [(sink.path(i), paths[i])
                                                                         for i in np.flatnonzero(ahead)]))
        if noise_job is not None:
            noise = noise_job.result()
        else:
            noise = [report for part in noise_parts for report in part.result()]
        # the index as soon as the noise verdicts are in, on its own thread beside the WAV jobs (JSON and CSV
        # encoding: 0.44 s for 2048 rows on the H200 machine, 2026-12-04, when it ran after the pool)
        with ThreadPoolExecutor(max_workers=1) as side:
            index = side.submit(clock.timed("index", _write_index), out, paths, length, prompt_names,
                                gen.prompt_len, loglik, bpb, keep, noise, digits, probs)
            for job in wav_jobs:
                job.result()
            if plot is not None:
                plot.result()
            rows = index.result()
    if sink is not None:
        sink.close()
    clock.lap("files")
    return rows


def _judge_tokens(judge: Callable, gen: Generated, device, profile: NoiseProfile | None) -> list:
    """``judge`` (:func:`detect_noise`) of the generated part of ``gen``'s samples on ``device``: the tokens go there
    as bytes (a quarter of the float waves' bytes) and are decoded there by :func:`mu_law_decode`'s table, so the
    waves are the ones written."""
    tokens = gen.tokens[:, gen.prompt_len :] if gen.prompt_len else gen.tokens
    return judge(mu_law_decode(tokens.to(torch.uint8).to(device)), profile)


def _move_all(moves: list[tuple[Path, Path]]) -> None:
    for src, dst in moves:
        os.replace(src, dst)


def _write_index(out: Path, paths: list[Path], length: int, prompt_names: list[str] | None, prompt_len: int,
                 loglik: torch.Tensor, bpb: torch.Tensor, keep: torch.Tensor, noise: list, digits, probs) -> list[dict]:
    """The index rows of :func:`write_samples`, written to ``out/index.csv`` and ``out/index.json``."""
    loglik, bpb, keep = loglik.tolist(), bpb.tolist(), keep.tolist()
    rows = [
        {
            "file": str(path.relative_to(out)),
            "index": i,
            "seconds": round(length / SAMPLE_RATE, 4),
            "prompt": prompt_names[i] if prompt_names else "",
            "prompt_samples": prompt_len,
            "loglik_nats": round(float(loglik[i]), 4),
            "bpb": round(float(bpb[i]), 5),
            "kept": bool(keep[i]),
            **{k: (round(v, 5) if isinstance(v, float) else v) for k, v in noise[i].as_dict().items()},
            **({"digit": int(digits[i]), "digit_prob": round(float(probs[i]), 4)} if digits is not None else {}),
        }
        for i, path in enumerate(paths)
    ]
    with open(out / "index.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    # one row per line, each through json's C encoder (``indent`` takes its Python one: 4x slower for 2048 rows)
    (out / "index.json").write_text("[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n")
    return rows


def outside_sampling_line(loaded: float, timings: dict[str, float]) -> str:
    """Where the wall time outside sampling went, one line: ``loaded`` seconds to load the model, then
    :func:`~audiomamba.generate.generate_to_folder`'s ``timings`` (``audiomamba generate`` prints it; the generation
    matrix of ``audiomamba bench generate`` puts it in its notes)."""
    t = timings.get
    parts = [f"loading {loaded:.2f} s"]
    if "regenerate" in timings:
        parts.append(f"regenerating noisy samples {t('regenerate'):.2f} s")
    parts.append(f"decoding, scoring and labelling {t('decode', 0.0):.2f} s")
    ahead = f" (while sampling: {t('wavs ahead'):.2f})" if "wavs ahead" in timings else ""
    parts.append(f"files and index {t('files', 0.0):.2f} s (thread seconds: noise check {t('noise', 0.0):.2f}, WAVs "
                 f"{t('wavs', 0.0):.2f}{ahead}, spectrogram grid {t('grid', 0.0):.2f}, index {t('index', 0.0):.2f})")
    line = "outside sampling: " + ", ".join(parts)
    startup = {k.removeprefix("startup "): v for k, v in timings.items() if k.startswith("startup ")}
    if startup:  # inside the sampling time: the stepper's start-up before its first period
        line += (f"; sampling's start-up {sum(startup.values()):.2f} s ("
                 + ", ".join(f"{k} {v:.2f}" for k, v in startup.items()) + ")")
    return line


class _Clock:
    """Wall seconds into a dict: :meth:`lap` since the last lap, :meth:`timed` summed over a function's calls
    (from any thread)."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into, self.last, self.lock = into, time.perf_counter(), threading.Lock()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.into[name] = self.into.get(name, 0.0) + now - self.last
        self.last = now

    def timed(self, name: str, fn: Callable) -> Callable:
        def run(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with self.lock:
                    self.into[name] = self.into.get(name, 0.0) + time.perf_counter() - t0
        return run


def log_spectrograms(waves: np.ndarray, n_fft: int = 256, hop: int = 64) -> np.ndarray:
    """Power spectrograms in dB of Hann-windowed frames: waves (k, T) -> (k, n_fft // 2 + 1, frames)."""
    waves = np.asarray(waves, dtype=np.float64)
    if waves.shape[-1] < n_fft:
        waves = np.pad(waves, [(0, 0), (0, n_fft - waves.shape[-1])])
    frames = np.lib.stride_tricks.sliding_window_view(waves, n_fft, axis=-1)[:, ::hop, :]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=-1)) ** 2
    return np.swapaxes(10.0 * np.log10(power + 1e-20), 1, 2)


class GridFigure:
    """The spectrogram grid's figure built ahead on a daemon thread (:func:`plot_grid` with ``prepared``): axes,
    ticks and tick labels drawn once into a background bitmap (:func:`_grid_figure`). At the end of a generation only
    the images, the titles and the PNG remain: building the axes and ticks was about half of the grid's Python
    (cProfile, 8 clips, 2-core CPU, 2026-12-05), and the grid was the last file of a batch of 2048 waited for (1.3
    thread-seconds among the WAV threads on an H100 machine, 2026-12-05 17:46; 0.54 s on the critical path of an
    sc09-large batch, 2026-12-06). Generation starts it once its first graph is captured, when the CPU waits for the
    GPU (earlier, matplotlib's import would hold the GIL against the capture's Python)."""

    def __init__(self, count: int, length: int) -> None:
        self.count, self.length = count, length
        self._built: tuple | None = None
        self.thread = threading.Thread(target=self._build, name="grid-figure", daemon=True)

    def start(self) -> GridFigure:
        self.thread.start()
        return self

    def _build(self) -> None:
        self._built = _grid_figure(self.count, self.length)

    def take(self, count: int, length: int) -> tuple | None:
        """The built (figure, axes, images) for ``count`` clips of ``length`` samples, once (None if it was started
        for another size, not started, or already taken)."""
        if not self.thread.is_alive() and self._built is None:
            return None
        self.thread.join()
        built, self._built = self._built, None
        return built if (count, length) == (self.count, self.length) else None


def preload_plotting(count: int = SPECTROGRAMS, length: int = SAMPLE_RATE) -> GridFigure:
    """Start building the spectrogram grid's figure for ``count`` clips of ``length`` samples (:class:`GridFigure`)."""
    return GridFigure(count, length).start()


#: zlib level of the grid's PNG: 1 encodes 8 panels in a fraction of the default's time (0.12 s of the grid's 0.25 s
#: on a 2-core CPU at the default, 2026-12-06) for a somewhat larger file
GRID_PNG_LEVEL = 1


def _grid_figure(k: int, length: int) -> tuple:
    """(figure, axes, images, background) of a grid of ``k`` log-spectrogram panels (up to 4 per row) for clips of
    ``length`` samples: fixed margins, ticks and title positions, and the bitmap of everything but the images and the
    titles (drawn once: :func:`plot_grid` restores it and draws only those)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: safe to build off the main thread

    cols = min(4, k)
    rows = -(-k // cols)
    fig = Figure(figsize=(3.2 * cols, 2.4 * rows), dpi=100)  # the same size as ``width, height`` below
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[k:]:
        ax.axis("off")
    seconds = max(length, 1) / SAMPLE_RATE
    extent = (0.0, seconds, 0.0, SAMPLE_RATE / 2)
    shape = log_spectrograms(np.zeros((1, max(length, 1))))[0].shape
    # fixed ticks and title positions, the same on every panel (no tick location or title placement per panel: about
    # half of the drawing's Python calls under cProfile; by the wall within noise, 0.54-0.59 against 0.57 s for 8
    # clips on a 2-core CPU, 2026-12-05)
    x_ticks = np.linspace(0.0, seconds, 5)
    y_ticks = np.arange(0, SAMPLE_RATE // 2 + 1, 2000)
    images = []
    for ax in axes.flat[:k]:
        images.append(ax.imshow(np.zeros(shape), origin="lower", aspect="auto", cmap="magma", extent=extent,
                                interpolation="nearest", animated=True))
        ax.set_title(" ", fontsize=8, y=1.0).set_animated(True)
        ax.set_xticks(x_ticks, [f"{t:g}" for t in x_ticks], fontsize=6)
        ax.set_yticks(y_ticks, [f"{t:d}" for t in y_ticks], fontsize=6)
    width, height = 3.2 * cols, 2.4 * rows  # margins in inches: tick labels on the left, a title above
    fig.subplots_adjust(left=0.4 / width, right=1 - 0.08 / width, bottom=0.3 / height, top=1 - 0.28 / height,
                        wspace=0.2, hspace=0.45)
    canvas.draw()  # the animated artists (images, titles) are left out of this bitmap
    return fig, list(axes.flat[:k]), images, canvas.copy_from_bbox(fig.bbox)


def plot_grid(waves: np.ndarray, path: Path, titles: list[str], prepared: GridFigure | None = None) -> Path:
    """A grid of log-spectrograms (up to 4 per row) of ``waves`` ((k, T)); frequency in Hz over seconds.

    The spectrograms are computed at once (:func:`log_spectrograms`) and drawn as images with fixed margins:
    about half the time of matplotlib's ``specgram`` with ``tight_layout`` (0.34 against 0.62 s for 8 one-second
    clips, 2-core CPU, 2026-12-04). The axes, ticks and labels come from the figure's background bitmap; only the
    images, the frames over them and the titles are drawn here, and the PNG is written at :data:`GRID_PNG_LEVEL` (8
    clips, 2-core CPU, 2026-12-06: 0.25 s with a whole-figure draw and the default PNG level). ``prepared``: a
    :class:`GridFigure` built ahead for this many clips of this length (else the figure is built here)."""
    from matplotlib.image import imsave

    k, length = len(waves), np.shape(waves)[-1]
    built = prepared.take(k, length) if prepared is not None else None
    fig, axes, images, background = built if built is not None else _grid_figure(k, length)
    canvas = fig.canvas
    canvas.restore_region(background)
    for ax, image, spec, title in zip(axes, images, log_spectrograms(waves), titles, strict=False):
        image.set_data(spec)
        image.set_clim(float(spec.min()), float(spec.max()))  # what imshow's autoscaling picks
        ax.draw_artist(image)
        for spine in ax.spines.values():  # the frame drawn over the image, as a whole-figure draw orders them
            ax.draw_artist(spine)
        ax.title.set_text(title)
        ax.draw_artist(ax.title)
    imsave(path, np.asarray(canvas.buffer_rgba()), format="png", pil_kwargs={"compress_level": GRID_PNG_LEVEL})
    return path
