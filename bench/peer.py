"""mamba_ssm's CUDA selective scan as the peer of ``audiomamba bench kernel --peer mamba_ssm`` (issue 14).

No code of mamba_ssm lives in this repository. ``build`` unpacks a downloaded mamba_ssm sdist and
compiles only its ``selective_scan_cuda`` extension (``csrc/selective_scan/*.cpp, *.cu``) with
``torch.utils.cpp_extension.load``, using the nvcc/c++ flags that the sdist's own ``setup.py`` gives
that extension (read from its text) and ``-gencode arch=compute_90,code=sm_90`` in place of its list
of architectures::

    python -m audiomamba.bench.peer build --sdist .peer/mamba_ssm-2.3.2.post1.tar.gz --out /tmp/peer-build

:func:`load_peer` imports the built module from that folder and wraps it in :class:`PeerScan`,
which calls the module's ``fwd``/``bwd`` through an autograd function, so that the benchmark times
it exactly as it times our op (``pass_fn``).

Layouts (ours, docs/ARCHITECTURE.md §6 -> the peer's ``fwd(u, delta, A, B, C, D, z, delta_bias,
delta_softplus)``):

- u, z (batch, d, L): the same tensors. A (d, N): the same (float32 or complex64). D: float32.
- selective B, C (batch, N, L) -> (batch, 1, N, L): one group shared by all channels (a view).
- selective delta (batch, d, L): the same, in u's dtype; delta_bias: float32.
- LTI delta (d,): the peer has no per-channel Δ, its delta is always (batch, d, L) in u's dtype. So
  the peer gets a zero (batch, d, L) delta and Δ (+ our delta_bias) as its float32 delta_bias: the
  kernel adds the bias in float32, so Δ is not rounded to bf16; softplus, if asked, applies to the sum
  as in ours. The gradient of our Δ is the peer's ``ddelta_bias``.
- LTI B, C (d, N): the same, cast to A's dtype (the peer wants fixed B/C in the weight type). Complex A
  with fixed complex B/C is the peer's complex case; its y is 2·Re(C·h) + D u, as ours.
- Complex selective B/C (ours (batch, N, L) complex; the peer's interleaved (batch, G, N, 2L) real)
  are not mapped: :func:`peer_args` refuses them (the benchmark has no such case).
"""

from __future__ import annotations

import argparse
import ast
import importlib.machinery
import importlib.util
import json
import os
import shutil
import sys
import tarfile
import threading
import time
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from audiomamba.errors import AudioMambaError

PEER_NAME = "mamba_ssm"
MODULE = "selective_scan_cuda"
DEFAULT_BUILD = Path(".peer/build")
SDIST_HINT = ".peer/mamba_ssm-2.3.2.post1.tar.gz"
INFO_FILE = "peer-build.json"
# Flags of the sdist's list that change no code: -v to ptxas prints every kernel's registers (noise).
DROPPED_FLAGS = ("--ptxas-options=-v",)


class PeerError(AudioMambaError):
    """The peer cannot be built or loaded (one line: what, where, how to fix)."""


def build_command(out: str | Path = "/tmp/peer-build", sdist: str | Path | None = None) -> str:
    """The shell command that builds the peer into ``out``."""
    if sdist is None:
        found = sorted(Path(".peer").glob("mamba_ssm-*.tar.gz"))
        sdist = found[-1] if found else SDIST_HINT
    return f"python -m audiomamba.bench.peer build --sdist {sdist} --out {out}"


# ---------------------------------------------------------------------------------------------------
# setup.py flags


