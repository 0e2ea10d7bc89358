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


# Options shared by the commands that build a study from files.
NetworkOpt = Annotated[
    Path,
    typer.Option(
        help="Streets: .osm/.osm.bz2/.osm.pbf, .graphml, or a centre-line file "
        "(GeoJSON, GPKG, SHP)."
    ),
]
FacilitiesOpt = Annotated[
    list[Path], typer.Option(help="Facility/POI file(s); repeat the option for several files.")
]
CommunitiesOpt = Annotated[Path, typer.Option(help="Residential compounds (points or polygons).")]
OutOpt = Annotated[Path, typer.Option(help="Output folder.")]
StandardOpt = Annotated[str, typer.Option(help="Profile id or YAML path.")]
GatesOpt = Annotated[Path | None, typer.Option(help="Compound gates (entrances).")]
BoundaryOpt = Annotated[Path | None, typer.Option(help="Study-area polygon(s).")]
CapacityOpt = Annotated[
    Path | None, typer.Option(help="Table of facility id and capacity, for supply-demand measures.")
]
CrsOpt = Annotated[
    str, typer.Option(help="Coordinates of the input tables: wgs84, gcj02, bd09 or EPSG:n.")
]
FacilitiesCrsOpt = Annotated[str | None, typer.Option(help="Override --crs for facilities.")]
CommunitiesCrsOpt = Annotated[str | None, typer.Option(help="Override --crs for compounds.")]
GatesCrsOpt = Annotated[str | None, typer.Option(help="Override --crs for gates.")]
WalkSpeedOpt = Annotated[
    float | None,
    typer.Option(help="Walking speed, metres per minute (default: the standard's)."),
]
MaxSnapOpt = Annotated[float, typer.Option(help="Snap limit in metres.")]
RuleOpt = Annotated[
    str | None,
    typer.Option(help="Threshold rule, metres or minutes (default: the standard's)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or info.")]
BasemapOpt = Annotated[
    str, typer.Option(help="Map basemap: osm, light, amap (GCJ-02), tianditu or none.")
]
LangOpt = Annotated[str, typer.Option(help="Map and report language: zh or en.")]
SelfContainedOpt = Annotated[
    bool,
    typer.Option("--self-contained", help="One HTML file with Leaflet inlined (works offline)."),
]


def _render(out: Path, *, basemap: str, lang: str, self_contained: bool) -> list[Path]:
    """map.html and report.html from the results saved in ``out``."""
    from .maps import render_map
    from .report import render_report

    map_path = render_map(out, basemap=basemap, self_contained=self_contained, lang=lang)
    return [map_path, render_report(out, lang=lang, map_path=map_path)]


def _study(**options):  # type: ignore[no-untyped-def]
    from .study import Study

    return Study.from_files(
        options["network"],
        options["facilities"],
        options["communities"],
        gates=options["gates"],
        boundary=options["boundary"],
        capacity=options["capacity"],
        crs=options["crs"],
        facilities_crs=options["facilities_crs"],
        communities_crs=options["communities_crs"],
        gates_crs=options["gates_crs"],
        standard=options["standard"],
        walk_speed=options["walk_speed"],
        threshold_rule=options.get("threshold_rule"),
        max_snap_m=options["max_snap"],
        progress=not options["quiet"],
    )


def _run_study(
    study,  # type: ignore[no-untyped-def]
    out: Path,
    *,
    minutes: list[float],
    cell_m: float,
    grid: str,
    isochrones: bool,
    robustness: bool,
) -> list[Path]:
    """Score, isochrones, gaps and their robustness, then every output file."""
    from .outputs import write_outputs

    iso = study.isochrones(minutes) if isochrones else None
    cells, gaps = study.gaps(cell_m=cell_m, kind=grid)
    extra: dict[str, object] = {}
    written: list[Path] = []
    if robustness:
        from .robustness import assess_robustness, write_robustness_outputs

        result = assess_robustness(study, cell_m=cell_m, kind=grid, progress=study.progress)
        gaps = result.gaps
        extra["robustness"] = result.summary()
        written += write_robustness_outputs(result, out, inputs=study.inputs.values())
    written = (
        write_outputs(study, out, isochrones=iso, cells=cells, gaps=gaps, extra_summary=extra)
        + written
    )
    return written


