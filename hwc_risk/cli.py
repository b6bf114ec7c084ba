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


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted.

    A handler bound to the stream of its creation breaks when one process runs
    several commands with swapped streams (a notebook, a test's CliRunner): the
    old stream is closed by then and logging prints a traceback instead.
    """

    @property
    def stream(self):  # type: ignore[no-untyped-def]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # type: ignore[no-untyped-def]
        pass


#: Characters that end a line for ``str.splitlines`` besides ``\n`` (a path in a config
#: may hold one): shown escaped, so an error stays on its lines.
_LINE_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


def _error(exc: BaseException) -> None:
    """The error line (exit code 2 follows): ``hwc-risk: error: ...``."""
    typer.echo(f"hwc-risk: error: {str(exc).translate(_LINE_BREAKS)}", err=True)


def _setup_logging(quiet: bool, *, terminal: int | None = None) -> None:
    """Progress bars and log lines on stderr; ``terminal`` overrides the level shown."""
    from .progress import enable

    enable(not quiet)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s hwc-risk: %(message)s", "%H:%M:%S"))
    # the logger passes everything from INFO on (the run's run.log.jsonl keeps it);
    # the terminal shows only warnings and errors with --quiet
    handler.setLevel(terminal or (logging.WARNING if quiet else logging.INFO))
    root = logging.getLogger("hwc_risk")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
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
    force: Annotated[
        bool, typer.Option("--force", help="Rerun even if nothing changed since the last run.")
    ] = False,
    scheduler: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help=(
                "Compute features and prediction on a running Dask cluster "
                "(tcp://host:8786); default: compute.scheduler, else this machine."
            ),
        ),
    ] = None,
    chunk_size: Annotated[
        int | None,
        typer.Option(
            metavar="CELLS",
            help="Side of the chunks (multiple of 64); memory grows with its square. "
            "Default: compute.chunk_size (1024).",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
) -> None:
    """Run the pipeline for one month and write <output_dir>/<name>/<YYYY-MM>/."""
    _setup_logging(quiet)
    from .pipeline import run as run_pipeline  # heavy imports only when running

    try:
        cfg = load_config(config)
        result = run_pipeline(
            cfg,
            month=month,
            output_dir=output_dir,
            offline=offline,
            force=force,
            scheduler=scheduler,
            chunk_size=chunk_size,
        )
    except InputError as exc:
        _error(exc)
        raise typer.Exit(2) from None
    typer.echo(str(result.run_dir))
    if not quiet:
        if result.skipped:
            typer.echo("nothing changed since the last run of this month; kept it", err=True)
        else:
            typer.echo(result.metrics["summary"], err=True)


@app.command()
def scenario(
    config: Annotated[Path, typer.Argument(help="Pipeline config (YAML) of the run.")],
    scenarios: Annotated[
        Path, typer.Argument(metavar="SCENARIO.yaml", help="Scenario file: the edits (YAML).")
    ],
    month: Annotated[str, typer.Option(help="The run's month, YYYY-MM (its folder must exist).")],
    output_dir: Annotated[
        Path | None, typer.Option(help="Where run folders go; overrides output_dir in the config.")
    ] = None,
    offline: Annotated[
        bool | None,
        typer.Option("--offline/--online", help="The map's kind; default: the run's."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
) -> None:
    """Evaluate what-if scenarios on an existing run folder (the month's model, refitted
    exactly; nothing else rerun) and add scenarios/<name>/ to it; the map and the bulletin
    are written again."""
    _setup_logging(quiet)
    from .pipeline import scenario as run_scenarios

    try:
        cfg = load_config(config)
        result = run_scenarios(cfg, scenarios, month, output_dir, offline)
    except InputError as exc:
        typer.echo(f"hwc-risk: error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(str(result.run_dir))
    if not quiet:
        typer.echo(
            f"scenarios {', '.join(result.scenarios)} added; side by side in {result.table}",
            err=True,
        )


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="Pipeline config (YAML).")],
    month: Annotated[
        str | None, typer.Option(help="Month a run would map, YYYY-MM; default: the latest.")
    ] = None,
    offline: Annotated[
        bool | None, typer.Option("--offline/--online", help="Also check offline-map assets.")
    ] = None,
) -> None:
    """Check a config and its inputs (files, CRS, overlap, incidents) without training.

    Prints what a run would use. Exit code 0 when a run would start, 2 (with the
    problem) when it would not.
    """
    from .checks import validate_config

    # the report below says everything, warnings included; the log would repeat it
    _setup_logging(quiet=True, terminal=logging.ERROR)
    try:
        report = validate_config(load_config(config), month=month, offline=offline)
    except InputError as exc:
        _error(exc)
        raise typer.Exit(2) from None
    g, inc = report["grid"], report["incidents"]
    typer.echo(f"config: {config} is valid")
    typer.echo(
        f"grid: {g['crs']}, {g['width']} x {g['height']} cells of "
        f"{g['resolution'][0]:g} x {g['resolution'][1]:g}; "
        f"{report['valid_share_of_grid']:.0%} of cells have every covariate"
    )
    for key, cov in report["covariates"].items():
        typer.echo(
            f"covariate {key}: {cov['type']}, band {cov['band']}, "
            f"{cov['valid_share_of_grid']:.0%} of the grid covered ({cov['path']})"
        )
    for key, text in report.get("monthly_covariates", {}).items():
        typer.echo(f"covariate {key}: {text}")
    rejected = ", ".join(f"{k} {v}" for k, v in inc["rejected_by_reason"].items()) or "none"
    typer.echo(
        f"incidents: {inc['read']} read from {len(inc['files'])} file(s): {inc['accepted']} "
        f"accepted, {inc['duplicates_merged']} duplicates merged, {inc['rejected']} rejected "
        f"({rejected}); dates {inc['first_date']} to {inc['last_date']}"
    )
    if inc.get("rejections"):
        typer.echo(f"warning: most incident rows were rejected: {inc['rejections']}")
        typer.echo(f"rejected rows written to {inc['rejected_file']}")
    typer.echo(f"month: {inc['month']}, using {inc['used_up_to_month']} incidents")
    typer.echo(f"model: {report['model']['recipe']} ({report['model']['estimator']})")
    comp = report["compute"]
    where = (
        f"Dask scheduler {comp['scheduler']} ({comp['workers']} workers answered)"
        if comp["scheduler"]
        else f"{comp['workers']} local {comp['pool']}"
    )
    typer.echo(f"compute: chunks of {comp['chunk_size']} cells on {where}")


@app.command()
def runs(
    output_dir: Annotated[Path, typer.Argument(help="The output_dir of your runs.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List past runs: name, month, status, skill against the best baseline, incident counts."""
    import json

    from .runfolder import list_runs

    try:
        rows = list_runs(output_dir)
    except InputError as exc:
        _error(exc)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no runs in {output_dir}")
        return

    def pct(value: object) -> str:
        return f"{value:.0%}" if isinstance(value, int | float) else "-"

    widths = [
        ("name", 24),
        ("month", 8),
        ("status", 9),
        ("model", 8),
        ("top10%", 7),
        ("best base", 10),
        ("read", 6),
        ("used", 6),
        ("rej", 5),
        ("dup", 5),
    ]
    typer.echo(" ".join(f"{title:<{w}}" for title, w in widths))
    for r in rows:
        cells = [
            str(r["name"]),
            str(r["month"]),
            str(r["status"]),
            str(r.get("model", "")),
            pct(r.get("capture_10")),
            pct(r.get("best_baseline_capture_10")),
            str(r.get("read", "-")),
            str(r.get("used", "-")),
            str(r.get("rejected", "-")),
            str(r.get("duplicates", "-")),
        ]
        typer.echo(" ".join(f"{c[:w]:<{w}}" for c, (_, w) in zip(cells, widths, strict=True)))


@app.command()
def circuitscape(
    ini: Annotated[Path, typer.Argument(help="A Circuitscape configuration (.ini).")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
) -> None:
    """Run a Circuitscape .ini (any mode, raster or network) and write Circuitscape's outputs.

    Relative paths in the .ini are taken from the .ini's folder, else from the current
    folder. The files written are listed on stdout.
    """
    _setup_logging(quiet)
    from .circuitscape import run_ini

    log = logging.getLogger("hwc_risk.circuitscape")
    try:
        written = run_ini(ini, progress=log.info)
    except InputError as exc:
        _error(exc)
        raise typer.Exit(2) from None
    for path in written:
        typer.echo(str(path))


@app.command()
def omniscape(
    ini: Annotated[Path, typer.Argument(help="An Omniscape configuration (.ini).")],
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Parallel workers (default: the cores)."),
    ] = None,
    pool: Annotated[
        str, typer.Option("--pool", help="threads or processes (local parallelism).")
    ] = "processes",
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="A Dask scheduler to run windows on.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
) -> None:
    """Run an Omniscape .ini (moving-window connectivity) and write Omniscape's outputs.

    Outputs go to the project_name folder (relative to the .ini's folder); the files
    written are listed on stdout.
    """
    _setup_logging(quiet)
    from .compute import open_compute
    from .config import ComputeConfig
    from .omniscape import run_omniscape_ini

    log = logging.getLogger("hwc_risk.omniscape")
    try:
        if pool not in ("threads", "processes"):
            raise InputError(f"--pool {pool}: use threads or processes")
        cfg = ComputeConfig(workers=workers, pool=pool, scheduler=scheduler)
        with open_compute(cfg) as compute:
            written = run_omniscape_ini(ini, compute, progress=log.info)
    except InputError as exc:
        _error(exc)
        raise typer.Exit(2) from None
    for path in written:
        typer.echo(str(path))


@app.command()
def cube(
    name_dir: Annotated[
        Path, typer.Argument(metavar="OUTPUT_DIR/NAME", help="The folder of a name's month runs.")
    ],
) -> None:
    """Write risk_cube.nc (CF-1.8 NetCDF: risk, classes and forecasts by month) and
    monthly_figures.csv (per month: district, classes, hotspots) from every month's run.

    Runs not complete, or on another grid than the latest run, are left out with a note.
    The two files written are listed on stdout.
    """
    from .cube import build_cube

    try:
        result = build_cube(name_dir)
    except InputError as exc:
        _error(exc)
        raise typer.Exit(2) from None
    for note in result.notes:
        typer.echo(f"hwc-risk: note: {note}", err=True)
    first, last = result.times[0], result.times[-1]
    typer.echo(
        f"{len(result.runs)} run(s), {len(result.times)} month(s) from {first} to {last}",
        err=True,
    )
    typer.echo(str(result.cube))
    typer.echo(str(result.csv))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
