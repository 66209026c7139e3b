"""The ``audiomamba`` command line. Each command group lives in its own module of this package."""

from __future__ import annotations

import sys

import typer

from audiomamba.errors import AudioMambaError
from audiomamba.kernels.errors import KernelError

app = typer.Typer(
    help="audiomamba: train, sample and evaluate raw-audio SSM models (SaShiMi U-Net, Mamba/S4 blocks).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from audiomamba.cli import ablate, bench, data, demo, evaluate, generate, info, train

    app.add_typer(data.app, name="data")
    app.add_typer(evaluate.app, name="evaluate")
    app.add_typer(bench.app, name="bench")
    app.command("train")(train.train)
    app.command("generate")(generate.generate)
    app.command("ablate")(ablate.ablate)
    app.command("demo")(demo.demo)
    app.command("info")(info.info)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs the app and turns every error into one line (exit 2).

    User errors (:class:`AudioMambaError`), usage errors (unknown commands or options, bad
    values: typer's usage box) and unexpected exceptions never end in a traceback unless
    ``--debug`` is given (anywhere on the command line).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        rc = app(args=args, standalone_mode=False, prog_name="audiomamba")
    except typer.Exit as ex:
        raise SystemExit(ex.exit_code) from None
    except (typer.Abort, KeyboardInterrupt):
        print("aborted", file=sys.stderr)
        raise SystemExit(130) from None
    except (AudioMambaError, KernelError) as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as err:
        if debug:
            raise
        show, code = getattr(err, "show", None), getattr(err, "exit_code", None)
        if callable(show) and isinstance(code, int):  # usage errors of typer's (vendored) click
            show()
            raise SystemExit(code) from None
        first = (str(err).strip().splitlines() or [""])[0][:200]
        print(f"error: {type(err).__name__}: {first} (run again with --debug for the traceback)", file=sys.stderr)
        raise SystemExit(2) from None
    if isinstance(rc, int) and rc != 0:
        raise SystemExit(rc)
