"""The ``lifecircle`` command line: a thin layer over :class:`lifecircle.study.Study`.

Exit codes: 0 on success, 2 on bad input or missing data (with a message that
names the file, row and column where it can), 1 on an internal error.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from .errors import InputError, LifecircleError

logger = logging.getLogger("lifecircle")

app = typer.Typer(
    name="lifecircle",
    help="15-minute life-circle (15分钟生活圈) analysis: walking access from residential "
    "compounds to everyday facilities, scored against planning standards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
standards_app = typer.Typer(
    help="List and show the planning standards (profiles).", no_args_is_help=True
)
app.add_typer(standards_app, name="standards")

DEFAULT_DEMO_OUT = Path("lifecircle-demo")


def _setup_logging(quiet: bool, verbose: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("lifecircle")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _parse_minutes(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--minutes takes numbers separated by commas, got {text!r}") from None
    if not values or min(values) <= 0:
        raise InputError("--minutes must be positive numbers")
    return values


def _run_study(
    study, out: Path, *, minutes: list[float], cell_m: float, grid: str, isochrones: bool
) -> list[Path]:  # type: ignore[no-untyped-def]
    from .outputs import write_outputs

    iso = study.isochrones(minutes) if isochrones else None
    cells, gaps = study.gaps(cell_m=cell_m, kind=grid)
    return write_outputs(study, out, isochrones=iso, cells=cells, gaps=gaps)


def _echo_result(study, written: list[Path]) -> None:  # type: ignore[no-untyped-def]
    summary = study.summary()
    results = summary["results"]
    typer.echo(
        f"{results['compounds']} compounds scored against {study.standard.id}: "
        f"completeness (完善度) {results['completeness']:.0%}, mean score "
        f"{results['mean_score']:.1f}/100"
    )
    for tier, cov in results["coverage"]["tiers"].items():
        share = (
            cov["population_share"]
            if cov["population_share"] is not None
            else (cov["compounds_share"])
        )
        typer.echo(f"  tier {tier}: {share:.0%} of residents pass")
    for warning in summary["warnings"]:
        typer.echo(f"  warning: {warning}", err=True)
    typer.echo(f"wrote {len(written)} files to {written[0].parent if written else '?'}")


@app.command()
def score(
    network: Annotated[
        Path,
        typer.Option(
            help="Streets: .osm/.osm.bz2/.osm.pbf, .graphml, "
            "or a centre-line file (GeoJSON, GPKG, SHP)."
        ),
    ],
    facilities: Annotated[
        list[Path], typer.Option(help="Facility/POI file(s); repeat the option for several files.")
    ],
    communities: Annotated[Path, typer.Option(help="Residential compounds (points or polygons).")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    standard: Annotated[str, typer.Option(help="Profile id or YAML path.")] = "gb50180-2018",
    gates: Annotated[Path | None, typer.Option(help="Compound gates (entrances).")] = None,
    boundary: Annotated[Path | None, typer.Option(help="Study-area polygon(s).")] = None,
    capacity: Annotated[
        Path | None,
        typer.Option(help="Table of facility id and capacity, for supply-demand measures."),
    ] = None,
    crs: Annotated[
        str, typer.Option(help="Coordinates of the input tables: wgs84, gcj02, bd09 or EPSG:n.")
    ] = "wgs84",
    facilities_crs: Annotated[
        str | None, typer.Option(help="Override --crs for facilities.")
    ] = None,
    communities_crs: Annotated[
        str | None, typer.Option(help="Override --crs for compounds.")
    ] = None,
    gates_crs: Annotated[str | None, typer.Option(help="Override --crs for gates.")] = None,
    walk_speed: Annotated[
        float | None,
        typer.Option(help="Walking speed, metres per minute (default: the standard's)."),
    ] = None,
    max_snap: Annotated[float, typer.Option(help="Snap limit in metres.")] = 250.0,
    minutes: Annotated[str, typer.Option(help="Isochrone minutes, comma-separated.")] = "5,10,15",
    cell: Annotated[float, typer.Option(help="Gap grid cell size in metres (50-200).")] = 100.0,
    grid: Annotated[str, typer.Option(help="Gap grid: square or h3.")] = "square",
    no_isochrones: Annotated[
        bool, typer.Option("--no-isochrones", help="Skip isochrones.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or info.")] = False,
) -> None:
    """Score compounds against a standard and write tables, layers and a summary."""
    from .study import Study

    _setup_logging(quiet)
    study = Study.from_files(
        network,
        facilities,
        communities,
        gates=gates,
        boundary=boundary,
        capacity=capacity,
        crs=crs,
        facilities_crs=facilities_crs,
        communities_crs=communities_crs,
        gates_crs=gates_crs,
        standard=standard,
        walk_speed=walk_speed,
        max_snap_m=max_snap,
        progress=not quiet,
    )
    written = _run_study(
        study,
        out,
        minutes=_parse_minutes(minutes),
        cell_m=cell,
        grid=grid,
        isochrones=not no_isochrones,
    )
    _echo_result(study, written)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = DEFAULT_DEMO_OUT,
    standard: Annotated[str, typer.Option(help="Profile id or YAML path.")] = "puxieshi-2021",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or info.")] = False,
) -> None:
    """Run the whole pipeline on the embedded SYNTHETIC demo area."""
    from .datasets import demo_data
    from .study import Study

    _setup_logging(quiet)
    data = demo_data()
    typer.echo("Demo data are synthetic (generated by lifecircle; not a real place).")
    study = Study.from_files(
        data.streets,
        data.pois,
        data.compounds,
        gates=data.gates,
        boundary=data.boundary,
        capacity=data.capacity,
        crs="wgs84",
        facilities_crs=data.crs_pois,
        standard=standard,
        progress=not quiet,
    )
    written = _run_study(
        study, out, minutes=[5, 10, 15], cell_m=100.0, grid="square", isochrones=True
    )
    _echo_result(study, written)


@standards_app.command("list")
def standards_list() -> None:
    """List the packaged standards."""
    from .standards import list_standards

    for item in list_standards():
        typer.echo(f"{item['id']:<16} {item['version']:<6} {item['title_zh']}  |  {item['title']}")


@standards_app.command("show")
def standards_show(
    name: Annotated[str, typer.Argument(help="Profile id or YAML path.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the profile as JSON.")] = False,
) -> None:
    """Show a standard's thresholds with the source and status of each."""
    from .standards import load_standard

    std = load_standard(name)
    if as_json:
        typer.echo(json.dumps(std.to_dict(), ensure_ascii=False, indent=2))
        return
    typer.echo(f"{std.id}: {std.title_zh} / {std.title}")
    typer.echo(
        f"walking speed {std.walk_speed_m_per_min:g} m/min ({std.walk_speed_status}); "
        f"thresholds in {std.threshold_rule}"
    )
    prov = std.provenance()
    for row in prov.itertuples(index=False):
        typer.echo(
            f"  [{row.tier}] {row.kind:<11} {row.item:<18} {row.threshold_m:>6.0f} m "
            f"{row.threshold_min:>5.1f} min  {row.status:<22} {row.source}"
        )


def main() -> None:
    """Entry point of the console script; maps errors to exit codes.

    Usage errors are typer's (exit code 2); lifecircle's own errors carry
    their exit code; anything else is an internal error (exit code 1).
    """
    try:
        app()
    except LifecircleError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(exc.exit_code) from None
    except Exception as exc:
        logger.debug("internal error", exc_info=True)
        typer.echo(
            f"internal error: {type(exc).__name__}: {exc}. "
            "Please report it with the input that caused it.",
            err=True,
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
