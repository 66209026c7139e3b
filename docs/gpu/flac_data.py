"""Carry a WAV dataset to the device machine as one FLAC archive, and unpack it there as WAV.

sc09-fsdd is 37 MB of WAV and 12 MB as FLAC in a .tar.xz; the carried tree must stay under 64 MiB.
FLAC is lossless, so the unpacked WAVs are the same samples bit for bit (16-bit PCM).

    python docs/gpu/flac_data.py pack ../shared/data/sc09-fsdd .data/sc09-fsdd-flac.tar.xz   # here
    python3 docs/gpu/flac_data.py unpack .data/sc09-fsdd-flac.tar.xz /tmp/w                  # there -> /tmp/w/sc09-fsdd

The tracked tree grew to 52 MB by 2026-12-05, so the whole archive no longer fits beside `.whl`. ``--speaker NAME``
packs one speaker's clips (files ``*/NAME_*``) and keeps only their lines of the SC09 list files (the data pre-flight
rejects a list that names a missing clip): 2.8 MiB for ``george``, enough for ``evaluate overfit``::

    python docs/gpu/flac_data.py pack ../shared/data/sc09-fsdd .data/sc09-george-flac.tar.xz --speaker george
"""

from __future__ import annotations

import sys
import tarfile
import tempfile
from pathlib import Path

import soundfile as sf


def pack(src: Path, archive: Path, speaker: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / src.name
        for p in sorted(src.rglob("*")):
            if p.is_dir():
                continue
            if speaker and p.suffix.lower() == ".wav" and not p.name.startswith(f"{speaker}_"):
                continue
            q = root / p.relative_to(src)
            q.parent.mkdir(parents=True, exist_ok=True)
            if speaker and p.name.endswith("_list.txt"):
                lines = [ln for ln in p.read_text().splitlines() if Path(ln.strip()).name.startswith(f"{speaker}_")]
                q.write_text("".join(f"{ln}\n" for ln in lines))
            elif p.suffix.lower() == ".wav":
                x, sr = sf.read(p, dtype="int16", always_2d=True)
                sf.write(q.with_suffix(".flac"), x, sr, subtype="PCM_16")
            else:
                q.write_bytes(p.read_bytes())
        archive.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "w:xz") as tar:
            tar.add(root, arcname=src.name)
    print(f"wrote {archive} ({archive.stat().st_size / 2**20:.1f} MiB)")


def unpack(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:xz") as tar:
        tar.extractall(dest, filter="data")
    n = 0
    for p in sorted(dest.rglob("*.flac")):
        x, sr = sf.read(p, dtype="int16", always_2d=True)
        sf.write(p.with_suffix(".wav"), x, sr, subtype="PCM_16")
        p.unlink()
        n += 1
    print(f"unpacked {archive} into {dest}: {n} WAV files")


if __name__ == "__main__":
    args = sys.argv[1:]
    who = None
    if len(args) == 5 and args[0] == "pack" and args[3] == "--speaker":
        who, args = args[4], args[:3]
    if len(args) != 3 or args[0] not in ("pack", "unpack"):
        sys.exit("usage: flac_data.py pack SRC_FOLDER ARCHIVE.tar.xz [--speaker NAME] | unpack ARCHIVE.tar.xz DEST")
    if args[0] == "pack":
        pack(Path(args[1]), Path(args[2]), who)
    else:
        unpack(Path(args[1]), Path(args[2]))
