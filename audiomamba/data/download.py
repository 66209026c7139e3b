"""`audiomamba data download`: fetch YouTubeMix or SC09 (needs internet; not exercised in CI).

* YouTubeMix: the SaShiMi authors' public hub dataset repository (``krandiash/youtubemix``), via
  ``huggingface_hub`` (extra ``[hub]``); archives in it are unpacked into ``--out``.
* SC09: the hub repository ``krandiash/sc09`` when ``huggingface_hub`` is installed; otherwise the
  Speech Commands v0.02 archive, downloaded resumably over HTTP and filtered to the ten digit words
  (with ``validation_list.txt``/``testing_list.txt`` restricted to them), giving the SC09 layout.

Downloads resume: hub files are cached by ``huggingface_hub``; the HTTP archive is written to
``<out>/.partial`` and continued with a Range request.
"""

from __future__ import annotations

import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from audiomamba.data.sc09 import DIGITS, LIST_FILES
from audiomamba.errors import DataError

HUB_REPOS = {"youtubemix": "krandiash/youtubemix", "sc09": "krandiash/sc09"}
SPEECH_COMMANDS_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"


def _no_internet(name: str, err: Exception) -> DataError:
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    return DataError(
        f"cannot download {name} ({reason}): this machine has no internet access; download on another machine "
        f"and copy the folder here, or use ../shared/data for development"
    )


def _http_resumable(url: str, dest: Path, progress: bool = True) -> Path:
    """Download ``url`` to ``dest``, continuing a ``dest.partial`` file left by an earlier attempt."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    part = dest.with_name(dest.name + ".partial")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        if have and resp.status != 206:  # server ignored the range: start over
            have = 0
        total = have + int(resp.headers.get("Content-Length", 0))
        cols = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
        with Progress(*cols, disable=not progress) as bar, open(part, "ab" if have else "wb") as fh:
            task = bar.add_task(dest.name, total=total or None, completed=have)
            while chunk := resp.read(1 << 20):
                fh.write(chunk)
                bar.advance(task, len(chunk))
    part.replace(dest)
    return dest


def _unpack_archives(folder: Path) -> None:
    for archive in sorted(folder.rglob("*")):
        if archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(folder)
        elif archive.name.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(archive) as tf:
                tf.extractall(folder, filter="data")


def _from_hub(name: str, out: Path) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise DataError(
            f"downloading {name} needs huggingface_hub: pip install 'audiomamba[hub]'"
        ) from None
    try:
        snapshot_download(repo_id=HUB_REPOS[name], repo_type="dataset", local_dir=str(out))
    except Exception as err:  # noqa: BLE001 - hub errors wrap connection errors in many types
        raise _no_internet(name, err) from None
    _unpack_archives(out)
    return out


def _speech_commands_to_sc09(archive: Path, out: Path) -> Path:
    """Extract only the digit words and the split lists restricted to them."""
    keep = tuple(f"{w}/" for w in DIGITS)
    with tarfile.open(archive) as tf:
        members = [m for m in tf.getmembers() if m.name.lstrip("./").startswith(keep)]
        tf.extractall(out, members=members, filter="data")
        for list_name in LIST_FILES.values():
            fh = tf.extractfile(f"./{list_name}") or tf.extractfile(list_name)
            lines = fh.read().decode().splitlines() if fh else []
            (out / list_name).write_text("\n".join(x for x in lines if x.startswith(keep)) + "\n")
    return out


def download(name: str, out: str | Path, progress: bool = True) -> Path:
    """Download dataset ``name`` ("youtubemix" or "sc09") into ``out``; returns the dataset folder."""
    if name not in HUB_REPOS:
        raise DataError(f"unknown dataset {name!r}: use youtubemix or sc09")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if name == "youtubemix":
        return _from_hub(name, out)
    try:
        import huggingface_hub  # noqa: F401

        return _from_hub(name, out)
    except ImportError:
        pass
    archive = out / "speech_commands_v0.02.tar.gz"
    try:
        if not archive.exists():
            _http_resumable(SPEECH_COMMANDS_URL, archive, progress)
    except (TimeoutError, urllib.error.URLError, OSError) as err:
        raise _no_internet(name, err) from None
    _speech_commands_to_sc09(archive, out)
    archive.unlink()  # the digits are extracted; the 2.3 GB archive is no longer needed
    return out
