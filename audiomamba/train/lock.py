"""An exclusive lock on a run folder, so that two trainings never write into the same run.

The lock is a file ``.lock`` created atomically (``O_EXCL``) that holds the owner's pid and host.
A second process is refused with a one-line error. A lock whose process is gone (same host, pid
not running) is stale: it is taken over with a warning.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from pathlib import Path

from audiomamba.errors import AudioMambaError

LOCK_FILE = ".lock"


class RunLockedError(AudioMambaError):
    """Another live process holds the run folder."""


def _alive(owner: dict) -> bool:
    """Whether the lock's owner may still run (a process on another host cannot be checked: yes)."""
    if owner.get("host") != socket.gethostname():
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """Holds ``run_dir/.lock`` from construction until :meth:`release`."""

    def __init__(self, run_dir: str | Path) -> None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / LOCK_FILE
        self.owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.held = False
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                other = self._read()
                if _alive(other):
                    raise RunLockedError(
                        f"run folder {run_dir} is in use by pid {other.get('pid')} on {other.get('host')} "
                        f"(since {other.get('since')}): wait for it, choose another --out, or delete "
                        f"{self.path} if that process is gone"
                    ) from None
                warnings.warn(f"taking over the stale lock {self.path} of pid {other.get('pid')} (no longer running)",
                              stacklevel=2)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(self.owner, fh)
            self.held = True
            return
        raise RunLockedError(f"could not lock run folder {run_dir}: another process keeps taking it; choose another --out")

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        """Remove the lock if this process still holds it (idempotent)."""
        if self.held and self._read().get("pid") == self.owner["pid"]:
            self.path.unlink(missing_ok=True)
        self.held = False
