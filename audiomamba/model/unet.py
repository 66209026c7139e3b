"""The SaShiMi-style U-Net over μ-law tokens (docs/ARCHITECTURE.md §5.1) with an exact step mode (§5.3).

Structure (SaShiMi "unet" variant): every level keeps the outputs of its input and of each
down block; the up path adds them back in reverse order, one after the UpPool and one after
each up block. The center adds its input back to its output::

    Level(x):  s = [x];  x = down_1(x); s += [x]; …; x = down_n(x); s += [x]
               x = UpPool(inner(DownPool(x))) + s.pop()
               x = up_1(x) + s.pop(); …; x = up_n(x) + s.pop()
    Center(x): blocks(x) + x

With ``n_down`` < ``n`` (e.g. SaShiMi's non-U-Net variant, ``n_down = 0``) the up blocks past the
available skips add none (they are residual blocks already).

Step mode runs level 0 every sample, level i every prod(pool[:i])-th sample (through the
pooling buffers), and reproduces the parallel forward exactly.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiomamba import kernels
from audiomamba.errors import ConfigError
from audiomamba.model.blocks import Block, make_block
from audiomamba.model.config import ModelConfig, StageSpec
from audiomamba.model.runs import BlockRun


class DownPool(nn.Module):
    """(B, L, H) -> (B, L/p, expand·H): p consecutive steps reshaped into channels, then Linear(p·H, expand·H)."""

    def __init__(self, width: int, pool: int, expand: int) -> None:
        super().__init__()
        self.pool, self.width = pool, width
        self.linear = nn.Linear(pool * width, expand * width)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, H) -> (B, L/p, expand·H); L must be a multiple of p."""
        Bsz, L, H = x.shape
        return self.linear(x.reshape(Bsz, L // self.pool, self.pool * H))

    def init_state(
        self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32
    ) -> dict[str, Any]:
        """Buffer (B, p, H) of the inputs of the current pooled step and how many it holds."""
        return {"buf": torch.zeros(batch, self.pool, self.width, device=device, dtype=dtype), "n": 0}

    def step(self, x: Tensor, state: dict[str, Any]) -> tuple[Tensor | None, dict[str, Any]]:
        """x (B, H) -> pooled output (B, expand·H) every p-th call, else None."""
        self.slot(state).copy_(x)
        return self.advance(state, x.dtype), state

    def slot(self, state: dict[str, Any]) -> Tensor:
        """The buffer's row (B, H) that this step's input goes to (a view: a run of blocks writes it directly).

        In shift mode (``state["shift"]``, :meth:`Level.shift_pools`) the buffer first moves up one row and the
        input goes to the last row, so the view is the same at every phase (what a CUDA graph of a few steps
        replayed at any phase needs); the pooled output is the same."""
        buf = state["buf"]
        if state.get("shift"):
            if self.pool > 1:
                buf[:, :-1].copy_(buf[:, 1:].clone())
            return buf[:, -1]
        return buf[:, state["n"]]

    def advance(self, state: dict[str, Any], dtype: torch.dtype) -> Tensor | None:
        """After :meth:`slot` was written: the pooled output (B, expand·H) every p-th call, else None."""
        state["n"] += 1
        if state["n"] < self.pool:
            return None
        state["n"] = 0
        buf = state["buf"]
        return self.linear(buf.reshape(buf.shape[0], -1).to(dtype))


class UpPool(nn.Module):
    """(B, L/p, H_in) -> (B, L, H_in/expand): Linear(H_in, p·H_in/expand), shift right one pooled step, unfold."""

    def __init__(self, width_in: int, pool: int, expand: int) -> None:
        super().__init__()
        self.pool, self.width_out = pool, width_in // expand
        self.linear = nn.Linear(width_in, pool * self.width_out)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L/p, H_in) -> (B, L, H_out); output step t depends on pooled steps < t // p only."""
        Bsz, Lp, _ = x.shape
        y = F.pad(self.linear(x)[:, :-1], (0, 0, 1, 0))  # causal shift by one pooled step
        return y.reshape(Bsz, Lp * self.pool, self.width_out)

    def init_state(
        self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32
    ) -> dict[str, Any]:
        """Buffer (B, p, H_out) of pending full-rate outputs (zeros = the shift) and the read position."""
        return {"buf": torch.zeros(batch, self.pool, self.width_out, device=device, dtype=dtype), "i": 0}

    def step(
        self, x: Tensor | None, state: dict[str, Any], skip: Tensor | None = None, staged: bool = False
    ) -> tuple[Tensor, dict[str, Any]]:
        """Emit the next full-rate output (B, H_out) (plus ``skip`` (B, H_out) if given, in one op);
        when the inner level produced x (B, H_in), refill after emitting (``staged``: see :meth:`advance`)."""
        out = self.pending(state)
        y = out.clone() if skip is None else out + skip
        self.advance(x, state, staged)
        return y, state

    def pending(self, state: dict[str, Any]) -> Tensor:
        """The next full-rate output (B, H_out), a view of the buffer (a run of blocks reads it directly); in shift
        mode (:meth:`Level.shift_pools`) always the first row, the buffer moving down one row per step instead."""
        return state["buf"][:, 0] if state.get("shift") else state["buf"][:, state["i"]]

    def advance(self, x: Tensor | None, state: dict[str, Any], staged: bool = False) -> None:
        """After :meth:`pending` was read: the next position, and the refill when the inner level produced x.
        ``staged``: the inner level ran on a side stream and its refill waits in the level's staging buffer
        (:meth:`Level.attach_overlap`); the position restarts, the buffer is left for the join to overwrite."""
        state["i"] += 1
        if x is None and not staged:
            if state.get("shift") and self.pool > 1:
                buf = state["buf"]
                buf[:, :-1].copy_(buf[:, 1:].clone())
            return
        if state["i"] != self.pool:
            raise RuntimeError(f"UpPool.step got a pooled input at phase {state['i']} of {self.pool}")
        if x is not None:
            state["buf"].copy_(self.linear(x).reshape(x.shape[0], self.pool, self.width_out))
        state["i"] = 0


def _stage(spec: StageSpec, width: int, cfg: ModelConfig, n: int | None = None) -> nn.ModuleList:
    return nn.ModuleList(make_block(spec.block, width, cfg) for _ in range(spec.n if n is None else n))


def _stage_state(blocks: nn.ModuleList, batch: int, device: Any, dtype: torch.dtype) -> list[Any]:
    return [b.init_state(batch, device, dtype) for b in blocks]


class Center(nn.Module):
    """Innermost stage: x (B, L, H) -> blocks(x) + x."""

    def __init__(self, width: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.blocks = _stage(cfg.center, width, cfg)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, H) -> (B, L, H)."""
        y = x
        for blk in self.blocks:
            y = blk(y)
        return y + x

    def init_state(self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32) -> list[Any]:
        """One state per block."""
        return _stage_state(self.blocks, batch, device, dtype)

    def reserve_cache(self, state: list[Any], steps: int) -> None:
        """Preallocate the attention KV caches for ``steps`` steps of this stage."""
        for blk, st in zip(self.blocks, state, strict=True):
            blk.reserve_cache(st, steps)

    def step(self, x: Tensor, state: list[Any], run: BlockRun | None = None) -> tuple[Tensor, list[Any]]:
        """x (B, H) -> (y (B, H), state); block states are updated in ``state`` (by one launch with ``run``, the
        blocks' :class:`BlockRun`)."""
        if run is not None:
            return run.step(x, x[None], len(self.blocks) - 1)[-1], state
        y, last = x, len(self.blocks) - 1
        for i, blk in enumerate(self.blocks):
            y, state[i] = blk.step(y, state[i], x if i == last else None)  # the last adds the input back
        return (y if last >= 0 else y + x), state


class Level(nn.Module):
    """U-Net level ``depth``: down blocks, DownPool, inner level (or center), UpPool, up blocks."""

    def __init__(self, cfg: ModelConfig, depth: int) -> None:
        super().__init__()
        width, pool, spec = cfg.width(depth), cfg.pool[depth], cfg.levels[depth]
        self.depth = depth
        self.down = _stage(spec, width, cfg, spec.down)
        self.down_pool = DownPool(width, pool, cfg.expand)
        inner_width = cfg.width(depth + 1)
        self.inner: Level | Center = (
            Level(cfg, depth + 1) if depth + 1 < len(cfg.pool) else Center(inner_width, cfg)
        )
        self.up_pool = UpPool(inner_width, pool, cfg.expand)
        self.up = _stage(spec, width, cfg)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, H) -> (B, L, H); L divisible by the pooling product from this level in."""
        skips = [x]
        for blk in self.down:
            x = blk(x)
            skips.append(x)
        x = self.up_pool(self.inner(self.down_pool(x))) + skips.pop()
        for blk in self.up:
            x = blk(x)
            if skips:
                x = x + skips.pop()
        return x

    def init_state(
        self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32
    ) -> dict[str, Any]:
        """Block states, pooling buffers and the inner level's state."""
        return {
            "down": _stage_state(self.down, batch, device, dtype),
            "down_pool": self.down_pool.init_state(batch, device, dtype),
            "inner": self.inner.init_state(batch, device, dtype),
            "up_pool": self.up_pool.init_state(batch, device, dtype),
            "up": _stage_state(self.up, batch, device, dtype),
        }

    def reserve_cache(self, state: dict[str, Any], steps: int) -> None:
        """Preallocate the attention KV caches for ``steps`` full-rate steps; the inner level runs
        every p-th step, so it gets ceil(steps / p) of its own."""
        for blocks, key in ((self.down, "down"), (self.up, "up")):
            for blk, st in zip(blocks, state[key], strict=True):
                blk.reserve_cache(st, steps)
        self.inner.reserve_cache(state["inner"], -(-steps // self.down_pool.pool))

    def step(self, x: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """One full-rate step of this level: x (B, H) -> (y (B, H), state); the inner level runs every p-th step.
        Runs attached by :meth:`attach_runs` step their blocks as one launch each (same numbers up to the order of
        sums)."""
        runs = state.get("runs") or {}
        if runs and not kernels.use_fused_step(x):  # checked only where runs are attached: no cost without them
            runs = {}
        skips, stacked = [x], None
        if runs.get("down") is not None:
            # stacked (n_down + 1, B, H): x and every down block's output; the last also goes to the pooling buffer
            stacked = runs["down"].step(x, tail=self.down_pool.slot(state["down_pool"]))
            skips, x = list(stacked.unbind(0)), stacked[-1]
            pooled = self.down_pool.advance(state["down_pool"], x.dtype)
        else:
            for i, blk in enumerate(self.down):
                x, state["down"][i] = blk.step(x, state["down"][i])
                skips.append(x)
            pooled, _ = self.down_pool.step(x, state["down_pool"])
        inner, over = None, state.get("overlap")
        joining = over is not None and over["staged"]  # the inner level's refill of an earlier step, still pending
        if pooled is not None:
            center = {"run": runs["center"]} if runs.get("center") is not None else {}
            if over is not None:
                if joining:  # a pooling factor of 1: the last refill lands before the next one is made
                    self._join(state)
                    joining = False
                self._fork_inner(pooled, state, over, center)
            else:
                inner = self.inner.step(pooled, state["inner"], **center)[0]
        if joining:
            self._join(state)
        staged = pooled is not None and over is not None
        if runs.get("up") is not None:
            # the run's input is the UpPool's pending output + its skip; up block i adds skips[-1 - i] (the stack
            # read backwards)
            skip = skips.pop()
            res = (stacked[:len(skips)] if stacked is not None else torch.stack(skips)) if skips else None
            out = runs["up"].step(self.up_pool.pending(state["up_pool"]), res, 0, True, x0b=skip)[-1]
            self.up_pool.advance(inner, state["up_pool"], staged)  # after the run has read the pending output
            return out, state
        x, _ = self.up_pool.step(inner, state["up_pool"], skips.pop(), staged)
        for i, blk in enumerate(self.up):
            x, state["up"][i] = blk.step(x, state["up"][i], skips.pop() if skips else None)
        return x, state

    def attach_overlap(self, state: dict[str, Any], device: Any, levels: int | None = None) -> None:
        """Take the inner levels off the critical path of this level's steps (and of the inner levels' own, for
        ``levels`` levels counted from this one; None: all of them): at a step where the inner level runs, it runs on
        a side stream (forked from the current one) and its UpPool refill goes to a staging buffer; this level's up
        blocks of that step go on (they read the last row of the old refill), the next step's down blocks too, and
        only the next step's up path waits for the side stream (:meth:`_join`). The inner level's output is first read one step after it is made, so nothing changes but
        the order of the launches. On a CPU the same staging runs without streams. :meth:`join_overlap` lands
        what is still pending (before a CUDA graph's capture ends, and at the end of a generation)."""
        cuda = torch.device(device).type == "cuda"
        state["overlap"] = {"side": torch.cuda.Stream(device) if cuda else None,
                            "done": torch.cuda.Event() if cuda else None,
                            "next": torch.empty_like(state["up_pool"]["buf"]), "staged": False}
        if isinstance(self.inner, Level) and (levels is None or levels > 1):
            self.inner.attach_overlap(state["inner"], device, None if levels is None else levels - 1)

    def join_overlap(self, state: dict[str, Any]) -> None:
        """Land every pending refill of this level and the inner ones on the current stream. This level's first:
        its side stream also ran the inner level's up blocks, which read the buffer that the inner level's join
        overwrites, and waiting for this level's event orders that write after those reads."""
        over = state.get("overlap")
        if over is not None and over["staged"]:
            self._join(state)
        if isinstance(self.inner, Level):
            self.inner.join_overlap(state["inner"])

    def _fork_inner(self, pooled: Tensor, state: dict[str, Any], over: dict[str, Any], center: dict) -> None:
        side = over["side"]
        if side is not None:
            side.wait_stream(torch.cuda.current_stream(side.device))
            if pooled.is_cuda:
                pooled.record_stream(side)  # made on the current stream, read on the side one
        with torch.cuda.stream(side) if side is not None else contextlib.nullcontext():
            y = self.inner.step(pooled, state["inner"], **center)[0]
            over["next"].copy_(self.up_pool.linear(y).reshape(over["next"].shape))
            if side is not None:
                over["done"].record(side)
        over["staged"] = True

    def _join(self, state: dict[str, Any]) -> None:
        """The staged refill into the UpPool's buffer, after the side stream's work."""
        over = state["overlap"]
        if over["side"] is not None:
            torch.cuda.current_stream(over["side"].device).wait_event(over["done"])
        state["up_pool"]["buf"].copy_(over["next"])
        over["staged"] = False

    def set_phase(self, state: dict[str, Any], step: int) -> None:
        """Set this level's pooling positions, and the inner levels', to where they are after ``step`` steps of this
        level from its start (the buffers' contents are left alone: see :meth:`shift_pools`)."""
        phase = step % self.down_pool.pool
        state["down_pool"]["n"] = phase
        state["up_pool"]["i"] = phase  # both count this level's steps since the inner level last ran
        if isinstance(self.inner, Level):
            self.inner.set_phase(state["inner"], step // self.down_pool.pool)

    def shift_pools(self, state: dict[str, Any], outer: bool = True) -> None:
        """Put the pooling buffers of the levels inside this one (not this one's, unless ``outer`` is False) in
        shift mode: their views no longer depend on the phase, so one CUDA graph of this level's p steps serves
        every phase of the inner levels. Call it at phase 0 (the layouts of the two modes agree there)."""
        if not outer:
            state["down_pool"]["shift"] = state["up_pool"]["shift"] = True
        if isinstance(self.inner, Level):
            self.inner.shift_pools(state["inner"], outer=False)

    def attach_runs(self, state: dict[str, Any]) -> int:
        """Give this level's (and its inner levels') runs of Mamba blocks a :class:`BlockRun` in ``state``
        (one launch per run and step, for fewer than 16 rows); returns how many runs got one."""
        runs = {"down": BlockRun.make(self.down, state["down"]), "up": BlockRun.make(self.up, state["up"])}
        if isinstance(self.inner, Center):
            runs["center"] = BlockRun.make(self.inner.blocks, state["inner"])
            inner = 0
        else:
            inner = self.inner.attach_runs(state["inner"])
        state["runs"] = runs
        return inner + sum(r is not None for r in runs.values())

    def check_runs(self, state: dict[str, Any]) -> None:
        """KernelError if a run of this level (or an inner one) gave up waiting at a grid barrier."""
        for run in state.get("runs", {}).values():
            if run is not None:
                run.check()
        if isinstance(self.inner, Level):
            self.inner.check_runs(state["inner"])


class AudioUNet(nn.Module):
    """Tokens (B, L) -> Embedding(vocab, D) -> U-Net -> LayerNorm -> Linear(D, vocab) logits (B, L, vocab)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embedding = nn.Embedding(cfg.vocab, cfg.d_model)
        self.body: Level | Center = Level(cfg, 0) if cfg.pool else Center(cfg.d_model, cfg)
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.head = nn.Linear(cfg.d_model, cfg.vocab)

    def attach_runs(self, state: dict[str, Any]) -> int:
        """Step every run of consecutive Mamba blocks of one kind (a stage's down blocks, its up blocks, the center)
        as one launch (:mod:`audiomamba.model.runs`; one stream, fewer than 16 rows). The runs hold copies of the
        weights as they are now. Returns how many runs were attached (0 for a model without pooling)."""
        return self.body.attach_runs(state["body"]) if isinstance(self.body, Level) else 0

    def set_phase(self, state: dict[str, Any], step: int) -> None:
        """Set every pooling position in ``state`` to where it is after ``step`` full-rate steps (:meth:`Level.set_phase`;
        the step count and the buffers are left alone)."""
        if isinstance(self.body, Level):
            self.body.set_phase(state["body"], step)

    def shift_pools(self, state: dict[str, Any]) -> None:
        """Shift mode for the pooling buffers below the outer level (:meth:`Level.shift_pools`), at phase 0."""
        if isinstance(self.body, Level):
            self.body.shift_pools(state["body"])

    def attach_overlap(self, state: dict[str, Any], device: Any, levels: int | None = None) -> None:
        """Step the inner levels beside the outer ones (:meth:`Level.attach_overlap`, ``levels`` levels from the
        outermost; a model without pooling has none)."""
        if isinstance(self.body, Level):
            self.body.attach_overlap(state["body"], device, levels)

    def join_overlap(self, state: dict[str, Any]) -> None:
        """Land the inner levels' pending work (:meth:`Level.join_overlap`)."""
        if isinstance(self.body, Level):
            self.body.join_overlap(state["body"])

    def check_runs(self, state: dict[str, Any]) -> None:
        """KernelError if a launch of the runs that :meth:`attach_runs` attached gave up at a grid barrier (its
        samples are wrong); reads flags from the device, so call it once after a generation."""
        if isinstance(self.body, Level):
            self.body.check_runs(state["body"])

    def check_length(self, length: int) -> None:
        """ConfigError unless ``length`` is a positive multiple of the pooling product."""
        P = self.config.pool_product
        if length > 0 and length % P == 0:
            return
        lo, hi = (length // P) * P, (length // P + 1) * P
        near = f"{lo} or {hi}" if lo > 0 else f"{hi}"
        raise ConfigError(
            f"sequence length {length} is not divisible by the pooling product {P} (pool {self.config.pool}) "
            f"in the model input: use a multiple of {P}, e.g. {near}"
        )

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (B, L) int64 in [0, vocab) -> logits (B, L, vocab)."""
        if tokens.dim() != 2:
            raise ConfigError(
                f"tokens have shape {tuple(tokens.shape)} in AudioUNet.forward: pass (batch, length)"
            )
        self.check_length(tokens.shape[1])
        x = self.body(self.embedding(tokens))
        return self.head(self.norm(x))

    def init_state(
        self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32
    ) -> dict[str, Any]:
        """Step-mode state of the whole U-Net for ``batch`` sequences starting at t = 0.

        SSM states are float32/complex64 whatever ``dtype``; conv/pool buffers and KV caches use ``dtype``.
        """
        return {"body": self.body.init_state(batch, device, dtype), "t": 0}

    def reserve_cache(self, state: dict[str, Any], steps: int) -> None:
        """Preallocate every attention KV cache in ``state`` for ``steps`` more steps, so that the
        state keeps fixed shapes while stepping (needed to capture steps in a CUDA graph). Stepping
        further than that is an error. No-op for models without attention."""
        self.body.reserve_cache(state["body"], steps)

    def step(self, tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """One autoregressive step: tokens (B,) -> logits (B, vocab); ``state`` is updated (in place)."""
        if tokens.dim() != 1:
            raise ConfigError(
                f"tokens have shape {tuple(tokens.shape)} in AudioUNet.step: pass one token per sequence, shape (batch,)"
            )
        x = self.step_body(self.embedding(tokens), state)
        if kernels.use_fused_step(x):  # one launch instead of three (same math)
            return kernels.norm_linear(x, self.norm.weight, self.norm.bias, self.norm.eps, self.head.weight,
                                       self.head.bias), state
        return self.head(self.norm(x)), state

    def step_body(self, x: Tensor, state: dict[str, Any]) -> Tensor:
        """One step of the body from an embedded input: x (B, d_model) -> the body's output before the head;
        ``state`` is updated (in place)."""
        x, _ = self.body.step(x, state["body"])
        state["t"] += 1
        return x

    def draws_in_head(self, rows: int) -> bool:
        """Whether steps of ``rows`` rows should end in :meth:`step_and_draw` (its kernel takes this model's head and
        pays at this batch: :func:`audiomamba.kernels.triton_sample.head_sample_pays`)."""
        from audiomamba.kernels.triton_sample import head_sample_pays

        return head_sample_pays(self.head.in_features, self.head.out_features, rows)

    def step_and_draw(self, x: Tensor, state: dict[str, Any], noise: Tensor | None, temperature: float,
                      forced: Tensor, force: Tensor, token_out: Tensor, logp_out: Tensor,
                      min_p: float = 0.0) -> Tensor:
        """One generation step from an embedded input to the next one: the body's step, then the head, the token
        draw and the drawn tokens' embeddings in one launch (:func:`kernels.head_sample_step`; the draw of
        :func:`audiomamba.kernels.triton_sample.sample_step_triton`, into ``token_out`` and ``logp_out``). Returns
        the next step's (B, d_model) input. Triton only: callers check :func:`kernels.use_fused_step` and
        :meth:`draws_in_head`."""
        y = self.step_body(x, state)
        return kernels.head_sample_step(y, self.norm.weight, self.norm.bias, self.norm.eps, self.head.weight,
                                        self.head.bias, self.embedding.weight, noise, temperature, forced, force,
                                        token_out, logp_out, min_p)

    def num_params(self) -> int:
        """Number of parameters (works on the meta device)."""
        return sum(p.numel() for p in self.parameters())

    @property
    def blocks(self) -> list[Block]:
        """All blocks in forward order (for inspection)."""
        return [m for m in self.modules() if isinstance(m, Block)]
