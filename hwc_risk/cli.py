"""The ``hwc-risk`` command: parses arguments, calls the library, maps errors to exit codes.

Exit codes: 0 done; 2 bad input or config (one line on stderr naming the
file, row or key and the fix); 1 a bug (with a traceback to report).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from .config import load_config
from .errors import InputError

app = typer.Typer(
    name="hwc-risk",
    help="Map the risk of human-wildlife conflict from incident reports and landscape rasters.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hwc-risk {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """hwc-risk: human-wildlife conflict risk maps."""


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s hwc-risk: %(message)s", "%H:%M:%S"))
    root = logging.getLogger("hwc_risk")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Pipeline config (YAML).")],
    month: Annotated[
        str | None,
        typer.Option(help="Month to map, YYYY-MM; default: the latest month in the data."),
    ] = None,
    output_dir: Annotated[
        Path | None, typer.Option(help="Where run folders go; overrides output_dir in the config.")
    ] = None,
    offline: Annotated[
        bool | None,
        typer.Option(
            "--offline/--online",
            help="Inline every script in map.html (no basemap); default: outputs.offline_map.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
) -> None:
    """Run the pipeline for one month and write <output_dir>/<name>/<YYYY-MM>/."""
    _setup_logging(quiet)
    from .pipeline import run as run_pipeline  # heavy imports only when running

    try:
        cfg = load_config(config)
        result = run_pipeline(cfg, month=month, output_dir=output_dir, offline=offline)
    except InputError as exc:
        typer.echo(f"hwc-risk: error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(str(result.run_dir))
    if not quiet:
        typer.echo(result.metrics["summary"], err=True)


@app.command()
def circuitscape(
    ini: Annotated[Path, typer.Argument(help="A Circuitscape raster configuration (.ini).")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
) -> None:
    """Run a Circuitscape .ini (raster; advanced or pairwise) and write Circuitscape's outputs.

    Relative paths in the .ini are taken from the .ini's folder, else from the current
    folder. The files written are listed on stdout.
    """
    _setup_logging(quiet)
    from .circuitscape import run_ini

    log = logging.getLogger("hwc_risk.circuitscape")
    try:
        written = run_ini(ini, progress=log.info)
    except InputError as exc:
        typer.echo(f"hwc-risk: error: {exc}", err=True)
        raise typer.Exit(2) from None
    for path in written:
        typer.echo(str(path))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
