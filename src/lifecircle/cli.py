"""The ``lifecircle`` command line: a thin layer over the pipeline.

Every study option is a field of :class:`lifecircle.options.Options`; the
flags of each command are generated from those fields, so an option has the
same name, default, unit and help in every command. Every command that runs a
study calls :func:`lifecircle.pipeline.run_pipeline`.

Exit codes: 0 on success, 2 on bad input, missing data or outputs that cannot
be written (with a message that names the file, row and column where it can),
3 when some areas of a batch failed, 1 on an internal error.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from .errors import LifecircleError
from .options import DEMO_STANDARD, Inputs, Options

if TYPE_CHECKING:
    from .pipeline import RunResult
    from .siting import SitingResult
    from .study import Study

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
taxonomy_app = typer.Typer(
    help="Audit how facility rows are typed, and feed corrections back.", no_args_is_help=True
)
app.add_typer(taxonomy_app, name="taxonomy")

DEFAULT_DEMO_OUT = Path("lifecircle-demo")
STUDY_GROUPS = ("read", "crs", "study", "run", "render")

# The input files of a study, as flags (see lifecircle.options.Inputs).
_INPUT_FLAGS: dict[str, tuple[Any, str, bool]] = {
    "network": (
        Path,
        "Streets: .osm/.osm.bz2/.osm.gz/.osm.pbf, .graphml, or a centre-line file "
        "(GeoJSON, GPKG, SHP, FGB, GeoParquet).",
        True,
    ),
    "facilities": (list[Path], "Facility/POI file(s); repeat the option for several files.", True),
    "communities": (Path, "Residential compounds (points or polygons).", True),
    "gates": (Optional[Path], "Compound gates (entrances).", False),  # noqa: UP045
    "boundary": (Optional[Path], "Study-area polygon(s).", False),  # noqa: UP045
    "capacity": (
        Optional[Path],  # noqa: UP045
        "Table of facility id and capacity, for supply-demand measures.",
        False,
    ),
    "districts": (
        Optional[Path],  # noqa: UP045
        "社区 (residents' committee) polygons, for the facility one-map.",
        False,
    ),
    "taxonomy_overrides": (
        Optional[Path],  # noqa: UP045
        "The CSV of `lifecircle taxonomy check` with its override column filled in.",
        False,
    ),
}


def _setup_logging(quiet: bool, verbose: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("lifecircle")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _option_parameters(groups: Sequence[str], base: Options) -> list[inspect.Parameter]:
    """One keyword parameter per option of ``groups``, defaulting to "not given"."""
    params = []
    for spec in Options.specs(groups):
        default = getattr(base, spec.name)
        shown = ",".join(f"{v:g}" for v in default) if isinstance(default, tuple) else default
        notes = [f"unit: {spec.unit}"] if spec.unit else []
        if spec.choices:
            notes.append("|".join(spec.choices))
        if isinstance(default, bool):
            kind: Any = Optional[bool]  # noqa: UP045 - typer reads the annotation
            decls: tuple[str, ...] = (f"--{spec.flag}/--no-{spec.flag}",)
            notes.append(f"default: {'on' if default else 'off'}")
        else:
            numeric = isinstance(default, float) or spec.name == "walk_speed"
            kind = Optional[float] if numeric else Optional[str]  # noqa: UP045
            decls = (f"--{spec.flag}",)
            if shown is not None:
                notes.append(
                    f"default: {shown:g}" if isinstance(shown, float) else f"default: {shown}"
                )
        # parentheses, not brackets: the help is rendered as rich markup
        text = spec.help + (f" ({'; '.join(notes)})" if notes else "")
        params.append(
            inspect.Parameter(
                spec.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[kind, typer.Option(*decls, help=text)],
            )
        )
    return params


def _input_parameters() -> list[inspect.Parameter]:
    params = []
    for name, (kind, text, required) in _INPUT_FLAGS.items():
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=... if required else None,
                annotation=Annotated[kind, typer.Option(f"--{name}", help=text)],
            )
        )
    return params


_FEEDBACK = [
    inspect.Parameter(
        "quiet",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or info.")],
    ),
    inspect.Parameter(
        "verbose",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool, typer.Option("--verbose", "-v", help="Debug messages, with the time per stage.")
        ],
    ),
]


def _command(
    name: str | None = None,
    *,
    groups: Sequence[str] = (),
    inputs: bool = False,
    base: Options | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a command whose option flags come from :class:`Options`.

    The decorated function declares its own parameters and, when it wants
    them, ``options`` (an :class:`Options` built from the defaults, ``base``
    and the flags given) and ``inputs`` (an :class:`Inputs`).
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        own = [
            p
            for p in inspect.signature(func, eval_str=True).parameters.values()
            if p.name not in ("options", "inputs", "given")
        ]
        own_names = {p.name for p in own}
        files = _input_parameters() if inputs else []
        extra = _option_parameters(groups, base or Options()) if groups else []
        extra += [p for p in _FEEDBACK if p.name not in own_names]
        wants_options = "options" in inspect.signature(func, eval_str=True).parameters
        wants_given = "given" in inspect.signature(func, eval_str=True).parameters

        def wrapper(**kwargs: Any) -> Any:
            quiet = bool(kwargs.pop("quiet", False))
            verbose = bool(kwargs.pop("verbose", False))
            _setup_logging(quiet, verbose)
            call = {k: kwargs.pop(k) for k in list(kwargs) if k in own_names}
            if inputs:
                call["inputs"] = Inputs(**{k: kwargs.pop(k) for k in _INPUT_FLAGS})
            given = {k: v for k, v in kwargs.items() if v is not None}
            if wants_options:
                options = (base or Options()).replace(**given, progress=not quiet)
                call["options"] = options
            if wants_given:
                call["given"] = given
            if "quiet" in own_names:
                call["quiet"] = quiet
            return func(**call)

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        positional = [p for p in params if _is_argument(p)]
        keyword = [p for p in params if not _is_argument(p)]
        ordered = [
            *[p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in positional],
            *files,
            *keyword,
            *extra,
        ]
        wrapper.__signature__ = inspect.Signature(ordered)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in ordered}
        wrapper.__doc__ = func.__doc__
        wrapper.__name__ = func.__name__
        wrapper.__module__ = func.__module__
        app_or_group = app
        app_or_group.command(name or func.__name__.rstrip("_"))(wrapper)
        return func

    return decorate


def _is_argument(param: inspect.Parameter) -> bool:
    meta = getattr(param.annotation, "__metadata__", ())
    return any(isinstance(m, typer.models.ArgumentInfo) for m in meta)


OutOpt = Annotated[Path, typer.Option(help="Output folder.")]


def _build_study(inputs: Inputs, options: Options, out: Path) -> Study:
    """Check every path and the standard before any work starts, then load the study."""
    from .pipeline import check_output_folder
    from .standards import load_standard
    from .study import Study

    inputs.check()
    check_output_folder(out, inputs.paths())
    load_standard(options.standard)
    return Study.from_inputs(inputs, options)


def _echo_result(run: RunResult) -> None:
    written = run.out / "summary.json"
    # the written summary holds what the pipeline added (age groups, one-map, shuttle)
    summary = (
        json.loads(written.read_text(encoding="utf-8"))
        if written.is_file()
        else run.study.summary()
    )
    results = summary["results"]
    typer.echo(
        f"{results['compounds']} compounds scored against {run.study.standard.id}: "
        f"completeness (完善度) {results['completeness']:.0%}, mean score "
        f"{results['mean_score']:.1f}/100"
    )
    scores = results.get("scores", {})
    if results.get("no_data") and "with_data" in scores:
        typer.echo(
            f"  mean score {scores['all']['mean_score']:.0f} over all {results['items']} items; "
            f"{scores['with_data']['mean_score']:.0f} over the {results['items_with_data']} "
            f"items with data; {len(results['no_data'])} items without any facility in the "
            f"data ({', '.join(results['no_data'])}): check the inputs. Tiers and maps use "
            f"--score-basis {run.study.options.score_basis}."
        )
    _echo_data_checks(summary.get("data_checks", {}))
    _echo_groups(summary.get("coverage_by_group", {}))
    for tier, cov in results["coverage"]["tiers"].items():
        share = cov["population_share"]
        who = "residents"
        if share is None:
            share, who = cov["compounds_share"], "compounds"
        typer.echo(f"  tier {tier}: {share:.0%} of {who} pass")
    for warning in summary["warnings"]:
        typer.echo(f"  warning: {warning}", err=True)
    if run.siting is not None:
        _echo_siting(run.siting)
    if run.shuttle is not None:
        _echo_shuttle(run.study, run.shuttle)
    typer.echo(f"wrote {len(run.written)} files to {run.out}")


def _echo_groups(coverage: dict[str, Any]) -> None:
    """Coverage of the items that serve one age group, weighted by that group."""
    for item, row in (coverage.get("items") or {}).items():
        if row.get("beneficiaries") in (None, "all") or row.get("group_share") is None:
            continue
        typer.echo(
            f"  {item}: reaches {row['group_met']:,.0f} of {row['group_population']:,.0f} "
            f"residents {row.get('group_name_zh', row['beneficiaries'])} "
            f"({row['group_share']:.1%})"
        )


def _echo_data_checks(checks: dict[str, Any]) -> None:
    """The data checks block: datum fit, types without data, unrouted points, street filter."""
    if not checks:
        return
    typer.echo("  data checks:")
    for fit in checks.get("datum", []):
        verdict = "MISMATCH" if fit.get("mismatch") else "ok"
        typer.echo(
            f"    coordinates of {fit.get('layer')}: declared {fit.get('declared')}, "
            f"best fit {fit.get('best')} ({verdict})"
        )
    without = checks.get("types_without_data") or []
    typer.echo(f"    types without any facility: {', '.join(without) if without else 'none'}")
    for layer, reasons in (checks.get("unrouted") or {}).items():
        if reasons:
            text = ", ".join(f"{n} {reason}" for reason, n in reasons.items())
            typer.echo(f"    unrouted {layer}: {text}")
    excluded = checks.get("street_filter") or {}
    if excluded:
        text = ", ".join(f"{n} by {rule}" for rule, n in excluded.items() if n)
        typer.echo(f"    ways excluded by the street filter: {text or 'none'}")


def _echo_shuttle(study: Study, plan: Any) -> None:
    summary = plan.summary()
    params = summary.get("parameters", {})
    # the walking speed decides who reaches what: say it, and how sure it is
    status = str(params.get("elderly_walk_speed_status", "")).lower()
    typer.echo(
        f"elderly shuttle: {summary.get('stops')} stops; residents aged 60+ reaching each "
        f"destination within {params.get('target_min', 15):g} minutes, walking at "
        f"{params.get('elderly_walk_speed_m_per_min', float('nan')):g} m/min"
        f"{f' ({status})' if status else ''}, alone -> with the shuttle:"
    )
    for row in plan.reach.itertuples(index=False):
        typer.echo(
            f"    {row.type}: {row.walk_only} ({row.walk_only_share:.0%}) -> "
            f"{row.with_shuttle} ({row.with_shuttle_share:.0%})"
        )
    for note in summary.get("notes", []):
        typer.echo(f"    note: {note}")


def _echo_siting(result: SitingResult) -> None:
    summary = result.summary()
    typer.echo(
        f"{summary.get('target', '?')}: {len(result.sites)} site(s) ({result.method}); "
        f"residents uncovered {summary.get('uncovered_before', '?')} -> "
        f"{summary.get('uncovered_after', '?')}"
    )


@_command(groups=STUDY_GROUPS, inputs=True)
def score(*, out: OutOpt, inputs: Inputs, options: Options) -> None:
    """Score compounds against a standard; write tables, layers, summary, map and report."""
    from .pipeline import run_pipeline

    _echo_result(run_pipeline(_build_study(inputs, options, out), out, options))


@_command(groups=STUDY_GROUPS, inputs=True)
def site(
    *,
    out: OutOpt,
    type_: Annotated[
        str | None,
        typer.Option(
            "--type",
            help="Facility type or category to site (id or Chinese name); "
            "default: the worst-covered type.",
        ),
    ] = None,
    k: Annotated[int, typer.Option("--k", help="Number of new sites.")] = 3,
    candidates: Annotated[
        Path | None,
        typer.Option(help="Candidate parcels or buildings; default: points along the streets."),
    ] = None,
    spacing: Annotated[float, typer.Option(help="Spacing of street candidates [m].")] = 100.0,
    method: Annotated[str, typer.Option(help="greedy (any size) or exact (small).")] = "greedy",
    scenario_file: Annotated[
        Path | None,
        typer.Option(
            "--scenario",
            help="Also run this scenario; its new links and gates join the sites in the "
            "map's what-if panel.",
        ),
    ] = None,
    inputs: Inputs,
    options: Options,
) -> None:
    """Recommend where to build k new facilities to cover the most uncovered residents."""
    from .pipeline import SitingRequest, run_pipeline
    from .scenarios import load_scenario
    from .standards import load_standard
    from .study import resolve_target

    target = resolve_target(load_standard(options.standard), type_) if type_ else None
    request = SitingRequest(target, k, candidates, spacing, method)
    plan = load_scenario(scenario_file) if scenario_file is not None else None
    study = _build_study(inputs, options, out)
    _echo_result(run_pipeline(study, out, options, siting=request, scenario=plan))


@_command(groups=STUDY_GROUPS, inputs=True)
def scenario(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    *,
    out: OutOpt,
    inputs: Inputs,
    options: Options,
) -> None:
    """Re-score a study with added/removed facilities or links and write the changes."""
    from .pipeline import run_pipeline
    from .scenarios import load_scenario

    plan = load_scenario(scenario_file)
    run = run_pipeline(_build_study(inputs, options, out), out, options, scenario=plan)
    assert run.scenario is not None
    _echo_result(run)
    typer.echo(f"scenario {plan.name}: {len(run.scenario.compounds)} verdict change(s)")


@_command(groups=STUDY_GROUPS, inputs=True)
def shuttle(
    *,
    out: OutOpt,
    k: Annotated[int, typer.Option("--k", help="Boarding stops, besides one per destination.")] = 2,
    lines: Annotated[int, typer.Option(help="Loops sharing the stops.")] = 1,
    destinations: Annotated[
        str | None,
        typer.Option(
            help="Destination types, comma-separated ids or Chinese names "
            "(default: hospitals, elderly day care, markets)."
        ),
    ] = None,
    drive: Annotated[
        Path | None,
        typer.Option(help="Drivable roads (default: the streets of --network that cars may use)."),
    ] = None,
    method: Annotated[str, typer.Option(help="greedy (any size) or exact (small).")] = "greedy",
    vehicle_speed: Annotated[
        float | None, typer.Option(help="Vehicle speed (unit: km/h; default 20).")
    ] = None,
    headway: Annotated[float | None, typer.Option(help="Headway (unit: min; default 10).")] = None,
    dwell: Annotated[
        float | None, typer.Option(help="Dwell per stop (unit: min; default 0.5).")
    ] = None,
    elderly_walk_speed: Annotated[
        float | None, typer.Option(help="Elderly walking speed (unit: m/min; default 50).")
    ] = None,
    inputs: Inputs,
    options: Options,
) -> None:
    """Plan stops and a route for a free elderly shuttle (老年人接驳车), 15 min door to door."""
    from .pipeline import ShuttleRequest, run_pipeline
    from .standards import load_standard
    from .study import resolve_target

    wanted = None
    if destinations:
        standard = load_standard(options.standard)
        parts = [p for p in destinations.replace("，", ",").split(",") if p.strip()]
        wanted = tuple(resolve_target(standard, p) for p in parts)
    if drive is not None and not drive.exists():
        from .errors import InputError

        raise InputError("--drive: no such file", file=drive)
    request = ShuttleRequest(
        k=k,
        lines=lines,
        destinations=wanted,
        drive=drive,
        method=method,
        vehicle_speed_kmh=vehicle_speed,
        headway_min=headway,
        dwell_min=dwell,
        elderly_walk_speed=elderly_walk_speed,
    )
    run = run_pipeline(_build_study(inputs, options, out), out, options, shuttle=request)
    _echo_result(run)


@_command(groups=("study", "run", "render"), base=Options(standard=DEMO_STANDARD))
def demo(
    *,
    out: Annotated[Path, typer.Option(help="Output folder.")] = DEFAULT_DEMO_OUT,
    options: Options,
) -> None:
    """Run the whole pipeline on the embedded SYNTHETIC demo area."""
    from .pipeline import ShuttleRequest, SitingRequest, check_output_folder, run_pipeline
    from .standards import load_standard
    from .study import Study

    check_output_folder(out)
    load_standard(options.standard)
    typer.echo("Demo data are synthetic (generated by lifecircle; not a real place).")
    study = Study.from_demo(options=options)
    run = run_pipeline(study, out, options, siting=SitingRequest(k=3), shuttle=ShuttleRequest())
    _echo_result(run)


@_command("map", groups=("render",))
def map_(
    out_dir: Annotated[Path, typer.Argument(help="A folder written by score or demo.")],
    *,
    options: Options,
) -> None:
    """Render map.html and report.html again from saved results (no recomputation)."""
    from .pipeline import read_manifest, render_outputs

    read_manifest(out_dir)
    for path in render_outputs(out_dir, options):
        typer.echo(f"wrote {path}")


@_command(groups=("render",))
def report(
    out_dir: Annotated[Path, typer.Argument(help="A folder written by score or demo.")],
    *,
    pdf: Annotated[
        bool, typer.Option("--pdf", help="Also write report.pdf (A4, page numbers; Chromium).")
    ] = False,
    options: Options,
) -> None:
    """Render report.html (and the map) again from saved results; --pdf prints it to A4."""
    from .pipeline import add_to_manifest, read_manifest, render_outputs

    read_manifest(out_dir)
    written = render_outputs(out_dir, options, pdf=pdf)
    add_to_manifest(out_dir, written)
    for path in written:
        typer.echo(f"wrote {path}")


@_command(groups=("study", "run", "render"))
def batch(
    config: Annotated[Path, typer.Argument(help="Batch configuration (YAML).")],
    *,
    out: Annotated[Path | None, typer.Option(help="Output folder (overrides the config).")] = None,
    workers: Annotated[int | None, typer.Option(help="Local worker processes.")] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Address of an existing Dask cluster, tcp://host:port.")
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Run the areas that failed last time again.")
    ] = False,
    options: Options,
    given: dict[str, Any],
) -> None:
    """Score many study areas; resumable. Options given here override the config's."""
    from .batch import run_batch

    result = run_batch(
        config,
        out=out,
        workers=workers,
        scheduler=scheduler,
        retry_failed=retry_failed,
        progress=options.progress,
        overrides=given,
    )
    counts = result.summary["status"].value_counts().to_dict() if len(result.summary) else {}
    typer.echo(f"{len(result.outcomes)} area(s): {counts}; summary in {result.out}")
    for note in result.notes:
        typer.echo(f"  note: {note}", err=True)
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


