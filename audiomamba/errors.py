"""User-facing errors: one line saying what went wrong, where, and how to fix it."""

from __future__ import annotations


class AudioMambaError(Exception):
    """An error caused by the user's input (data, recipe, checkpoint, arguments).

    The CLI prints ``str(err)`` as one line and exits with status 2, without a traceback.
    Build messages as ``"<what> in <where>: <how to fix>"``.
    """


class DataError(AudioMambaError):
    """Bad or unusable audio data (corrupt file, wrong layout, missing split lists)."""


class ConfigError(AudioMambaError):
    """Bad recipe or model configuration (unknown key, bad value, indivisible length)."""


class CheckpointError(AudioMambaError):
    """Missing, corrupt or incompatible checkpoint."""
