"""Carry a WAV dataset to the device machine as one FLAC archive, and unpack it there as WAV.

sc09-fsdd is 37 MB of WAV and 12 MB as FLAC in a .tar.xz; the carried tree must stay under 64 MiB.
FLAC is lossless, so the unpacked WAVs are the same samples bit for bit (16-bit PCM).

    python docs/gpu/flac_data.py pack ../shared/data/sc09-fsdd .data/sc09-fsdd-flac.tar.xz   # here
    python3 docs/gpu/flac_data.py unpack .data/sc09-fsdd-flac.tar.xz /tmp/w                  # there -> /tmp/w/sc09-fsdd
"""

from __future__ import annotations

import sys
import tarfile
import tempfile
from pathlib import Path

import soundfile as sf


def pack(src: Path, archive: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / src.name
        for p in sorted(src.rglob("*")):
            if p.is_dir():
                continue
            q = root / p.relative_to(src)
            q.parent.mkdir(parents=True, exist_ok=True)
            if p.suffix.lower() == ".wav":
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
    if len(sys.argv) != 4 or sys.argv[1] not in ("pack", "unpack"):
        sys.exit("usage: flac_data.py pack SRC_FOLDER ARCHIVE.tar.xz | unpack ARCHIVE.tar.xz DEST_FOLDER")
    (pack if sys.argv[1] == "pack" else unpack)(Path(sys.argv[2]), Path(sys.argv[3]))