@taxonomy_app.command("check")
def taxonomy_check(
    file: Annotated[Path, typer.Argument(help="A facility file (Amap/Baidu export, OSM, table).")],
    out: Annotated[
        Path | None,
        typer.Option(help="Write the audit as CSV (UTF-8 with BOM) to edit and feed back."),
    ] = None,
    sheet: Annotated[str | None, typer.Option(help="Excel sheet (name or number).")] = None,
    layer: Annotated[str | None, typer.Option(help="Layer of a multi-layer GIS file.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary.")] = False,
) -> None:
    """How every row was typed, by which rule; fill `override` and pass --taxonomy-overrides."""
    from .errors import InputError
    from .outputs import refuse_to_overwrite, write_table
    from .taxonomy import check_file

    _setup_logging(True)
    if not file.is_file():
        raise InputError("no such file", file=file)
    table = check_file(file, sheet=int(sheet) if sheet and sheet.isdigit() else sheet, layer=layer)
    typed = table["types"].astype(str).str.len() > 0
    flagged = table["flags"].astype(str).str.len() > 0
    if not quiet:
        for row in table.itertuples(index=False):
            types = row.types or "(no type)"
            flag = f"  [{row.flags}]" if row.flags else ""
            typer.echo(f"{row.row:>6}  {str(row.name)[:30]:<30}  {types:<32} {row.rule_id}{flag}")
    typer.echo(
        f"{len(table)} rows: {int(typed.sum())} typed, {int((~typed).sum())} matched no type, "
        f"{int(flagged.sum())} flagged"
    )
    if out is not None:
        refuse_to_overwrite([out], [file])
        write_table(table, out)
        typer.echo(f"wrote {out}: fill the override column and pass it as --taxonomy-overrides")


def main() -> None:
    """Entry point of the console script; maps errors to exit codes.

    Usage errors are typer's (exit code 2); lifecircle's own errors carry
    their exit code; an interrupt exits with 130; anything else is an
    internal error (exit code 1).
    """
    try:
        app()
    except LifecircleError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted; the outputs of an earlier complete run are unchanged", err=True)
        raise SystemExit(130) from None
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
