"""Batched ancestral sampling of many samples, with prompts, seeds and per-sample log-likelihoods."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from audiomamba.generate.stepper import SamplingConfig, Stepper, step_period
from audiomamba.tokenizer import bits_per_sample


@dataclass
class Generated:
    """``n`` samples: tokens (n, length) int64 on the CPU; logp (n, length) per-token log-probs
    (nats); ``prompt_len`` leading tokens of each row are the prompt."""

    tokens: torch.Tensor
    logp: torch.Tensor
    prompt_len: int
    seconds: float
    #: wall seconds of the sampling's start-up inside ``seconds``, summed over the batches (:attr:`Stepper.startup`:
    #: "states", "warm-up", "capture"; the rest of ``seconds`` is the periods themselves)
    startup: dict[str, float] = field(default_factory=dict)

    def loglik(self) -> torch.Tensor:
        """Log-likelihood (nats) of the generated part of each sample: (n,)."""
        return self.logp[:, self.prompt_len :].sum(dim=1, dtype=torch.float64)  # no float64 copy of logp

    def bpb(self, loglik: torch.Tensor | None = None) -> torch.Tensor:
        """Bits per generated sample: (n,) (from ``loglik``, this object's :meth:`loglik`, when already at hand)."""
        n_gen = max(self.tokens.shape[1] - self.prompt_len, 1)
        return bits_per_sample(-(self.loglik() if loglik is None else loglik) / n_gen)


def host_copy(t: torch.Tensor, small: bool = False) -> torch.Tensor:
    """``t`` on the CPU. From a GPU the copy goes through pinned memory (at batch 2048 x 1 s the pageable copies of
    the tokens and log-probabilities took 0.23 s, 1.7 GB/s, on an H100, 2026-12-06), and with ``small`` (int64 tokens
    below 256) as uint8, an eighth of the bytes, widened again on the CPU."""
    if t.device.type != "cuda":
        return t.cpu()
    src = t.to(torch.uint8) if small and t.dtype == torch.int64 else t
    out = torch.empty(src.shape, dtype=src.dtype, pin_memory=True)
    out.copy_(src)
    return out.long() if out.dtype != t.dtype else out


def generate_tokens(
    model: nn.Module,
    n: int,
    length: int,
    batch: int,
    sampling: SamplingConfig,
    seed: int = 0,
    prompts: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
    use_graph: bool | None = None,
    bf16: bool = False,
    progress: bool = True,
    state_dtype: torch.dtype | None = None,
    on_started: Callable[[], None] | None = None,
    on_tokens: Callable[[int, torch.Tensor, int], None] | None = None,
) -> Generated:
    """Sample ``n`` token sequences of ``length`` in batches of ``batch``.

    prompts: (n, P) int64 or None; the first P tokens of each sample are its prompt.
    Batch ``k`` uses seed ``seed + k``, so a given seed reproduces the same samples.
    ``use_graph`` (default: on CUDA) captures each period of steps as a CUDA graph. ``state_dtype``: the Mamba
    blocks' step states (:class:`~audiomamba.generate.stepper.Stepper`; None: ``AUDIOMAMBA_STEP_STATES`` or auto, i.e.
    float16 for a GPU batch of 16+ rows, else float32). ``on_started`` is called once, after the first batch's first
    period (with a graph: once it is captured and its first replay queued, when the CPU mostly waits for the GPU).
    ``on_tokens(lo, tokens, steps)`` after every period of the batch from sample ``lo`` on: its (time, B) token
    buffer, the first ``steps`` steps queued (:class:`~audiomamba.generate.output.WavSink` writes them ahead).
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    device = torch.device(device)
    use_graph = device.type == "cuda" if use_graph is None else use_graph
    if use_graph and device.type != "cuda":
        raise ValueError("CUDA graphs need a CUDA device")
    prompt_len = 0 if prompts is None else int(prompts.shape[1])
    model = model.to(device).eval()
    period = step_period(model)
    tokens, logp = [], []
    vocab = getattr(getattr(model, "config", None), "vocab", None)
    small_vocab = vocab is not None and vocab <= 256  # tokens fit in uint8 on their way to the CPU
    startup: dict[str, float] = {}
    steps_total = -(-n // batch) * -(-length // period)
    start = time.perf_counter()
    cols = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*cols, disable=not progress) as bar:
        task = bar.add_task("generating", total=steps_total, rate="")
        done_periods = 0
        for k, lo in enumerate(range(0, n, batch)):
            b = min(batch, n - lo)
            gen = torch.Generator(device=device).manual_seed(seed + k) if not use_graph else None
            stepper = Stepper(model, b, device, sampling, use_graph, gen, seed + k,
                              torch.bfloat16 if bf16 else None, state_dtype=state_dtype)

            def tick(p: int, base: int = done_periods, b: int = b, lo: int = lo) -> None:
                nonlocal on_started
                if on_started is not None:
                    on_started, call = None, on_started
                    call()
                secs = time.perf_counter() - start
                audio = (lo * length + b * p * period) / 16000
                bar.update(task, completed=base + p, rate=f"{audio / max(secs, 1e-9):.1f}× real time")

            prompt = None if prompts is None else prompts[lo : lo + b]
            feed = None if on_tokens is None else (lambda steps, buf, lo=lo: on_tokens(lo, buf, steps))
            tok, lp = stepper.run(prompt, length, on_period=tick, on_tokens=feed)
            tokens.append(host_copy(tok, small=small_vocab))
            logp.append(host_copy(lp))
            for part, secs in stepper.startup.items():
                startup[part] = startup.get(part, 0.0) + secs
            done_periods += -(-length // period)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    tokens = tokens[0] if len(tokens) == 1 else torch.cat(tokens)  # one batch: no 2nd copy (0.03 s at 2048 x 1 s)
    logp = logp[0] if len(logp) == 1 else torch.cat(logp)
    return Generated(tokens, logp, prompt_len, time.perf_counter() - start, startup)
