"""``python -m audiomamba``: the same as the ``audiomamba`` console script."""

from audiomamba.cli import main

main()