def _flag_strings(node: ast.AST, helpers: dict[str, ast.FunctionDef], dynamic: list[str]) -> list[str]:
    """The string literals a flag expression contributes, in source order.

    Lists, ``+`` and calls of functions defined in setup.py (whose returned literals are appended)
    are followed; names (``cc_flag``: the architectures) contribute nothing; f-strings are recorded
    in ``dynamic``.
    """
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        dynamic.append(ast.unparse(node))
        return []
    if isinstance(node, ast.List | ast.Tuple):
        return [s for elt in node.elts for s in _flag_strings(elt, helpers, dynamic)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _flag_strings(node.left, helpers, dynamic) + _flag_strings(node.right, helpers, dynamic)
    if isinstance(node, ast.Call):
        out = [s for arg in node.args for s in _flag_strings(arg, helpers, dynamic)]
        fn = helpers.get(node.func.id) if isinstance(node.func, ast.Name) else None
        if fn is not None:
            for stmt in fn.body:
                if isinstance(stmt, ast.Return) and stmt.value is not None:
                    out += _flag_strings(stmt.value, helpers, dynamic)
        return out
    return []


def parse_setup_flags(text: str) -> tuple[list[str], list[str]]:
    """(c++ flags, nvcc flags) that a mamba_ssm ``setup.py`` gives its CUDA extension.

    Reads every dict literal with an ``"nvcc"`` key (``extra_compile_args``) and keeps the one for
    CUDA: the ROCm one is recognised by its f-string / ``--offload-arch`` / ``-fgpu`` flags.
    Architecture flags (a variable in setup.py) are not included. Raises :class:`PeerError`
    unless exactly one CUDA flag set is found.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise PeerError(f"setup.py does not parse ({err.msg}, line {err.lineno}): use an unmodified mamba_ssm sdist") from None
    helpers = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    found: list[tuple[list[str], list[str]]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict):
            continue
        keys = {k.value: v for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)}
        if "nvcc" not in keys:
            continue
        dynamic: list[str] = []
        nvcc = _flag_strings(keys["nvcc"], helpers, dynamic)
        if dynamic or any(f.startswith(("--offload-arch", "-fgpu")) for f in nvcc):
            continue  # the ROCm (hipcc) flags
        cxx = _flag_strings(keys["cxx"], helpers, []) if "cxx" in keys else []
        found.append((cxx, nvcc))
    if len(found) != 1:
        raise PeerError(f"setup.py has {len(found)} CUDA flag sets (extra_compile_args with an 'nvcc' key), "
                        "expected 1: use an unmodified mamba_ssm sdist")
    return found[0]


def torch_cxx_std() -> str | None:
    """The C++ standard torch.utils.cpp_extension compiles extensions with (``c++20`` from torch 2.10 or so)."""
    import torch.utils.cpp_extension as ext

    text = Path(ext.__file__).read_text()
    return next((std for std in ("c++23", "c++20", "c++17") if f"-std={std}" in text), None)


def match_std(flags: list[str], std: str | None) -> list[str]:
    """``-std=`` flags older than ``std`` raised to it: torch's own headers need torch's standard
    (mamba_ssm 2.3.2's -std=c++17 does not compile torch 2.14's headers)."""
    if std is None:
        return list(flags)
    return [f"-std={std}" if f.startswith("-std=c++") and f[8:] < std[3:] else f for f in flags]


def nvcc_flags(flags: list[str], arch: str = "90") -> list[str]:
    """The sdist's nvcc flags for one architecture: noise-only flags dropped, one -gencode added."""
    return [f for f in flags if f not in DROPPED_FLAGS] + ["-gencode", f"arch=compute_{arch},code=sm_{arch}"]


# ---------------------------------------------------------------------------------------------------
# build


def _find_nvcc() -> Path | None:
    from torch.utils.cpp_extension import CUDA_HOME

    if CUDA_HOME is None:
        return None
    nvcc = Path(CUDA_HOME) / "bin" / "nvcc"
    return nvcc if nvcc.is_file() else None


def _unpack(sdist: Path, dest: Path) -> Path:
    """Unpack the sdist into ``dest`` and return its top folder (the one holding setup.py)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    try:
        with tarfile.open(sdist) as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise PeerError(f"cannot unpack {sdist} ({err}): download the mamba_ssm sdist (.tar.gz) again") from None
    tops = [p.parent for p in dest.glob("*/setup.py")]
    if len(tops) != 1:
        raise PeerError(f"{sdist} has no single top folder with a setup.py: pass a mamba_ssm sdist to --sdist")
    return tops[0]


class _Progress:
    """Prints compiled objects / sources and elapsed seconds every ``every`` s while the build runs."""

    def __init__(self, out: Path, total: int, log, every: float = 30.0) -> None:
        self.out, self.total, self.log, self.every = out, total, log, every
        self.t0 = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            done = len(list(self.out.glob("*.o")))
            self.log(f"  {done}/{self.total} objects compiled, {time.perf_counter() - self.t0:.0f} s")

    def __enter__(self) -> _Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def build(sdist: str | Path, out: str | Path = DEFAULT_BUILD, arch: str = "90", jobs: int | None = None,
          verbose: bool = False, log=print) -> Path:
    """Build mamba_ssm's ``selective_scan_cuda`` from ``sdist`` into ``out``; return the module's path.

    Only csrc/selective_scan is compiled (for sm_``arch``), with the flags of the sdist's setup.py;
    ninja runs MAX_JOBS (default: the core count) compilations at once. A rebuild with unchanged
    sources and flags is a no-op. Writes ``out/peer-build.json`` (sdist, flags, seconds).
    """
    sdist, out = Path(sdist), Path(out)
    if not sdist.is_file():
        raise PeerError(f"sdist {sdist} not found for the mamba_ssm peer: download mamba_ssm-<version>.tar.gz "
                        "(pip download --no-deps --no-binary :all: mamba_ssm) and pass it to --sdist")
    if torch.version.cuda is None:
        raise PeerError(f"torch {torch.__version__} has no CUDA, so selective_scan_cuda cannot be built: "
                        "build the peer on the GPU machine (CUDA torch and nvcc)")
    nvcc = _find_nvcc()
    if nvcc is None:
        raise PeerError("nvcc (CUDA's compiler) not found under CUDA_HOME or on PATH: build the peer where the "
                        "CUDA toolkit is installed (the GPU machine), or set CUDA_HOME to it")
    from torch.utils.cpp_extension import is_ninja_available, load

    if not is_ninja_available():
        raise PeerError("ninja not found, torch.utils.cpp_extension needs it: pip install ninja")
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    root = _unpack(sdist, out / "src")
    setup_text = (root / "setup.py").read_text()
    if MODULE not in setup_text:
        raise PeerError(f"{sdist}'s setup.py builds no {MODULE} extension: pass a mamba_ssm sdist to --sdist")
    cxx_setup, nvcc_setup = parse_setup_flags(setup_text)
    std = torch_cxx_std()
    cxx, cuda = match_std(cxx_setup, std), nvcc_flags(match_std(nvcc_setup, std), arch)
    csrc = root / "csrc" / "selective_scan"
    sources = sorted(csrc.glob("*.cpp")) + sorted(csrc.glob("*.cu"))
    if not sources:
        raise PeerError(f"{sdist} has no csrc/selective_scan/*.cpp, *.cu: pass a mamba_ssm sdist to --sdist")
    jobs = jobs or int(os.environ.get("MAX_JOBS") or os.cpu_count() or 1)
    os.environ["MAX_JOBS"] = str(jobs)
    log(f"peer build: {MODULE} of {root.name}: {len(sources)} sources for sm_{arch}, MAX_JOBS={jobs}, "
        f"nvcc {nvcc}, torch {torch.__version__}")
    log(f"  c++ flags: {' '.join(cxx)}")
    if cxx != cxx_setup:
        log(f"  (setup.py's {' '.join(f for f in cxx_setup if f.startswith('-std='))} raised to -std={std}: "
            f"torch {torch.__version__}'s headers need it)")
    log(f"  nvcc flags: {' '.join(cuda)}")
    try:
        with _Progress(out, len(sources), log):
            load(name=MODULE, sources=[str(s) for s in sources], extra_cflags=cxx, extra_cuda_cflags=cuda,
                 extra_include_paths=[str(csrc)], build_directory=str(out), verbose=verbose, with_cuda=True)
    except Exception as err:  # noqa: BLE001 - the compiler's log goes to stderr, the error is one line
        text = str(err).strip().splitlines()
        marks = [i for i, ln in enumerate(text) if i and ln.startswith("FAILED:")]
        marks = marks or [i for i, ln in enumerate(text) if i and "error:" in ln] or [0]
        start = marks[0]  # the first failed step (or compiler error) on, at most 60 lines
        print("\n".join(text[start:start + 60]), file=sys.stderr)
        raise PeerError(f"building {MODULE} from {sdist} into {out} failed ({text[0][:120] if text else type(err).__name__}): "
                        "see the compiler output above; --verbose shows every command") from None
    seconds = time.perf_counter() - t0
    so = _find_module(out)
    info = dict(sdist=sdist.name, package=root.name, arch=f"sm_{arch}", cxx_flags=cxx, nvcc_flags=cuda,
                jobs=jobs, seconds=round(seconds, 1), torch=torch.__version__, module=str(so))
    (out / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n")
    log(f"built {so} in {seconds:.0f} s")
    return so


# ---------------------------------------------------------------------------------------------------
# loading and calling


def _find_module(build_dir: Path) -> Path | None:
    if not build_dir.is_dir():
        return None
    spec = importlib.machinery.PathFinder.find_spec(MODULE, [str(build_dir)])
    return Path(spec.origin) if spec is not None and spec.origin else None


def load_peer(build_dir: str | Path = DEFAULT_BUILD) -> PeerScan:
    """Import ``selective_scan_cuda`` from ``build_dir`` (as :func:`build` left it) and wrap it.

    Any module of that name there is accepted (an extension, or a Python file: the tests put a fake
    one there). Raises :class:`PeerError` (one line, naming the build command) when it is missing,
    does not import, or has no fwd/bwd.
    """
    build_dir = Path(build_dir)
    origin = _find_module(build_dir)
    if origin is None:
        raise PeerError(f"mamba_ssm peer not built: no {MODULE} module in {build_dir}: build it with "
                        f"`{build_command(build_dir)}` (minutes on 16 cores; 31 min on 2), then pass --peer-build {build_dir}")
    spec = importlib.util.spec_from_file_location(MODULE, origin)
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - any import failure is the same user error
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise PeerError(f"mamba_ssm peer {origin} does not import ({first}): rebuild it with the torch in use: "
                        f"`{build_command(build_dir)}`") from None
    if not (callable(getattr(module, "fwd", None)) and callable(getattr(module, "bwd", None))):
        raise PeerError(f"{origin} has no fwd/bwd, so it is not mamba_ssm's {MODULE}: rebuild it with "
                        f"`{build_command(build_dir)}`")
    info_file = build_dir / INFO_FILE
    info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    return PeerScan(module, origin=str(origin), info=info)


class _PeerScanFn(torch.autograd.Function):
    """The peer's fwd/bwd as one autograd op on tensors already in its layouts."""

    @staticmethod
    def forward(ctx, module, delta_softplus: bool, u, delta, A, B, C, D, z, delta_bias):  # type: ignore[override]
        out, x, *rest = module.fwd(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
        ctx.module, ctx.delta_softplus, ctx.has_z = module, delta_softplus, z is not None
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, x, out)
        return rest[0] if z is not None else out

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        u, delta, A, B, C, D, z, delta_bias, x, out = ctx.saved_tensors
        grads = ctx.module.bwd(u, delta, A, B, C, D, z, delta_bias, dy.contiguous(), x,
                               out if ctx.has_z else None, None, ctx.delta_softplus, False)
        du, ddelta, dA, dB, dC, dD, ddelta_bias = grads[:7]
        dz = grads[7] if ctx.has_z else None
        return (None, None, du, ddelta, dA, dB, dC, dD if D is not None else None, dz,
                ddelta_bias if delta_bias is not None else None)


def peer_args(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None,
              z: Tensor | None = None, delta_bias: Tensor | None = None, delta_softplus: bool = False) -> dict:
    """Our :func:`kernels.selective_scan` arguments in the peer's layouts (module docstring).

    Done once, outside the timed calls: the result is the keyword arguments of :meth:`PeerScan.__call__`.
    """
    batch, d, L = u.shape
    if A.is_complex() and (B.dim() == 3 or C.dim() == 3):
        raise PeerError("complex A with selective B/C is not mapped to mamba_ssm's interleaved layout in "
                        "bench.peer: benchmark selective cases with real A")
    A = A.to(torch.complex64 if A.is_complex() else torch.float32).contiguous()

    def bc(x: Tensor) -> Tensor:
        return x.to(u.dtype)[:, None].contiguous() if x.dim() == 3 else x.to(A.dtype).contiguous()

    if delta.dim() == 1:  # LTI Δ: the peer's delta is (batch, d, L); Δ rides in its float32 bias
        bias = delta.float() + (delta_bias.float() if delta_bias is not None else 0.0)
        delta_p = torch.zeros(batch, d, L, dtype=u.dtype, device=u.device)
    else:
        bias = delta_bias.float() if delta_bias is not None else None
        delta_p = delta.to(u.dtype).contiguous()
    return dict(u=u.contiguous(), delta=delta_p, A=A, B=bc(B), C=bc(C),
                D=D.float().contiguous() if D is not None else None,
                z=z.to(u.dtype).contiguous() if z is not None else None,
                delta_bias=bias.contiguous() if bias is not None else None, delta_softplus=delta_softplus)


class PeerScan:
    """A loaded peer: call it on :func:`peer_args` output (autograd-aware), like our op on ours."""

    name = PEER_NAME

    def __init__(self, module: ModuleType | object, origin: str = "", info: dict | None = None) -> None:
        self.module, self.origin, self.info = module, origin, info or {}

    def __call__(self, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None,
                 z: Tensor | None = None, delta_bias: Tensor | None = None, delta_softplus: bool = False) -> Tensor:
        return _PeerScanFn.apply(self.module, delta_softplus, u, delta, A, B, C, D, z, delta_bias)

    prepare = staticmethod(peer_args)

    def describe(self) -> str:
        what = self.info.get("package", PEER_NAME)
        arch = f", {self.info['arch']}" if "arch" in self.info else ""
        return f"{what} {MODULE}{arch} ({self.origin})"


# ---------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiomamba.bench.peer",
                                     description="Build mamba_ssm's selective_scan_cuda, the peer of `bench kernel`.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="unpack a mamba_ssm sdist and build only its selective-scan extension")
    b.add_argument("--sdist", required=True, type=Path, help="mamba_ssm-<version>.tar.gz")
    b.add_argument("--out", type=Path, default=DEFAULT_BUILD, help=f"build folder (default {DEFAULT_BUILD})")
    b.add_argument("--arch", default="90", help="compute capability without the dot (default 90: H100/H200)")
    b.add_argument("--jobs", type=int, default=None, help="parallel compilations (default MAX_JOBS or the core count)")
    b.add_argument("--verbose", action="store_true", help="show every compiler command")
    args = parser.parse_args(argv)
    try:
        build(args.sdist, args.out, arch=args.arch, jobs=args.jobs, verbose=args.verbose,
              log=lambda s: print(s, flush=True))
    except PeerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
