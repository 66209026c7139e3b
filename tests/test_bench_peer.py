"""`bench kernel --peer mamba_ssm` on the CPU: setup.py flag reading, the build driver (compiler mocked),
the loader and its one-line errors, the layout mapping, and the report's peer columns.

The peer here is a fake ``selective_scan_cuda`` (a Python file in a temporary build folder, loaded
by ``load_peer`` like the real extension) whose fwd/bwd run the repository's reference scan on the
peer's layouts. The real extension needs a GPU (BENCHMARKS.md, "Against mamba_ssm").
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import torch
from audiomamba.bench import peer as P
from audiomamba.bench.kernel import Case, _ratio, make_inputs, peer_cells, run_benchmark
from audiomamba.kernels.reference import selective_scan_ref

FAKE = '''"""Fake selective_scan_cuda: mamba_ssm's fwd/bwd interface on its layouts, via audiomamba's reference."""
import torch
from audiomamba.kernels.reference import selective_scan_ref

SCALE = 1.0  # a test sets it to plant a known difference in y
CALLS = {"fwd": 0, "bwd": 0}


def _scan(u, delta, A, B, C, D, z, delta_bias, softplus):
    assert delta.shape == u.shape and delta.dtype == u.dtype, "the peer takes delta as (batch, d, L)"
    for x in (B, C):
        assert (x.dim() == 2 and x.dtype == A.dtype) or (x.dim() == 4 and x.shape[1] == 1 and x.dtype == u.dtype)
    B = B[:, 0] if B.dim() == 4 else B
    C = C[:, 0] if C.dim() == 4 else C
    return selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, softplus) * SCALE


def fwd(u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    CALLS["fwd"] += 1
    out = _scan(u, delta, A, B, C, D, None, delta_bias, delta_softplus)
    x = torch.zeros(u.shape[0], u.shape[1], 1, 2 * A.shape[1], dtype=A.dtype)
    gated = [_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus)] if z is not None else []
    return [out, x] + gated


def bwd(u, delta, A, B, C, D, z, delta_bias, dout, x, out, dz, delta_softplus, recompute_out_z):
    CALLS["bwd"] += 1
    leaves = [a.detach().requires_grad_() if a is not None else None for a in (u, delta, A, B, C, D, z, delta_bias)]
    with torch.enable_grad():
        y = _scan(*leaves, delta_softplus)
        grads = iter(torch.autograd.grad(y, [g for g in leaves if g is not None], dout))
    du, ddelta, dA, dB, dC, dD, dz_, ddelta_bias = [next(grads) if g is not None else None for g in leaves]
    return [du, ddelta, dA, dB, dC, dD, ddelta_bias] + ([dz_] if z is not None else [])
'''

SETUP = '''
import os
def append_nvcc_threads(nvcc_extra_args):
    return nvcc_extra_args + ["--threads", "4"]
cc_flag = ["-gencode", "arch=compute_80,code=sm_80"]
if HIP_BUILD:
    extra_compile_args = {"cxx": ["-O3"], "nvcc": ["-O3", f"--offload-arch={os.getenv('A', 'native')}"] + cc_flag}
else:
    extra_compile_args = {
        "cxx": ["-O3", "-std=c++17"],
        "nvcc": append_nvcc_threads(["-O3", "-U__CUDA_NO_HALF_OPERATORS__", "--use_fast_math",
                                     "--ptxas-options=-v", "-lineinfo"] + cc_flag),
    }
ext_modules = [CUDAExtension(name="selective_scan_cuda", sources=[], extra_compile_args=extra_compile_args)]
'''

SEL, LTI = Case(1, 3, 4, 8, "selective-real"), Case(1, 3, 4, 8, "lti-complex")


@pytest.fixture
def fake_peer(tmp_path):
    (tmp_path / "selective_scan_cuda.py").write_text(FAKE)
    return P.load_peer(tmp_path)


def test_setup_flags_of_the_cuda_extension():
    cxx, nvcc = P.parse_setup_flags(SETUP)
    assert cxx == ["-O3", "-std=c++17"]
    assert nvcc == ["-O3", "-U__CUDA_NO_HALF_OPERATORS__", "--use_fast_math", "--ptxas-options=-v", "-lineinfo",
                    "--threads", "4"]  # the ROCm set and the arch list (a variable) are left out
    assert P.nvcc_flags(nvcc, "90") == ["-O3", "-U__CUDA_NO_HALF_OPERATORS__", "--use_fast_math", "-lineinfo",
                                        "--threads", "4", "-gencode", "arch=compute_90,code=sm_90"]
    assert P.match_std(["-O3", "-std=c++17"], "c++20") == ["-O3", "-std=c++20"]  # torch's headers win
    assert P.match_std(["-std=c++20"], "c++17") == ["-std=c++20"] and P.match_std(["-std=c++17"], None) == ["-std=c++17"]
    for bad in ("x = 1", SETUP + "\nmore = {'nvcc': ['-O2']}\n", "def (:"):
        with pytest.raises(P.PeerError) as ex:
            P.parse_setup_flags(bad)
        assert "\n" not in str(ex.value)


def test_peer_layouts():
    sel = P.peer_args(**make_inputs(SEL, torch.float32, "cpu"))
    assert sel["B"].shape == (1, 1, 4, 8) and sel["C"].stride(-1) == 1 and sel["delta"].shape == (1, 3, 8)
    assert sel["delta_bias"].dtype == torch.float32 and sel["delta_softplus"]
    lti_in = make_inputs(LTI, torch.bfloat16, "cpu")
    lti = P.peer_args(**lti_in)
    assert lti["delta"].shape == (1, 3, 8) and lti["delta"].dtype == torch.bfloat16 and not lti["delta"].any()
    assert lti["delta_bias"].dtype == torch.float32 and torch.equal(lti["delta_bias"], lti_in["delta"].float())
    assert lti["B"].shape == (3, 4) and lti["B"].dtype == torch.complex64
    with pytest.raises(P.PeerError):
        P.peer_args(**{**lti_in, "B": torch.ones(1, 4, 8, dtype=torch.complex64)})


@pytest.mark.parametrize("case", [SEL, LTI], ids=lambda c: c.kind)
def test_peer_wrapper_matches_our_op_forward_and_backward(fake_peer, case):
    ours = make_inputs(case, torch.float32, "cpu")
    theirs = fake_peer.prepare(**ours)
    names = ["u", "A", "D", "z", "delta", "B", "C"]
    ours_g = {k: ours[k].detach().clone().requires_grad_() for k in names}
    theirs_g = {k: v.detach().clone().requires_grad_() if k in names + ["delta_bias"] else v
                for k, v in theirs.items()}
    y_ours = selective_scan_ref(**{**ours, **ours_g})
    y_peer = fake_peer(**theirs_g)
    torch.testing.assert_close(y_peer, y_ours, atol=1e-5, rtol=1e-5)
    gy = torch.randn_like(y_ours)
    y_ours.backward(gy)
    y_peer.backward(gy)
    for k in ["u", "A", "D", "z"]:
        torch.testing.assert_close(theirs_g[k].grad, ours_g[k].grad, atol=1e-4, rtol=1e-4)
    if case.lti:  # our Δ (d,) is the peer's delta_bias
        torch.testing.assert_close(theirs_g["delta_bias"].grad, ours_g["delta"].grad, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(theirs_g["B"].grad, ours_g["B"].grad, atol=1e-4, rtol=1e-4)
    else:
        torch.testing.assert_close(theirs_g["delta"].grad, ours_g["delta"].grad, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(theirs_g["B"].grad[:, 0], ours_g["B"].grad, atol=1e-4, rtol=1e-4)
    assert fake_peer.module.CALLS == {"fwd": 1, "bwd": 1}


def test_peer_cells():
    assert peer_cells(2.0, 1.0, 1.5e-3) == " 2.000 | 2.0× | 1.5e-03 | – | – |"
    assert peer_cells(0.5, 2.0, 3e-7, (12.25, 30.0)) == " 0.500 | 0.25× | 3.0e-07 | 12.2 | 30.0 |"
    assert peer_cells(None, 1.0, None) == " – | – | – | – | – |"


def test_report_peer_columns(fake_peer):
    pytest.importorskip("triton")
    fake_peer.module.SCALE = 1.01  # y_peer = 1.01 y: the diff column must read ~1e-2
    report = run_benchmark(device="cpu", quick=True, command="t", dtypes=("fp32",), cases=[SEL, LTI], peer=fake_peer)
    head = [ln for ln in report.splitlines() if ln.startswith("| shape")][0]
    assert head.endswith("| mamba_ssm ms | mamba_ssm ÷ Triton | y rel diff vs mamba_ssm | Triton peak MiB "
                         "| mamba_ssm peak MiB |")
    assert "- peer: mamba_ssm selective_scan_cuda (" in report
    rows = [ln for ln in report.splitlines() if ln.startswith("| (")]
    assert len(rows) == 4 and all(ln.count("|") == 17 for ln in rows)
    for ln in rows:
        cells = [c.strip() for c in ln.split("|")[1:-1]]
        t_ours, t_peer, ratio, diff = float(cells[4]), float(cells[11]), cells[12], float(cells[13])
        assert ratio == _ratio(t_peer / t_ours) or abs(float(ratio[:-1]) / (t_peer / t_ours) - 1) < 0.1, ln
        assert 0.9e-2 < diff < 1.1e-2, ln
    assert fake_peer.module.CALLS["bwd"] > 0  # the fwd+bwd rows ran the peer's backward


def _main(args, capsys):
    from audiomamba.cli import main

    with pytest.raises(SystemExit) as ex:
        main(args)
    return ex.value.code, capsys.readouterr()


def test_missing_or_broken_peer_is_one_line_error(tmp_path, capsys):
    code, cap = _main(["bench", "kernel", "--device", "cpu", "--peer", "mamba_ssm", "--peer-build",
                       str(tmp_path / "none")], capsys)
    err = cap.err.strip()
    assert code == 2 and "\n" not in err and err.startswith("error: mamba_ssm peer not built")
    assert "python -m audiomamba.bench.peer build --sdist " in err and f"--out {tmp_path / 'none'}" in err
    for text in ("raise ImportError('undefined symbol: _ZN3c10')\n", "x = 1\n"):  # won't import; no fwd/bwd
        (tmp_path / "selective_scan_cuda.py").write_text(text)
        with pytest.raises(P.PeerError) as ex:
            P.load_peer(tmp_path)
        assert "\n" not in str(ex.value) and "python -m audiomamba.bench.peer build" in str(ex.value)
    for args in (["--peer", "flash"], ["--peer-build", str(tmp_path)], ["--peer", "mamba_ssm", "--sweep"]):
        code, cap = _main(["bench", "kernel", "--device", "cpu", *args], capsys)
        assert code == 2 and cap.err.count("\n") == 1, args


def test_cli_bench_kernel_with_fake_peer(tmp_path, monkeypatch):
    pytest.importorskip("triton")
    import audiomamba.bench.kernel as K

    from audiomamba.cli import main

    monkeypatch.setattr(K, "CPU_CASES", [Case(1, 2, 2, 8, "lti-complex")])  # the CLI's wiring; columns above
    (tmp_path / "selective_scan_cuda.py").write_text(FAKE)

    main(["bench", "kernel", "--device", "cpu", "--quick", "--dtype", "fp32", "--peer", "mamba_ssm",
          "--peer-build", str(tmp_path), "--out", str(tmp_path / "r.md")])
    rows = [ln for ln in (tmp_path / "r.md").read_text().splitlines() if ln.startswith("| (")]
    assert len(rows) == 2 and all(ln.count("|") == 17 and "failed" not in ln for ln in rows)


def _sdist(path: Path, setup: str) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in {"setup.py": setup, "csrc/selective_scan/s.cpp": "", "csrc/selective_scan/f.cu": "",
                           "csrc/selective_scan/b.cu": ""}.items():
            data = text.encode()
            info = tarfile.TarInfo(f"mamba_ssm-9.9/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_build_driver_with_a_mocked_compiler(tmp_path, monkeypatch, capsys):
    import torch.utils.cpp_extension as ext

    calls = []

    def fake_load(name, sources, extra_cflags, extra_cuda_cflags, extra_include_paths, build_directory, **kw):
        calls.append(dict(name=name, sources=sources, cxx=extra_cflags, nvcc=extra_cuda_cflags,
                          include=extra_include_paths, out=build_directory))
        (Path(build_directory) / "selective_scan_cuda.py").write_text(FAKE)

    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(P, "_find_nvcc", lambda: Path("/usr/local/cuda/bin/nvcc"))
    monkeypatch.setattr(ext, "is_ninja_available", lambda: True)
    monkeypatch.setattr(ext, "load", fake_load)
    monkeypatch.setattr(P, "torch_cxx_std", lambda: "c++20")
    monkeypatch.setenv("MAX_JOBS", "")
    sdist, out = _sdist(tmp_path / "mamba_ssm-9.9.tar.gz", SETUP), tmp_path / "build"
    so = P.build(sdist, out, jobs=3, log=lambda s: None)
    assert so == out / "selective_scan_cuda.py" and len(calls) == 1
    call = calls[0]
    assert call["name"] == "selective_scan_cuda" and [Path(s).name for s in call["sources"]] == ["s.cpp", "b.cu", "f.cu"]
    assert call["nvcc"][-2:] == ["-gencode", "arch=compute_90,code=sm_90"] and "--ptxas-options=-v" not in call["nvcc"]
    assert call["cxx"] == ["-O3", "-std=c++20"] and call["include"][0].endswith("csrc/selective_scan")
    assert __import__("os").environ["MAX_JOBS"] == "3"
    info = json.loads((out / "peer-build.json").read_text())
    assert info["package"] == "mamba_ssm-9.9" and info["arch"] == "sm_90"
    assert P.load_peer(out).describe().startswith("mamba_ssm-9.9 selective_scan_cuda, sm_90 (")

    monkeypatch.setattr(P, "_find_nvcc", lambda: None)  # no CUDA compiler: one line, exit 2
    assert P.main(["build", "--sdist", str(sdist), "--out", str(out)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "No CUDA runtime is found" not in ln]  # torch's
    assert len(err) == 1 and err[0].startswith("error: nvcc") and "CUDA_HOME" in err[0]
    assert P.main(["build", "--sdist", str(tmp_path / "missing.tar.gz")]) == 2
    assert "missing.tar.gz not found" in capsys.readouterr().err