def _echo_result(study, written: list[Path]) -> None:  # type: ignore[no-untyped-def]
    summary = study.summary()
    results = summary["results"]
    typer.echo(
        f"{results['compounds']} compounds scored against {study.standard.id}: "
        f"completeness (完善度) {results['completeness']:.0%}, mean score "
        f"{results['mean_score']:.1f}/100"
    )
    for tier, cov in results["coverage"]["tiers"].items():
        share = cov["population_share"]
        who = "residents"
        if share is None:
            share, who = cov["compounds_share"], "compounds"
        typer.echo(f"  tier {tier}: {share:.0%} of {who} pass")
    for warning in summary["warnings"]:
        typer.echo(f"  warning: {warning}", err=True)
    folder = written[0].parent if written else "?"
    typer.echo(f"wrote {len(written)} files to {folder}")


@app.command()
def score(
    network: NetworkOpt,
    facilities: FacilitiesOpt,
    communities: CommunitiesOpt,
    out: OutOpt,
    standard: StandardOpt = "gb50180-2018",
    gates: GatesOpt = None,
    boundary: BoundaryOpt = None,
    capacity: CapacityOpt = None,
    crs: CrsOpt = "wgs84",
    facilities_crs: FacilitiesCrsOpt = None,
    communities_crs: CommunitiesCrsOpt = None,
    gates_crs: GatesCrsOpt = None,
    walk_speed: WalkSpeedOpt = None,
    threshold_rule: RuleOpt = None,
    max_snap: MaxSnapOpt = 250.0,
    minutes: Annotated[str, typer.Option(help="Isochrone minutes, comma-separated.")] = "5,10,15",
    cell: Annotated[float, typer.Option(help="Gap grid cell size in metres (50-200).")] = 100.0,
    grid: Annotated[str, typer.Option(help="Gap grid: square or h3.")] = "square",
    no_isochrones: Annotated[
        bool, typer.Option("--no-isochrones", help="Skip isochrones.")
    ] = False,
    no_robustness: Annotated[
        bool, typer.Option("--no-robustness", help="Skip the robustness runs of the gaps.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Score compounds against a standard and write tables, layers and a summary."""
    _setup_logging(quiet)
    study = _study(**locals())
    written = _run_study(
        study,
        out,
        minutes=_parse_minutes(minutes),
        cell_m=cell,
        grid=grid,
        isochrones=not no_isochrones,
        robustness=not no_robustness,
    )
    _echo_result(study, written)


@app.command()
def site(
    network: NetworkOpt,
    facilities: FacilitiesOpt,
    communities: CommunitiesOpt,
    out: OutOpt,
    type_: Annotated[
        str | None,
        typer.Option(
            "--type", help="Facility type (or category) to site; default: the worst-covered type."
        ),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Number of new sites.")] = 3,
    candidates: Annotated[
        Path | None,
        typer.Option(help="Candidate parcels or buildings; default: points along the streets."),
    ] = None,
    spacing: Annotated[float, typer.Option(help="Spacing of street candidates (m).")] = 100.0,
    method: Annotated[str, typer.Option(help="greedy (any size) or exact (small).")] = "greedy",
    standard: StandardOpt = "gb50180-2018",
    gates: GatesOpt = None,
    boundary: BoundaryOpt = None,
    capacity: CapacityOpt = None,
    crs: CrsOpt = "wgs84",
    facilities_crs: FacilitiesCrsOpt = None,
    communities_crs: CommunitiesCrsOpt = None,
    gates_crs: GatesCrsOpt = None,
    walk_speed: WalkSpeedOpt = None,
    max_snap: MaxSnapOpt = 250.0,
    quiet: QuietOpt = False,
) -> None:
    """Recommend where to build k new facilities to cover the most uncovered residents."""
    from .siting import recommend_sites, worst_covered_type, write_siting_outputs

    _setup_logging(quiet)
    study = _study(**locals())
    target = type_ or worst_covered_type(study)
    result = recommend_sites(
        study,
        target,
        k,
        candidates=candidates,
        candidates_crs=crs,
        spacing_m=spacing,
        method=method,
    )
    written = write_siting_outputs(result, out, inputs=study.inputs.values())
    _echo_siting(result, written)
    typer.echo(f"wrote {len(written)} files to {out}")


def _echo_siting(result, written: list[Path]) -> None:  # type: ignore[no-untyped-def]
    summary = result.summary()
    typer.echo(
        f"{summary.get('target', '?')}: {len(result.sites)} site(s) ({result.method}); "
        f"residents uncovered {summary.get('uncovered_before', '?')} -> "
        f"{summary.get('uncovered_after', '?')}"
    )


@app.command()
def scenario(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    network: NetworkOpt,
    facilities: FacilitiesOpt,
    communities: CommunitiesOpt,
    out: OutOpt,
    standard: StandardOpt = "gb50180-2018",
    gates: GatesOpt = None,
    boundary: BoundaryOpt = None,
    capacity: CapacityOpt = None,
    crs: CrsOpt = "wgs84",
    facilities_crs: FacilitiesCrsOpt = None,
    communities_crs: CommunitiesCrsOpt = None,
    gates_crs: GatesCrsOpt = None,
    walk_speed: WalkSpeedOpt = None,
    max_snap: MaxSnapOpt = 250.0,
    quiet: QuietOpt = False,
) -> None:
    """Re-score a study with added/removed facilities or links and write the changes."""
    from .scenarios import load_scenario, run_scenario, write_scenario_outputs

    _setup_logging(quiet)
    plan = load_scenario(scenario_file)
    options = {k: v for k, v in locals().items() if k not in {"plan", "scenario_file"}}
    study = _study(**options)
    diff = run_scenario(study, plan)
    written = write_scenario_outputs(diff, out, inputs=[*study.inputs.values(), scenario_file])
    typer.echo(f"scenario {plan.name}: {len(diff.compounds)} verdict change(s)")
    typer.echo(f"wrote {len(written)} files to {out}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = DEFAULT_DEMO_OUT,
    standard: StandardOpt = "puxieshi-2021",
    basemap: BasemapOpt = "osm",
    lang: LangOpt = "zh",
    self_contained: SelfContainedOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run the whole pipeline on the embedded SYNTHETIC demo area."""
    from .siting import recommend_sites, worst_covered_type, write_siting_outputs
    from .study import Study

    _setup_logging(quiet)
    typer.echo("Demo data are synthetic (generated by lifecircle; not a real place).")
    study = Study.from_demo(standard, progress=not quiet)
    written = _run_study(
        study,
        out,
        minutes=[5, 10, 15],
        cell_m=100.0,
        grid="square",
        isochrones=True,
        robustness=True,
    )
    siting = recommend_sites(study, worst_covered_type(study), 3)
    written += write_siting_outputs(siting, out, inputs=study.inputs.values())
    written += _render(out, basemap=basemap, lang=lang, self_contained=self_contained)
    _echo_result(study, written)
    _echo_siting(siting, written)


@app.command("map")
def map_(
    out_dir: Annotated[Path, typer.Argument(help="A folder written by score or demo.")],
    basemap: BasemapOpt = "osm",
    lang: LangOpt = "zh",
    self_contained: SelfContainedOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Render map.html and report.html again from saved results (no recomputation)."""
    _setup_logging(quiet)
    for path in _render(out_dir, basemap=basemap, lang=lang, self_contained=self_contained):
        typer.echo(f"wrote {path}")


@app.command()
def batch(
    config: Annotated[Path, typer.Argument(help="Batch configuration (YAML).")],
    out: Annotated[Path | None, typer.Option(help="Output folder (overrides the config).")] = None,
    workers: Annotated[int | None, typer.Option(help="Local worker processes.")] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Address of an existing Dask cluster, tcp://host:port.")
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Run the areas that failed last time again.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Score many study areas; resumable. Exit code 3 when some areas failed."""
    from .batch import run_batch

    _setup_logging(quiet)
    result = run_batch(
        config,
        out=out,
        workers=workers,
        scheduler=scheduler,
        retry_failed=retry_failed,
        progress=not quiet,
    )
    counts = result.summary["status"].value_counts().to_dict() if len(result.summary) else {}
    typer.echo(f"{len(result.outcomes)} area(s): {counts}; summary in {result.out}")
    raise typer.Exit(result.exit_code)


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
