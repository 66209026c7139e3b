"""`bench generate --matrix` and `--lti-cutoff` (issue 18): CPU smoke runs through the CLI (tiny presets,
a few steps), the OOM row, the extrapolation note, and the cut-off arithmetic on fake timings."""

from __future__ import annotations

import pytest
import torch
from audiomamba.bench import generate as bg
from audiomamba.kernels import backend

from audiomamba.cli import main

MATRIX_COLUMNS = ["preset", "block", "batch", "audio per sample (s)", "wall (s)", "sampling (s)", "rest (s)",
                  "samples/s (wall)", "× real time (wall)", "× real time (sampling)", "× real time (steady)", "note"]


def _table(text: str, first: str) -> tuple[list[str], list[list[str]]]:
    """Columns and rows of the Markdown table whose header starts with ``| first |``."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"| {first} |"))
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip().strip("|").split("|")])
    return [c.strip() for c in lines[start].strip().strip("|").split("|")], rows


def _cli(args: list[str], capsys) -> str:
    main(["bench", "generate", *args])
    return capsys.readouterr().out


def test_matrix_quick_runs_the_cli_path_and_writes_the_table(tmp_path, capsys) -> None:
    out = tmp_path / "matrix.md"
    text = _cli(["--matrix", "--quick", "--presets", "sc09-small", "--blocks", "mamba-s6,mamba-s4",
                 "--batches", "1,2", "--out", str(out)], capsys)
    assert out.read_text().strip() == text.strip()
    columns, rows = _table(text, "preset")
    assert columns == MATRIX_COLUMNS
    assert [(r[0], r[1], r[2]) for r in rows] == [("sc09-small-tiny", "`mamba-s6`", "1"), ("sc09-small-tiny", "`mamba-s6`", "2"),
                                                  ("sc09-small-tiny", "`mamba-s4`", "1"), ("sc09-small-tiny", "`mamba-s4`", "2")]
    for r in rows:
        wall, sampling, rest = float(r[4]), float(r[5]), float(r[6])
        assert wall > sampling > 0 and rest == pytest.approx(wall - sampling, abs=0.011)  # 4 decimals below 1 s
        assert r[11].startswith("outside sampling: loading ")  # not extrapolated (8 steps are far below the cap)
        assert "extrapolated" not in r[11] and " files " in r[11] and "spectrogram grid " in r[11]
        assert float(r[10]) > 0  # the probe's steady rate
    assert "4 of 4 cases; 0 out of memory (OOM); 0 extrapolated" in text
    assert "Command: `audiomamba bench generate" in text


def test_matrix_failed_cases_get_oom_or_error_rows_and_the_run_goes_on(tmp_path, capsys, monkeypatch) -> None:
    real = bg.generate_to_folder
    calls = []

    def flaky(model, out, n, seconds, batch, *args, **kwargs):
        calls.append(batch)
        if batch == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        if batch == 3:
            raise ValueError("something else | broke")
        return real(model, out, n, seconds, batch, *args, **kwargs)

    monkeypatch.setattr(bg, "generate_to_folder", flaky)
    text = _cli(["--matrix", "--quick", "--presets", "youtubemix", "--blocks", "mamba-s4-real", "--batches", "2,3,1",
                 "--out", str(tmp_path / "m.md")], capsys)
    assert calls == [2, 3, 1]
    _, rows = _table(text, "preset")
    oom, error, ok = rows
    assert error[4:7] == ["error", "error", "error"] and error[11] == "ValueError at batch 3: something else / broke"
    assert oom[:3] == ["youtubemix-tiny", "`mamba-s4-real`", "2"] and oom[4:7] == ["OOM", "OOM", "OOM"]
    assert "out of GPU memory at batch 2" in oom[11] and "Tried to allocate 20.00 GiB" in oom[11]
    assert ok[2] == "1" and float(ok[4]) > 0
    assert "3 of 3 cases; 1 out of memory (OOM); 1 failed (error, see the note); 0 extrapolated" in text


def test_matrix_caps_sampling_extrapolates_and_says_so(tmp_path, capsys, monkeypatch) -> None:
    real = bg.generate_to_folder
    written = []

    def spy(*args, **kwargs):
        rows, gen = real(*args, **kwargs)
        written.append((tuple(gen.tokens.shape), len(list(args[1].glob("*.wav"))), kwargs["write_ahead"]))
        return rows, gen

    monkeypatch.setattr(bg, "generate_to_folder", spy)
    # 0.002 s = 32 steps; the cap allows only one period (4 steps of the tiny presets)
    text = _cli(["--matrix", "--quick", "--presets", "youtubemix", "--blocks", "mamba-s6", "--batches", "2",
                 "--seconds", "0.002", "--max-seconds-per-case", "1e-6"], capsys)
    _, (row,) = _table(text, "preset")
    assert row[3] == "0.002"
    assert "sampling timed over 4 of 32 steps, extrapolated" in row[11]
    assert "files written at full length, after sampling" in row[11]
    # at the sampled part's own rate after its start-up (here the initial states), the probe's beside it
    assert "the sampled part's own rate after its start-up" in row[11] and "(the probe's steady " in row[11]
    # WAVs of the full length, one per sample, written after sampling (the repeated part was never sampled)
    assert written == [((2, 32), 2, False)]
    assert float(row[4]) > float(row[5]) > 0
    assert "1 extrapolated (note)" in text


def test_lti_cutoff_quick_through_the_cli(capsys) -> None:
    text = _cli(["--lti-cutoff", "--quick", "--presets", "youtubemix", "--batches", "1,2", "--lti-steps", "4"], capsys)
    columns, rows = _table(text, "preset")
    assert columns == ["preset", "batch", "fused (ms/step)", "composed (ms/step)", "speed-up", "faster"]
    assert [r[:2] for r in rows] == [["youtubemix-tiny", "1"], ["youtubemix-tiny", "2"]]
    assert all(float(r[2]) > 0 and float(r[3]) > 0 and r[4].endswith("×") for r in rows)
    assert "Measured cross-over:" in text
    if not torch.cuda.is_available():
        assert "No cut-off measured" in text and "both columns ran the composed step" in text


def test_lti_cutoff_picks_the_largest_batch_where_fused_is_faster(monkeypatch) -> None:
    """Fake timings: fused faster up to 512 on one preset and 1024 on the other, OOM at 2048; the
    cut-off lifted while fused runs, restored after."""
    fused_ms = {16: 1.0, 64: 1.0, 128: 1.0, 256: 1.0, 512: 1.0, 1024: 2.0, 2048: 3.0}
    seen_cutoffs = []

    def fake(model, batch, dev, steps, graph):
        if batch == 2048:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory.")
        if backend._fused_override:
            seen_cutoffs.append(bg._ssm.FUSED_COMPLEX_LTI_MAX_BATCH)
            return fused_ms[batch] / 1e3
        composed = 1.5 if model.config.pool == [4] else 2.5  # youtubemix-tiny: pool [4]
        return composed / 1e3

    monkeypatch.setattr(bg, "steady_step_seconds", fake)
    monkeypatch.setattr(bg.kernels, "use_fused_step", lambda x: True)
    before = bg._ssm.FUSED_COMPLEX_LTI_MAX_BATCH
    text = bg.run_lti_cutoff(["sc09-small-tiny", "youtubemix-tiny"], list(fused_ms), steps=4, device="cpu",
                             log=lambda msg: None)
    assert bg._ssm.FUSED_COMPLEX_LTI_MAX_BATCH == before and all(c > 1 << 40 for c in seen_cutoffs)
    assert "- sc09-small-tiny: fused faster up to batch 1024, not at 2048" in text
    assert "- youtubemix-tiny: fused faster up to batch 512, not at 1024 (cross-over between 512 and 1024); " \
           "composed faster at 1024" in text
    assert "**Measured cut-off: `FUSED_COMPLEX_LTI_MAX_BATCH = 512`**" in text
    _, rows = _table(text, "preset")
    assert ["youtubemix-tiny", "2048", "OOM", "OOM", "-"] == rows[-1][:5]
    assert bg.largest_fused_batch({16: 0.9, 64: 1.2}) is None
    assert bg.largest_fused_batch({16: 1.2, 64: 1.1, 128: None}) == 64


@pytest.mark.parametrize(("args", "message"), [
    (["--presets", "sc09-small"], "need --matrix or --lti-cutoff"),
    (["--matrix", "--lti-cutoff"], "two runs"),
    (["--matrix", "--blocks", "mamba-s5"], "unknown block 'mamba-s5'"),
    (["--matrix", "--batches", "1,x"], "comma-separated list of integers"),
    (["--matrix", "--batches", "0"], "--batches must be positive"),
    (["--matrix", "--presets", "sc09-smal"], "did you mean 'sc09-small'"),
    (["--matrix", "--max-seconds-per-case", "0"], "--max-seconds-per-case must be positive"),
    (["--lti-cutoff", "--blocks", "mamba-s6"], "drop --blocks"),
    (["--matrix", "--lti-steps", "8"], "--lti-steps belongs to --lti-cutoff"),
])
def test_matrix_and_cutoff_option_errors(args, message, capsys) -> None:
    with pytest.raises(SystemExit) as ex:
        main(["bench", "generate", "--quick", *args])
    assert ex.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_default_table_quick_runs_only_the_chosen_cases_with_progress(capsys) -> None:
    from audiomamba.cli import main

    main(["bench", "generate", "--quick", "--device", "cpu", "--cases", "sc09,stream"])
    out, err = capsys.readouterr()
    assert "sc09-small-tiny unconditional" in out and "sc09-small-tiny single stream" in out
    assert "youtubemix" not in out and "Same run, sc09-small-tiny batch 4" in out and "Single stream:" in out
    progress = [line for line in err.splitlines() if line.startswith("[bench generate]")]
    assert len(progress) == 5 and all("x real time" in line for line in progress)  # one line per row, as timed


def test_default_table_bad_cases_is_one_line(capsys) -> None:
    from audiomamba.cli import main

    with pytest.raises(SystemExit) as ex:
        main(["bench", "generate", "--quick", "--device", "cpu", "--cases", "sc09,music"])
    assert ex.value.code not in (0, None)
    err = capsys.readouterr().err
    assert "--cases 'sc09,music'" in err and "sc09,stream,youtubemix" in err and "Traceback" not in err


def test_default_table_times_other_step_precisions_in_the_same_run(capsys, monkeypatch) -> None:
    import os

    from audiomamba.cli import main

    seen = []
    real = bg.time_generate
    monkeypatch.setattr(bg, "time_generate", lambda *a, **k: seen.append(
        (os.environ.get("AUDIOMAMBA_STEP_PRECISION"), os.environ.get("AUDIOMAMBA_PDL"))) or real(*a, **k))
    main(["bench", "generate", "--quick", "--device", "cpu", "--cases", "sc09", "--step-precisions", "bf16", "--pdl"])
    out = capsys.readouterr().out
    assert ", bf16 tl.dot | 4 |" in out and ", PDL | 4 |" in out
    assert "fused step with bf16 tl.dot " in out and "fused step with PDL " in out and ", no PDL | 4 |" in out
    # the PDL rows say whether they changed the samples (on the CPU PDL is off, so they are the same)
    assert "tokens of 0.1 s identical to the default" in out.split(", PDL | 4 |")[1].splitlines()[0]
    assert "tokens of 0.1 s identical to the default" in out.split(", no PDL | 4 |")[1].splitlines()[0]
    # PDL forced on, then off (the default is on for one stream only)
    assert seen == [(None, None)] * 4 + [("bf16", None)] * 2 + [(None, "1")] * 2 + [(None, "0")] * 2
    assert "AUDIOMAMBA_STEP_PRECISION" not in os.environ and "AUDIOMAMBA_PDL" not in os.environ  # set, then restored


def test_default_table_bad_step_precision_is_one_line(capsys) -> None:
    from audiomamba.cli import main

    with pytest.raises(SystemExit) as ex:
        main(["bench", "generate", "--quick", "--device", "cpu", "--cases", "sc09", "--step-precisions", "fp8"])
    err = capsys.readouterr().err
    assert ex.value.code not in (0, None) and "--step-precisions 'fp8'" in err and "Traceback" not in err


def test_ratio_cells_keep_small_rates_visible() -> None:
    """A × real time cell keeps 2 significant digits below 0.1 (a tiny model on a busy 2-core CPU: a steady rate of
    0.004 printed as 0.00 failed a CI run on 2026-12-05), 2 decimals above."""
    from audiomamba.bench.generate import ratio_cell

    assert [ratio_cell(x) for x in (0.0043, 0.05, 0.5, 1234.5)] == ["0.0043", "0.05", "0.50", "1,234.50"]
    assert float(ratio_cell(1.234e-5)) > 0
