"""`audiomamba data info`: detect a folder's layout and report what the loaders will do with it."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audiomamba.audio import SAMPLE_RATE, AudioInfo, audio_info, list_audio_files, load_audio
from audiomamba.data.sc09 import CLIP_SAMPLES, DIGITS, LIST_FILES, is_sc09_layout, sc09_split_files
from audiomamba.data.splits import SPLITS, split_files
from audiomamba.errors import DataError


@dataclass
class FolderReport:
    """What `data info` found in a folder. ``problems`` are files that will be rejected;
    ``notes`` are files that will be changed on load (resampled, mixed down, cropped, clipped)."""

    root: Path
    layout: str
    infos: list[AudioInfo] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rejected: dict[Path, str] = field(default_factory=dict)  # file -> why (the subset of problems about files)

    @property
    def hours(self) -> float:
        return sum(i.seconds for i in self.infos) / 3600


def _cache_path(root: Path) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "audiomamba" / "file-checks"
    return base / (hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16] + ".json")


def _load_cache(root: Path) -> dict[str, Any]:
    try:
        data = json.loads(_cache_path(root).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_cache(root: Path, cache: dict[str, Any]) -> None:
    path = _cache_path(root)
    try:  # a cache that cannot be written only costs time
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, path)
    except OSError:
        pass


def _check_one(path: Path, deep: bool, cache: dict[str, Any]) -> tuple[AudioInfo | None, str | None, bool]:
    """(header info or None, the problem or None, beyond ±1) of one file, from the cache when its
    size and mtime are unchanged (and, for ``deep``, the samples were checked before)."""
    st = path.stat()
    key, stamp = str(path), [st.st_size, st.st_mtime_ns]
    hit = cache.get(key)
    if hit and hit["stamp"] == stamp and (hit["deep"] or not deep):
        info = AudioInfo(path, *hit["info"]) if hit["info"] else None
        return info, hit["problem"], hit["beyond"]
    info, problem, beyond = None, None, False
    try:
        info = audio_info(path)
        if deep:
            wave = load_audio(path, info.sample_rate, info=info)
            beyond = bool(np.abs(wave).max() > 1.0)
    except DataError as err:
        problem = str(err)
    cache[key] = {"stamp": stamp, "deep": deep, "problem": problem, "beyond": beyond,
                  "info": [info.sample_rate, info.channels, info.frames, info.subtype] if info else None}
    return (info if problem is None else None), problem, beyond


def _check_files(paths: list[Path], report: FolderReport, deep: bool, progress: bool) -> None:
    """Read headers (and with ``deep`` the samples) of ``paths`` into ``report``; results are cached
    per folder by size and mtime, so a second check of an unchanged folder reads nothing."""
    from rich.progress import Progress

    cache = _load_cache(report.root)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("checking files", total=len(paths))
        for path in paths:
            bar.advance(task)
            info, problem, beyond = _check_one(path, deep, cache)
            if problem is not None or info is None:
                report.problems.append(problem or f"cannot read {path}")
                report.rejected[path] = problem or "unreadable"
                continue
            if beyond:
                report.notes.append(f"{path}: float samples beyond ±1 (clipped by normalization 'none')")
            report.infos.append(info)
            if info.sample_rate != SAMPLE_RATE:
                report.notes.append(f"{path}: {info.sample_rate} Hz, resampled to {SAMPLE_RATE}")
            if info.channels > 1:
                report.notes.append(f"{path}: {info.channels} channels, averaged to mono")
            if report.layout == "sc09" and info.frames_at(SAMPLE_RATE) > CLIP_SAMPLES:
                report.notes.append(f"{path}: {info.seconds:.2f} s, longer than 1 s, cropped to the first second")
    _save_cache(report.root, cache)


def inspect_folder(root: str | Path, deep: bool = True, progress: bool = False) -> FolderReport:
    """Detect the layout of ``root`` (``sc09`` or ``youtubemix``) and check every audio file."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"folder not found: {root}: pass a dataset folder")
    if is_sc09_layout(root):
        report = FolderReport(root, "sc09")
        for name in LIST_FILES.values():
            if not (root / name).is_file():
                report.problems.append(f"missing {name} in {root}: needed to split SC09")
        paths = [p for w in DIGITS if (root / w).is_dir() for p in sorted((root / w).glob("*.wav"))]
        for name in LIST_FILES.values():
            if (root / name).is_file():
                for line in (root / name).read_text().splitlines():
                    rel = line.strip().replace("\\", "/")
                    if rel and rel.split("/")[0] in DIGITS and not (root / rel).is_file():
                        report.problems.append(f"{name} names {rel}, which is not in {root}: restore the clip or remove the line")
        _check_files(paths, report, deep, progress)
        bad = {str(p) for p in report.rejected}
        if not any(p.startswith("missing") for p in report.problems):
            for split in SPLITS:
                try:
                    pairs = sc09_split_files(root, split)
                except DataError:
                    pairs = []
                pairs = [(p, lab) for p, lab in pairs if str(p) not in bad]
                report.splits[split] = len(pairs)
                if split == "train":
                    report.classes = dict(Counter(DIGITS[lab] for _, lab in pairs))
        return report
    report = FolderReport(root, "youtubemix")
    paths = list_audio_files(root)
    if not paths:
        raise DataError(f"no audio files in {root}: expected .wav files (YouTubeMix) or zero/ … nine/ folders (SC09)")
    _check_files(paths, report, deep, progress)
    good = [i.path for i in report.infos]
    if len(good) >= 3:
        report.splits = {s: len(split_files(good, s)) for s in SPLITS}
    else:
        report.problems.append(f"only {len(good)} readable file(s): the 88/6/6 split by file needs at least 3")
    return report


