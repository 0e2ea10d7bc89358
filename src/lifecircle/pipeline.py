"""One pipeline: a study to its outputs.

:func:`run_pipeline` is what every command runs: ``score``, ``demo``,
``site``, ``scenario`` and each area of a batch. It computes what the
:class:`~lifecircle.options.Options` ask for (isochrones, the gap grid,
robustness), optional siting and scenario steps, writes the tables, layers
and summary, then the map and the report.

Outputs are staged: everything is written into a hidden folder beside
``out`` and moved into place only when the whole run has succeeded, with a
``manifest.json`` written last. A failed run leaves the previous complete set
untouched, and readers (``lifecircle map``, ``report``, batch) check the
manifest, so a half-set never looks complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError, OutputError
from .options import Options

if TYPE_CHECKING:
    from .scenarios import Scenario, ScenarioDiff
    from .shuttle import ShuttlePlan
    from .siting import SitingResult
    from .study import Study

logger = logging.getLogger(__name__)

__all__ = [
    "MANIFEST",
    "RunResult",
    "ShuttleRequest",
    "SitingRequest",
    "check_output_folder",
    "read_manifest",
    "run_pipeline",
]

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class SitingRequest:
    """Where to build ``k`` new facilities of ``target`` (type or category).

    ``target=None`` picks the worst-covered type.
    """

    target: str | None = None
    k: int = 3
    candidates: Path | None = None
    spacing_m: float = 100.0
    method: str = "greedy"

    def __post_init__(self) -> None:
        if self.k < 1:
            raise InputError(f"k must be at least 1, got {self.k}")
        if not self.spacing_m > 0:
            raise InputError(f"spacing must be a positive number of metres, got {self.spacing_m}")
        if self.method not in ("greedy", "exact"):
            raise InputError(f"method must be greedy or exact, got {self.method!r}")


@dataclass(frozen=True)
class ShuttleRequest:
    """A free elderly shuttle to plan: ``k`` boarding stops on ``lines`` loops.

    ``destinations`` are facility types (default: hospitals, elderly day care
    and markets, see :mod:`lifecircle.shuttle`); ``drive`` a road file (default:
    the streets that cars may use).
    """

    k: int = 2
    lines: int = 1
    destinations: tuple[str, ...] | None = None
    drive: Path | None = None
    method: str = "greedy"
    vehicle_speed_kmh: float | None = None
    headway_min: float | None = None
    dwell_min: float | None = None
    elderly_walk_speed: float | None = None

    def __post_init__(self) -> None:
        if self.k < 1:
            raise InputError(f"k must be at least 1, got {self.k}")
        if self.lines < 1:
            raise InputError(f"lines must be at least 1, got {self.lines}")
        if self.method not in ("greedy", "exact"):
            raise InputError(f"method must be greedy or exact, got {self.method!r}")


@dataclass
class RunResult:
    """What a pipeline run produced."""

    study: Study
    out: Path
    written: list[Path] = field(default_factory=list)
    siting: SitingResult | None = None
    scenario: ScenarioDiff | None = None
    shuttle: ShuttlePlan | None = None
    timings: dict[str, float] = field(default_factory=dict)


class _Stages:
    """Times each stage (logged at debug level and kept in the result)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def run(self, name: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        result = func(*args, **kwargs)
        self.timings[name] = round(time.process_time() - start, 3)
        logger.debug("stage %s: %.2f s CPU", name, self.timings[name])
        return result


def check_output_folder(out: Path, inputs: Iterable[str | Path] = ()) -> None:
    """Refuse an output folder that is a file, a device, an input, or not writable."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError("--out must be a folder; this is a file", file=out)
    resolved_inputs = {Path(p).resolve() for p in inputs}
    if out.resolve() in resolved_inputs:
        raise InputError("--out is an input file", file=out)
    parent = out if out.exists() else _existing_parent(out)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError("the output folder is not writable", file=parent)


def _existing_parent(path: Path) -> Path:
    for parent in path.resolve().parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError("--out lies under a file, not a folder", file=parent)
            return parent
    return Path("/")


def run_pipeline(
    study: Study,
    out: str | Path,
    options: Options | None = None,
    *,
    siting: SitingRequest | None = None,
    scenario: Scenario | str | Path | None = None,
    shuttle: ShuttleRequest | None = None,
) -> RunResult:
    """Run a study to its outputs in ``out`` (see the module notes).

    Parameters
    ----------
    study
        The study; its options are used unless ``options`` is given.
    out
        The output folder (created; files of an earlier run are replaced).
    options
        What to compute and how to draw it (default: the study's).
    siting
        Also recommend sites, write ``sites.*`` and draw them on the map.
    scenario
        Also run a scenario (a :class:`~lifecircle.scenarios.Scenario` or a
        YAML path) and write its differences.
    shuttle
        Also plan an elderly shuttle and write its stops, route and timetable.

    Returns
    -------
    RunResult
        The files written (their final paths) and the siting/scenario results.
    """
    options = options or study.options
    out = Path(out)
    inputs = [*study.inputs.values()]
    scenario_path = Path(scenario) if isinstance(scenario, str | Path) else None
    if scenario_path is not None:
        inputs.append(str(scenario_path))
    input_paths = _split_inputs(inputs)
    check_output_folder(out, input_paths)
    from .outputs import check_output_dir

    check_output_dir(out, input_paths)
    out.mkdir(parents=True, exist_ok=True)
    stage_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    result = RunResult(study, out)
    try:
        written = _run_into(study, stage_dir, options, siting, scenario, shuttle, result)
        result.written = _commit(stage_dir, out, written, study, options, input_paths)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(f"could not write the outputs into {out}: {reason}") from None
    finally:
        shutil.rmtree(stage_dir, ignore_errors=True)
    return result


def _split_inputs(inputs: Iterable[str]) -> list[str]:
    out: list[str] = []
    for value in inputs:
        out += [p for p in str(value).split(";") if p]
    return out


def _run_into(
    study: Study,
    stage: Path,
    options: Options,
    siting: SitingRequest | None,
    scenario: Scenario | str | Path | None,
    shuttle: ShuttleRequest | None,
    result: RunResult,
) -> list[Path]:
    from .outputs import write_outputs

    stages = _Stages()
    written: list[Path] = []
    stages.run("score", study.score)
    iso = (
        stages.run("isochrones", study.isochrones, options.minutes) if options.isochrones else None
    )
    cells, gaps = stages.run("gaps", study.gaps, cell_m=options.cell_m, kind=options.grid)
    extra: dict[str, Any] = {"options": options.to_dict()}
    if options.robustness:
        from .robustness import assess_robustness, write_robustness_outputs

        robust = stages.run(
            "robustness",
            assess_robustness,
            study,
            cell_m=options.cell_m,
            kind=options.grid,
            progress=options.progress,
        )
        gaps = robust.gaps
        extra["robustness"] = robust.summary()
        written += write_robustness_outputs(robust, stage, inputs=[])
    if siting is not None:
        result.siting = stages.run("siting", _recommend, study, siting, options)
        from .siting import write_siting_outputs

        written += write_siting_outputs(result.siting, stage, inputs=[])
        extra["sites"] = result.siting.summary()
    extra["coverage_by_group"] = stages.run("census", study.coverage_by_group)
    sheets: dict[str, Any] = {}
    one_map = stages.run("onemap", _onemap, study)
    if one_map is not None:
        extra["onemap"] = one_map.summary()
        written += _write_onemap(one_map, stage)
        sheets["onemap"] = _plain_districts(one_map).drop(columns="geometry")
        sheets["onemap_counts"] = one_map.counts
    if options.title or options.place:
        extra["study"] = {"name": options.title, "place": options.place}
    if shuttle is not None:
        from .shuttle import write_shuttle_outputs

        result.shuttle = stages.run("shuttle", _plan_shuttle, study, shuttle)
        written += write_shuttle_outputs(result.shuttle, stage)
        extra["shuttle"] = result.shuttle.summary()
    if scenario is not None:
        from .scenarios import run_scenario, write_scenario_outputs

        result.scenario = stages.run("scenario", run_scenario, study, scenario)
        written += write_scenario_outputs(result.scenario, stage, inputs=[])
    written = (
        stages.run(
            "write",
            write_outputs,
            study,
            stage,
            isochrones=iso,
            cells=cells,
            gaps=gaps,
            extra_summary=extra,
            lang=options.lang,
            extra_sheets=sheets,
        )
        + written
    )
    if options.maps:
        if result.siting is not None:
            from .maps import write_whatif

            # per-site coverage sets, so that the map's what-if panel needs no server
            written.append(
                stages.run("whatif", write_whatif, study, result.siting, stage, scenario=scenario)
            )
        written += stages.run("render", render_outputs, stage, options)
    result.timings = stages.timings
    return written


def _recommend(study: Study, request: SitingRequest, options: Options) -> SitingResult:
    from .siting import recommend_sites, worst_covered_type

    target = request.target or worst_covered_type(study)
    return recommend_sites(
        study,
        target,
        request.k,
        candidates=request.candidates,
        candidates_crs=options.layer_crs("candidates"),
        spacing_m=request.spacing_m,
        method=request.method,
    )


def _onemap(study: Study) -> Any:
    """The one-map, when the 社区 are known (polygons or a compound column)."""
    from .onemap import DISTRICT_COLUMNS

    has_column = study.options.district_column in study.communities.columns or any(
        c in study.communities.columns for c in DISTRICT_COLUMNS
    )
    if study.districts is None and not has_column:
        logger.info("no 社区 given (--districts or a compound column): no one-map")
        return None
    return study.onemap()


def _plain_districts(one_map: Any) -> Any:
    """The 社区 table with list cells joined, for GeoPackage, CSV and Excel."""
    districts = one_map.districts.copy()
    for column in ("lacking_types", "worst_compounds"):
        if column in districts:
            districts[column] = districts[column].map(
                lambda v: ";".join(map(str, v)) if isinstance(v, list | tuple) else v
            )
    return districts


def _write_onemap(one_map: Any, folder: Path) -> list[Path]:
    from .outputs import write_layers, write_table

    districts = _plain_districts(one_map)
    write_layers({"districts": districts, "facilities": one_map.facilities}, folder / "onemap.gpkg")
    write_table(districts.drop(columns="geometry"), folder / "onemap_districts.csv")
    write_table(one_map.counts, folder / "onemap_counts.csv")
    return [folder / "onemap.gpkg", folder / "onemap_districts.csv", folder / "onemap_counts.csv"]


def _plan_shuttle(study: Study, request: ShuttleRequest) -> ShuttlePlan:
    from .shuttle import ShuttleParams, plan_shuttle

    params = ShuttleParams.from_defaults(
        walk_speed_m_per_min=request.elderly_walk_speed,
        vehicle_speed_kmh=request.vehicle_speed_kmh,
        headway_min=request.headway_min,
        dwell_min=request.dwell_min,
    )
    return plan_shuttle(
        study,
        request.k,
        destinations=list(request.destinations) if request.destinations else None,
        drive=request.drive,
        params=params,
        groups=study.group_populations(),
        method=request.method,
        lines=request.lines,
    )


def render_outputs(folder: str | Path, options: Options, *, pdf: bool = False) -> list[Path]:
    """``map.html`` and ``report.html`` (and ``report.pdf``) from the results in ``folder``."""
    from .maps import read_results, write_map
    from .report import write_report

    results = read_results(folder)  # once, for both pages
    map_path = write_map(results, basemap=options.basemap, cdn=options.cdn, lang=options.lang)
    report = write_report(
        results,
        lang=options.lang,
        map_path=map_path,
        title=options.title,
        place=options.place,
        pdf=pdf,
    )
    return [map_path, report, *([report.with_suffix(".pdf")] if pdf else [])]


def _commit(
    stage: Path,
    out: Path,
    written: list[Path],
    study: Study,
    options: Options,
    inputs: Iterable[str | Path],
) -> list[Path]:
    """Move the staged files into ``out``, drop stale ones, write the manifest last."""
    from .outputs import refuse_to_overwrite

    names = sorted({p.relative_to(stage).as_posix() for p in written if p.exists()})
    refuse_to_overwrite([out / name for name in names], inputs)
    previous = read_manifest(out, required=False)
    (out / MANIFEST).unlink(missing_ok=True)
    final = []
    for name in names:
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage / name, target)
        final.append(target)
    for name in (previous or {}).get("files", []):
        if name not in names:
            (out / name).unlink(missing_ok=True)
    manifest = {
        "tool": "lifecircle",
        "complete": True,
        "files": names,
        "standard": study.standard.id,
        "options": options.to_dict(),
        "inputs": study.inputs,
    }
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, out / MANIFEST)
    return final


def read_manifest(folder: str | Path, *, required: bool = True) -> dict[str, Any] | None:
    """The manifest of a complete run in ``folder``; an error when there is none."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        if required:
            raise InputError(
                "this folder holds no complete lifecircle run (no manifest.json); "
                "run `lifecircle score` or `lifecircle demo` into it first",
                file=folder,
            )
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        if required:
            raise InputError("manifest.json is damaged; run the study again", file=path) from None
        return None
    if not isinstance(data, dict) or not data.get("complete"):
        if required:
            raise InputError("the run in this folder did not complete", file=folder)
        return None
    if required:
        _check_saved_files(Path(folder), data)
    return data


def _check_saved_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Every file of the run is there, and its summary reads, before anything is drawn."""
    missing = [name for name in manifest.get("files", []) if not (folder / name).is_file()]
    if missing:
        raise InputError(
            f"files of the run are missing ({', '.join(missing[:5])}); run the study again",
            file=folder,
        )
    summary = folder / "summary.json"
    if summary.is_file():
        try:
            json.loads(summary.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(
                f"summary.json is damaged ({exc.__class__.__name__}); run the study again",
                file=summary,
            ) from None


def add_to_manifest(folder: str | Path, paths: Iterable[Path]) -> None:
    """Record files rendered later (``lifecircle map``/``report``) in the manifest."""
    manifest = read_manifest(folder)
    assert manifest is not None
    names = set(manifest["files"]) | {Path(p).name for p in paths}
    manifest["files"] = sorted(names)
    tmp = Path(folder) / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, Path(folder) / MANIFEST)
