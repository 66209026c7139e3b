"""The ``audiomamba`` command line. Each command group lives in its own module of this package."""

from __future__ import annotations

import sys

import typer

from audiomamba.errors import AudioMambaError

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
    """Console-script entry point: runs the app and turns user errors into one-line messages."""
    try:
        app(args=argv, standalone_mode=False)
    except AudioMambaError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except typer.Exit as ex:
        raise SystemExit(ex.exit_code) from None
    except typer.Abort:
        print("aborted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as err:  # click usage errors
        import click

        if isinstance(err, click.ClickException):
            err.show()
            raise SystemExit(err.exit_code) from None
        raise