def render_report(report: FolderReport) -> None:
    """Print a report as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{report.root}  ({report.layout} layout)", show_header=False)
    table.add_row("audio files", str(len(report.infos) + len([p for p in report.problems if not p.startswith("missing")])))
    table.add_row("readable", str(len(report.infos)))
    table.add_row("hours", f"{report.hours:.3f}")
    rates = Counter(i.sample_rate for i in report.infos)
    table.add_row("sample rates", ", ".join(f"{r} Hz × {n}" for r, n in sorted(rates.items())))
    chans = Counter(i.channels for i in report.infos)
    table.add_row("channels", ", ".join(f"{c} × {n}" for c, n in sorted(chans.items())))
    subtypes = Counter(i.subtype for i in report.infos)
    table.add_row("encodings", ", ".join(f"{s} × {n}" for s, n in sorted(subtypes.items())))
    if report.splits:
        table.add_row("split (files)" if report.layout == "youtubemix" else "split (clips)",
                      " / ".join(f"{k} {v}" for k, v in report.splits.items()))
    if report.classes:
        table.add_row("classes (train)", f"{len(report.classes)}: " + ", ".join(f"{k} {v}" for k, v in report.classes.items()))
    if report.layout == "youtubemix" and report.infos:
        secs = [i.seconds for i in report.infos]
        table.add_row("file length", f"min {min(secs):.1f} s, max {max(secs):.1f} s")
    table.add_row("will be changed on load", str(len(report.notes)))
    table.add_row("will be rejected", str(len(report.problems)))
    console.print(table)
    for note in report.notes[:20]:
        console.print(f"[yellow]note[/]: {note}", highlight=False)
    if len(report.notes) > 20:
        console.print(f"[yellow]… and {len(report.notes) - 20} more notes[/]")
    for prob in report.problems:
        console.print(f"[red]rejected[/]: {prob}", highlight=False)


def preflight(root: str | Path, skip_bad: bool = False, deep: bool = False, where: str = "train") -> FolderReport:
    """Check every file of a dataset folder before any work (headers; ``deep`` also the samples).

    With problems and not ``skip_bad``: print the `data info` table and raise a one-line DataError.
    With ``skip_bad``: warn and return the report; its ``rejected`` files are to be left out.
    """
    import warnings

    report = inspect_folder(root, deep=deep)
    if not report.problems:
        return report
    if not skip_bad:
        render_report(report)
        raise DataError(
            f"{len(report.problems)} problem(s) in {report.root} (listed above), found before {where} started: "
            "fix or remove those files, or pass --skip-bad to leave them out"
        )
    warnings.warn(f"--skip-bad: leaving out {len(report.rejected)} unreadable file(s) of {report.root}; "
                  f"{len(report.problems)} problem(s) in all (first: {report.problems[0]})", stacklevel=2)
    return report
