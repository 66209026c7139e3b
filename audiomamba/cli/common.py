"""Helpers shared by the CLI command modules."""

from __future__ import annotations

from audiomamba.errors import AudioMambaError


def not_built(what: str, issue: str) -> None:
    """Raise the standard message for a command that a later issue completes."""
    raise AudioMambaError(f"`audiomamba {what}` is not built yet ({issue}); see the README for what works now")
