"""Batch scoring of many study areas: a district, a city, a province.

:func:`run_batch` reads a YAML configuration that lists the study areas, scores
each one as ``lifecircle score`` would, and writes every area's results into
its own folder plus a combined summary and an overview map. Areas run in
parallel worker processes on one machine, or as tasks on an existing Dask
cluster; a failing area does not stop the others, and an interrupted batch
resumes where it stopped.

Configuration
-------------
Paths are relative to the configuration file. The areas are given in one of
two ways.

Each area with its own files (``areas``)::

    out: results                 # output folder (the out= argument overrides it)
    standard: gb50180-2018       # profile id or YAML path
    crs: wgs84                   # coordinates of the facility, compound and gate files
    facilities_crs: gcj02        # per-kind overrides (communities_crs, gates_crs)
    minutes: [5, 10, 15]         # isochrones
    cell_m: 100                  # gap grid cell size
    areas:
      - id: lucheng              # folder name of the area's results
        name: 鹿城区
        network: lucheng/streets.osm.pbf
        facilities: [lucheng/amap_pois.csv, lucheng/schools.gpkg]
        communities: lucheng/xiaoqu.geojson
        gates: lucheng/gates.csv           # optional, as are boundary and capacity
        boundary: lucheng/boundary.geojson
        crs: gcj02                         # optional per-area coordinate settings

One large network and shared files, cut per area by a boundaries file
(``shared``)::

    standard: gb50180-2018
    facilities_crs: gcj02
    shared:
      boundaries: districts.gpkg     # one polygon per area
      id_column: adcode              # default "id"
      name_column: name              # optional
      buffer_m: 1000                 # facilities and streets this far outside count
      network: zhejiang_streets.gpkg
      facilities: [amap_pois.csv]
      communities: xiaoqu.gpkg
      gates: gates.csv               # optional; gates must name their community_id
      capacity: capacity.csv         # optional

In the shared mode a compound belongs to the area that contains its inside
point; facilities and streets are kept within ``buffer_m`` of the area, so a
school just over the border counts. Each task reads only its area's extent:
GeoPackage, GeoJSON, Shapefile and GeoParquet (with a bbox covering column)
layers are read with a bounding box and the rows kept are saved in
``<out>/<area_id>/inputs/`` so that reject row numbers can be traced. Tables
(CSV, Excel) and OpenStreetMap files cannot be read by extent: they are loaded
once by the coordinating process and saved as GeoParquet in ``<out>/_shared/``
(with the rejected rows), which the tasks then read by extent. For a province,
convert large OpenStreetMap extracts to GeoPackage first so that the
coordinating process does not hold the whole network.

Other keys: ``walk_speed``, ``max_snap_m``, ``grid`` (``square`` or ``h3``),
``isochrones`` (default true), ``maps`` (render ``map.html``/``report.html``
per area when those modules are installed; default true), ``workers`` and
``scheduler`` (arguments of :func:`run_batch` override both).

Outputs
-------
* ``<out>/<area_id>/`` - the files of :func:`lifecircle.outputs.write_outputs`,
  and ``_DONE.json`` (written last) or ``_FAILED.json`` (the error);
* ``<out>/batch_summary.csv`` (UTF-8 with BOM) and ``batch_summary.xlsx`` - one
  row per area: ``area_id``, ``name``, ``status`` (ok, failed or skipped),
  ``error``, ``compounds``, ``population``, ``completeness``, ``mean_score``,
  ``tier_<tier>_pass_share`` per tier, ``coverage_<category>`` per category
  (per facility type when the standard has no categories), ``elapsed_s``;
  shares are of residents where populations are known, else of compounds;
* ``<out>/overview.html`` (areas coloured by completeness) and
  ``<out>/overview.gpkg`` (layer ``areas``).

Resuming
--------
``_DONE.json`` holds a hash of the area's configuration and the size and
modification time of its input files: an unchanged finished area is skipped
(status ``skipped``, its numbers read back), a changed one re-runs. A failed
area is re-run only with ``retry_failed=True`` or when its configuration
changed. An area of the shared mode that holds no compound is recorded as
skipped with the reason in ``error``.

Exit codes
----------
:attr:`BatchResult.exit_code` is 0 when every area is ok or skipped and 3 when
some area failed. A bad configuration raises
:class:`~lifecircle.errors.InputError` before anything runs (exit code 2 on
the command line).

Dask
----
``scheduler="tcp://host:port"`` submits one task per area to an existing Dask
distributed cluster. The workers need lifecircle installed and must see the
input files and the output folder at the same paths (a shared file system).
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import math
import os
import re
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from .config import key_path, read_yaml
from .errors import InputError, LifecircleError, MissingDataError
from .options import Options

if TYPE_CHECKING:
    from .study import Study

logger = logging.getLogger(__name__)

__all__ = [
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "AreaOutcome",
    "AreaSpec",
    "BatchConfig",
    "BatchResult",
    "load_batch_config",
    "run_area",
    "run_batch",
    "summary_table",
]

EXIT_OK = 0
EXIT_SOME_FAILED = 3
DONE_MARKER = "_DONE.json"
FAILED_MARKER = "_FAILED.json"
SHARED_DIR = "_shared"
BATCH_FILES = ("batch_summary.csv", "batch_summary.xlsx", "overview.html", "overview.gpkg")
# Extra margin around a bounding-box read, so datum shifts and reprojection
# never cut off a row the exact spatial filter would keep.
BBOX_MARGIN_M = 200.0
# Layers read by extent; anything else is loaded once and saved as GeoParquet.
_EXTENT_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".parquet", ".geoparquet")
_NETWORK_EXTENT_SUFFIXES = (*_EXTENT_SUFFIXES, ".fgb")
_POLYGONAL = ("Polygon", "MultiPolygon")
_BAD_ID_CHARS = re.compile(r'[\\/:*?"<>|\x00-\x1f]')

# ---------------------------------------------------------------------------
# Configuration schema
# ---------------------------------------------------------------------------

_PATH: dict[str, Any] = {"type": "string", "minLength": 1}
_PATHS: dict[str, Any] = {
    "oneOf": [_PATH, {"type": "array", "items": _PATH, "minItems": 1}],
    "description": "a path or a list of paths",
}
_CRS: dict[str, Any] = {"type": "string", "minLength": 1}
_POSITIVE: dict[str, Any] = {"type": "number", "exclusiveMinimum": 0}
_CRS_KEYS = ("crs", "facilities_crs", "communities_crs", "gates_crs")

_AREA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "network", "facilities", "communities"],
    "properties": {
        "id": {"type": ["string", "integer"]},
        "name": {"type": ["string", "integer"]},
        "network": _PATH,
        "facilities": _PATHS,
        "communities": _PATH,
        "gates": _PATH,
        "boundary": _PATH,
        "capacity": _PATH,
        **{key: _CRS for key in _CRS_KEYS},
    },
}
_SHARED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["boundaries", "network", "facilities", "communities"],
    "properties": {
        "boundaries": _PATH,
        "id_column": {"type": "string", "minLength": 1},
        "name_column": {"type": "string", "minLength": 1},
        "buffer_m": {"type": "number", "minimum": 0},
        "network": _PATH,
        "facilities": _PATHS,
        "communities": _PATH,
        "gates": _PATH,
        "capacity": _PATH,
    },
}
CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "out": _PATH,
        # every study option, under its Options name; Options checks the values
        **{name: {} for name in sorted(Options.names() - {"progress"})},
        "standard": {"type": "string", "minLength": 1},
        "walk_speed": {"type": ["number", "null"], "exclusiveMinimum": 0},
        "max_snap_m": _POSITIVE,
        **{key: _CRS for key in _CRS_KEYS},
        "minutes": {"type": "array", "items": _POSITIVE, "minItems": 1},
        "cell_m": _POSITIVE,
        "grid": {"enum": ["square", "h3"]},
        "isochrones": {"type": "boolean"},
        "maps": {"type": "boolean"},
        "workers": {"type": "integer", "minimum": 1},
        "scheduler": {"type": "string", "minLength": 1},
        "areas": {"type": "array", "items": _AREA_SCHEMA, "minItems": 1},
        "shared": _SHARED_SCHEMA,
    },
}


# ---------------------------------------------------------------------------
# Plain data passed to the tasks (picklable, hashable as JSON)
# ---------------------------------------------------------------------------


# Settings shared by every area of a batch are the study's Options.
StudySettings = Options


@dataclass(frozen=True)
class SharedSource:
    """A shared layer as a task reads it.

    ``read_path`` is the original file (``prepared=False``, read by extent)
    or the GeoParquet of already loaded rows in ``<out>/_shared``.
    """

    path: str
    read_path: str
    crs: str
    prepared: bool
    note: str = ""


@dataclass(frozen=True)
class ClipSpec:
    """What a task of the shared mode cuts out of the shared layers."""

    area_wkb: str
    boundaries: str
    buffer_m: float
    network: SharedSource
    facilities: tuple[SharedSource, ...]
    communities: SharedSource
    gates: SharedSource | None = None
    capacity: str | None = None


@dataclass(frozen=True)
class AreaSpec:
    """Everything one task needs to score one area; see :func:`run_area`.

    In the per-area mode ``network``, ``facilities``... are the area's own
    files; in the shared mode ``clip`` says what to cut from the shared ones.
    """

    area_id: str
    name: str
    index: int
    out_dir: str
    settings: StudySettings
    crs: dict[str, str] = field(default_factory=dict)
    network: str | None = None
    facilities: tuple[str, ...] = ()
    communities: str | None = None
    gates: str | None = None
    boundary: str | None = None
    capacity: str | None = None
    clip: ClipSpec | None = None
    config_hash: str = ""
    inputs_fingerprint: str = ""

    def input_paths(self) -> list[str]:
        """Every file this area reads (shared files included)."""
        if self.clip is None:
            paths = [self.network, *self.facilities, self.communities]
            paths += [self.gates, self.boundary, self.capacity]
        else:
            clip = self.clip
            paths = [clip.network.path, *(s.path for s in clip.facilities), clip.communities.path]
            paths += [clip.gates.path if clip.gates else None, clip.capacity]
        return [p for p in paths if p]


@dataclass
class AreaOutcome:
    """How one area went.

    ``status`` is ``ok``, ``failed`` or ``skipped``; ``metrics`` holds the
    numbers of the summary row; ``geometry_wkt`` the area (WGS84) when known.
    """

    area_id: str
    name: str
    status: str
    error: str = ""
    elapsed_s: float = float("nan")
    metrics: dict[str, Any] = field(default_factory=dict)
    geometry_wkt: str | None = None
    out_dir: str = ""
    recomputed: bool = True


@dataclass
class AreaDraft:
    """An area as configured, before hashing (internal to the coordinator)."""

    area_id: str
    name: str
    key_path: str
    files: dict[str, Any]
    crs: dict[str, str]
    geometry: BaseGeometry | None = None


@dataclass
class BatchConfig:
    """A validated batch configuration.

    Attributes
    ----------
    path
        The configuration file.
    out
        The output folder.
    mode
        ``areas`` (each area with its own files) or ``shared``.
    settings
        Study settings for every area.
    areas
        The areas in configuration order.
    shared
        The ``shared`` section with absolute paths (shared mode only).
    workers, scheduler
        Execution settings from the file (``None`` when absent).
    """

    path: Path
    out: Path
    mode: str
    settings: StudySettings
    areas: list[AreaDraft]
    crs: dict[str, str]
    shared: dict[str, Any] = field(default_factory=dict)
    workers: int | None = None
    scheduler: str | None = None


@dataclass
class BatchResult:
    """The result of :func:`run_batch`.

    Attributes
    ----------
    out
        The output folder.
    outcomes
        One :class:`AreaOutcome` per area, in configuration order.
    summary
        The combined summary table (as written to ``batch_summary.csv``).
    files
        The batch-level files written.
    elapsed_s
        Wall time of the whole batch.
    """

    out: Path
    outcomes: list[AreaOutcome]
    summary: pd.DataFrame
    files: list[Path]
    elapsed_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        """Ids of the areas that failed."""
        return [o.area_id for o in self.outcomes if o.status == "failed"]

    @property
    def exit_code(self) -> int:
        """0 when no area failed, 3 when some did."""
        return EXIT_SOME_FAILED if self.failed else EXIT_OK


# ---------------------------------------------------------------------------
# Reading and validating the configuration
# ---------------------------------------------------------------------------


def _key_path(parts: Iterable[Any]) -> str:
    """``['areas', 1, 'facilities']`` -> ``areas[1].facilities``."""
    return key_path(list(parts))


def _schema_message(error: Any) -> str:
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(error.schema.get("properties", {}))
        return f"unknown key(s) {', '.join(map(repr, unknown))}; allowed keys: {allowed}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "oneOf" and "description" in error.schema:
        return f"expected {error.schema['description']}, got {error.instance!r}"
    return error.message


def _validate_schema(data: Any, config: Path) -> None:
    from jsonschema import Draft202012Validator

    errors = sorted(
        Draft202012Validator(CONFIG_SCHEMA).iter_errors(data),
        key=lambda e: ([str(p) for p in e.absolute_path], e.message),
    )
    if errors:
        lines = [f"{_key_path(e.absolute_path)}: {_schema_message(e)}" for e in errors[:5]]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise InputError("; ".join(lines) + more, file=config)


def _read_yaml(config: Path) -> dict[str, Any]:
    if not config.is_file():
        raise InputError("batch configuration not found", file=config)
    data = read_yaml(config)
    if not isinstance(data, dict):
        raise InputError("expected a mapping of keys (standard, areas or shared, ...)", file=config)
    return data


def _resolve(base: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path).resolve()


def _check_area_id(value: Any, config: Path, key: str) -> str:
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    text = text.strip()
    if (
        not text
        or text in (".", "..")
        or text.startswith(("_", "."))
        or _BAD_ID_CHARS.search(text)
        or len(text) > 100
    ):
        raise InputError(
            f'{key}: area id {text!r} cannot name a folder (no / \\ : * ? " < > |, '
            "no leading '.' or '_', at most 100 characters)",
            file=config,
        )
    return text


def _crs_setting(value: str, config: Path, key: str) -> str:
    from .datum import parse_reading

    try:
        return parse_reading(value)
    except InputError as exc:
        raise InputError(f"{key}: {exc.message}", file=config) from None


def _settings(
    data: dict[str, Any], config: Path, overrides: dict[str, Any] | None = None
) -> Options:
    """The batch's options: the file's, then those given on the command line."""
    from .standards import load_standard

    values = {k: data[k] for k in Options.names() if k in data}
    values.update(overrides or {})
    standard = str(values.get("standard", Options.default("standard")))
    if standard.lower().endswith((".yaml", ".yml")) or "/" in standard:
        values["standard"] = str(_resolve(config.parent, standard))
    try:
        options = Options.from_mapping(values)
    except InputError as exc:
        raise InputError(exc.message, file=config) from None
    try:
        load_standard(options.standard)
    except InputError as exc:
        raise InputError(f"standard: {exc.message}", file=config) from None
    return options.replace(progress=False)


def _effective_crs(area: dict[str, str], batch: dict[str, str]) -> dict[str, str]:
    """Per-kind coordinate systems: an area's setting beats the batch's."""
    out = {}
    for kind in ("facilities", "communities", "gates"):
        key = f"{kind}_crs"
        out[kind] = area.get(key) or area.get("crs") or batch.get(key) or batch.get("crs", "wgs84")
    return out


def _area_drafts(data: dict[str, Any], config: Path, batch_crs: dict[str, str]) -> list[AreaDraft]:
    drafts = []
    seen: dict[str, str] = {}
    for i, item in enumerate(data["areas"]):
        key = f"areas[{i}]"
        area_id = _check_area_id(item["id"], config, f"{key}.id")
        if area_id in seen:
            raise InputError(f"{key}.id: area id {area_id!r} repeats {seen[area_id]}", file=config)
        seen[area_id] = f"{key}.id"
        crs = {k: _crs_setting(item[k], config, f"{key}.{k}") for k in _CRS_KEYS if k in item}
        facilities = item["facilities"]
        files: dict[str, Any] = {
            "network": item["network"],
            "facilities": [facilities] if isinstance(facilities, str) else list(facilities),
            "communities": item["communities"],
            **{k: item[k] for k in ("gates", "boundary", "capacity") if k in item},
        }
        files = {
            k: [str(_resolve(config.parent, p)) for p in v]
            if isinstance(v, list)
            else str(_resolve(config.parent, v))
            for k, v in files.items()
        }
        drafts.append(
            AreaDraft(
                area_id=area_id,
                name=str(item.get("name", area_id)),
                key_path=key,
                files=files,
                crs=_effective_crs(crs, batch_crs),
            )
        )
    return drafts


def _shared_section(data: dict[str, Any], config: Path) -> dict[str, Any]:
    section = dict(data["shared"])
    for key in ("boundaries", "network", "communities", "gates", "capacity"):
        if key in section:
            section[key] = str(_resolve(config.parent, section[key]))
    facilities = section["facilities"]
    section["facilities"] = [
        str(_resolve(config.parent, p))
        for p in ([facilities] if isinstance(facilities, str) else facilities)
    ]
    for key in ("boundaries", "network", "communities", "gates", "capacity"):
        if key in section and not Path(section[key]).is_file():
            raise InputError(f"shared.{key}: file not found: {section[key]}", file=config)
    for i, path in enumerate(section["facilities"]):
        if not Path(path).is_file():
            raise InputError(f"shared.facilities[{i}]: file not found: {path}", file=config)
    section.setdefault("id_column", "id")
    section.setdefault("buffer_m", 1000.0)
    return section


def _boundary_drafts(
    shared: dict[str, Any], config: Path, batch_crs: dict[str, str]
) -> list[AreaDraft]:
    """One area per polygon of the boundaries file."""
    path = Path(shared["boundaries"])
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # any reader failure is the user's file
        raise InputError(f"shared.boundaries: cannot read: {exc}", file=path) from exc
    id_column, name_column = shared["id_column"], shared.get("name_column")
    for key, column in (("id_column", id_column), ("name_column", name_column)):
        if column is not None and column not in frame.columns:
            columns = ", ".join(map(str, frame.columns))
            raise InputError(f"shared.{key}: no column {column!r}; columns: {columns}", file=config)
    if frame.empty:
        raise InputError("the boundaries file holds no area", file=path)
    if frame.crs is None:
        frame = frame.set_crs(4326)
    frame = frame.to_crs(4326)
    ids = frame[id_column].tolist()
    names = frame[name_column].tolist() if name_column else ids
    drafts = []
    seen: dict[str, int] = {}
    for i, (geometry, raw_id, name) in enumerate(zip(frame.geometry, ids, names, strict=True)):
        if geometry is None or geometry.is_empty or geometry.geom_type not in _POLYGONAL:
            raise InputError("expected a polygon", file=path, row=i + 1, column="geometry")
        if raw_id is None or pd.isna(raw_id):
            raise InputError("empty area id", file=path, row=i + 1, column=id_column)
        area_id = _check_area_id(raw_id, path, f"row {i + 1}, column {id_column}")
        if area_id in seen:
            raise InputError(
                f"area id {area_id!r} repeats row {seen[area_id]}",
                file=path,
                row=i + 1,
                column=id_column,
            )
        seen[area_id] = i + 1
        drafts.append(
            AreaDraft(
                area_id=area_id,
                name=area_id if name is None or pd.isna(name) else str(name),
                key_path=f"shared.boundaries row {i + 1}",
                files={},
                crs=_effective_crs({}, batch_crs),
                geometry=shapely.make_valid(geometry),
            )
        )
    return drafts


def load_batch_config(
    config_path: str | Path,
    *,
    out: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> BatchConfig:
    """Read and validate a batch configuration.

    Parameters
    ----------
    config_path
        The YAML file (see the module documentation for its keys).
    out
        Output folder; overrides the file's ``out``. Without either, the
        results go to ``<config stem>-results`` beside the file.

    Returns
    -------
    BatchConfig

    Raises
    ------
    InputError
        Unreadable YAML, an unknown or ill-typed key, a missing shared file,
        an unknown standard or coordinate system, repeated area ids; the
        message names the configuration file and the key path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> text = "areas:\\n  - {id: a, network: n, facilities: f, communities: c, netwrok: x}\\n"
    >>> _ = (folder / "batch.yaml").write_text(text)
    >>> try:
    ...     load_batch_config(folder / "batch.yaml")
    ... except InputError as exc:
    ...     print(exc.message.split(";")[0])
    areas[0]: unknown key(s) 'netwrok'
    """
    config = Path(config_path).resolve()
    data = _read_yaml(config)
    _validate_schema(data, config)
    modes = [key for key in ("areas", "shared") if key in data]
    if len(modes) != 1:
        raise InputError(
            "give exactly one of 'areas' (each area with its own files) or 'shared' "
            "(shared files cut by a boundaries file)",
            file=config,
        )
    batch_crs = {k: _crs_setting(data[k], config, k) for k in _CRS_KEYS if k in data}
    settings = _settings(data, config, overrides)
    if out is not None:
        out_dir = _resolve(Path.cwd(), str(out))
    elif "out" in data:
        out_dir = _resolve(config.parent, data["out"])
    else:
        out_dir = config.parent / f"{config.stem}-results"
    shared: dict[str, Any] = {}
    if modes[0] == "areas":
        areas = _area_drafts(data, config, batch_crs)
    else:
        shared = _shared_section(data, config)
        if "auto" in batch_crs.values():
            raise InputError(
                "crs auto needs each area's own files; for shared layers give their system "
                "(wgs84, gcj02, bd09 or EPSG:n)",
                file=config,
            )
        areas = _boundary_drafts(shared, config, batch_crs)
    cfg = BatchConfig(
        path=config,
        out=out_dir,
        mode=modes[0],
        settings=settings,
        areas=areas,
        crs=batch_crs,
        shared=shared,
        workers=data.get("workers"),
        scheduler=data.get("scheduler"),
    )
    _refuse_overwriting_inputs(cfg)
    return cfg


def _refuse_overwriting_inputs(cfg: BatchConfig) -> None:
    """Outputs (and the stale ones removed before an area runs) never replace an input."""
    from .outputs import OUTPUT_NAMES

    inputs = {Path(p).resolve() for p in _all_input_paths(cfg)} | {cfg.path}
    targets = [cfg.out / name for name in BATCH_FILES]
    for area in cfg.areas:
        names = (*OUTPUT_NAMES, DONE_MARKER, FAILED_MARKER)
        targets += [cfg.out / area.area_id / name for name in names]
    for target in targets:
        if target.resolve() in inputs:
            raise InputError(
                f"writing {target} would overwrite an input file; choose another output folder",
                file=cfg.path,
            )
    for path in inputs:
        if cfg.out.resolve() == path or path.is_relative_to(cfg.out / SHARED_DIR):
            raise InputError(
                f"the output folder {cfg.out} would hold the input {path}", file=cfg.path
            )


def _all_input_paths(cfg: BatchConfig) -> list[str]:
    paths: list[str] = []
    for area in cfg.areas:
        for value in area.files.values():
            paths += value if isinstance(value, list) else [value]
    for key, value in cfg.shared.items():
        if key in ("boundaries", "network", "communities", "gates", "capacity"):
            paths.append(value)
        elif key == "facilities":
            paths += value
    return paths


# ---------------------------------------------------------------------------
# Hashes, fingerprints and markers
# ---------------------------------------------------------------------------


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fingerprint(paths: Iterable[str]) -> str:
    """Size and modification time of each input: cheap, and changes when a file does."""
    parts = []
    for path in paths:
        try:
            stat = Path(path).stat()
            parts.append([path, stat.st_size, stat.st_mtime_ns])
        except OSError:
            parts.append([path, "missing"])
    return _digest(parts)


def _config_hash(spec: AreaSpec) -> str:
    """Hash of what decides an area's results (not where they are written)."""
    from . import __version__

    # computed before shared tables are prepared (see _stand_in), so that
    # where the prepared copies are written does not count
    payload = asdict(replace(spec, out_dir="", index=0, config_hash="", inputs_fingerprint=""))
    return _digest({"spec": payload, "version": __version__})


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _clear_markers(area_dir: Path) -> None:
    for name in (DONE_MARKER, FAILED_MARKER):
        (area_dir / name).unlink(missing_ok=True)


def _write_marker(
    area_dir: Path, name: str, spec: AreaSpec, outcome: AreaOutcome, **extra: Any
) -> None:
    from .outputs import write_json

    write_json(
        {
            "area_id": spec.area_id,
            "name": spec.name,
            "status": outcome.status,
            "error": outcome.error,
            "config_hash": spec.config_hash,
            "inputs_fingerprint": spec.inputs_fingerprint,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "elapsed_s": outcome.elapsed_s,
            "metrics": outcome.metrics,
            "geometry_wkt": outcome.geometry_wkt,
            **extra,
        },
        area_dir / name,
    )


# ---------------------------------------------------------------------------
# One task: one area
# ---------------------------------------------------------------------------


def run_area(spec: AreaSpec) -> AreaOutcome:
    """Score one area and write its results; never raises for a bad area.

    This is the task sent to worker processes or Dask workers. It clears the
    area's markers, builds the study (cutting the shared layers in the shared
    mode), writes the outputs of ``lifecircle score`` into ``spec.out_dir`` and
    finally ``_DONE.json``; on any error it writes ``_FAILED.json`` with the
    error and the traceback instead.

    Returns
    -------
    AreaOutcome
        ``ok`` with the summary numbers, ``failed`` with the error, or
        ``skipped`` for an area of the shared mode without any compound.
    """
    start = time.perf_counter()
    area_dir = Path(spec.out_dir)
    area_dir.mkdir(parents=True, exist_ok=True)
    _clear_markers(area_dir)
    _remove_stale_outputs(area_dir)
    outcome = AreaOutcome(spec.area_id, spec.name, "ok", out_dir=str(area_dir))
    try:
        outcome.geometry_wkt = _configured_geometry(spec)
        study = _clipped_study(spec) if spec.clip is not None else _own_files_study(spec)
        if study is None:
            outcome.status = "skipped"
            outcome.error = "no residential compound inside this area"
        else:
            _write_area_outputs(study, spec)
            outcome.metrics = _metrics(study.summary())
            outcome.geometry_wkt = shapely.to_wkt(
                study.area_frame().geometry.iloc[0], rounding_precision=7
            )
    except Exception as exc:  # one bad area must not stop the batch; record why
        outcome.status = "failed"
        outcome.error = _error_text(exc)
        outcome.elapsed_s = round(time.perf_counter() - start, 2)
        _write_marker(area_dir, FAILED_MARKER, spec, outcome, traceback=traceback.format_exc())
        logger.warning("area %s failed: %s", spec.area_id, outcome.error)
        return outcome
    outcome.elapsed_s = round(time.perf_counter() - start, 2)
    _write_marker(area_dir, DONE_MARKER, spec, outcome)
    return outcome


def _remove_stale_outputs(area_dir: Path) -> None:
    """Files of an earlier run that this one may not write (e.g. isochrones now off)."""
    from .outputs import OUTPUT_NAMES

    for name in OUTPUT_NAMES:
        (area_dir / name).unlink(missing_ok=True)
    inputs_dir = area_dir / "inputs"
    if inputs_dir.is_dir():
        for extract in inputs_dir.glob("*.gpkg"):
            extract.unlink()


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, LifecircleError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _configured_geometry(spec: AreaSpec) -> str | None:
    """The area polygon known before loading anything (for the overview of failures)."""
    if spec.clip is not None:
        return shapely.to_wkt(shapely.from_wkb(bytes.fromhex(spec.clip.area_wkb)), 7)
    if spec.boundary and Path(spec.boundary).is_file():
        try:
            frame = gpd.read_file(spec.boundary)
            frame = frame.set_crs(4326) if frame.crs is None else frame.to_crs(4326)
            return shapely.to_wkt(frame.geometry.union_all(), rounding_precision=7)
        except Exception:  # the study reports the real problem with this file
            return None
    return None


def _area_options(spec: AreaSpec) -> Options:
    return spec.settings.replace(
        facilities_crs=spec.crs["facilities"],
        communities_crs=spec.crs["communities"],
        gates_crs=spec.crs["gates"],
        progress=False,
    )


def _own_files_study(spec: AreaSpec) -> Any:
    from .study import Study

    assert spec.network is not None and spec.communities is not None
    return Study.from_files(
        spec.network,
        list(spec.facilities),
        spec.communities,
        gates=spec.gates,
        boundary=spec.boundary,
        capacity=spec.capacity,
        options=_area_options(spec),
    )


def _write_area_outputs(study: Study, spec: AreaSpec) -> None:
    """The outputs of ``lifecircle score``, by the same pipeline."""
    from .pipeline import run_pipeline

    run_pipeline(study, spec.out_dir, _area_options(spec))


def _share(coverage: dict[str, Any]) -> float | None:
    share = coverage.get("population_share")
    return share if share is not None else coverage.get("compounds_share")


def _metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The numbers of an area's summary row."""
    results = summary["results"]
    coverage = results["coverage"]
    by = coverage["categories"] or coverage["types"]
    return {
        "compounds": results["compounds"],
        "population": results["population"],
        "completeness": results["completeness"],
        "mean_score": results["mean_score"],
        **{f"tier_{tier}_pass_share": _share(c) for tier, c in coverage["tiers"].items()},
        **{f"coverage_{item}": _share(c) for item, c in by.items()},
        "warnings": len(summary.get("warnings", [])),
    }


# ---------------------------------------------------------------------------
# The shared mode: cutting an area out of the shared layers
# ---------------------------------------------------------------------------


def _buffered(geometry: BaseGeometry, metres: float) -> BaseGeometry:
    """``geometry`` (WGS84) grown by ``metres`` in its local UTM zone."""
    if metres <= 0:
        return geometry
    series = gpd.GeoSeries([geometry], crs=4326)
    utm = series.estimate_utm_crs()
    return series.to_crs(utm).buffer(metres).to_crs(4326).iloc[0]


def _file_bounds(
    region: BaseGeometry, file_crs: pyproj.CRS | None, crs_name: str
) -> tuple[float, float, float, float]:
    """The bounding box of ``region`` (WGS84) in a file's own coordinates.

    ``crs_name`` is the configured coordinate system of the file (``gcj02``
    and ``bd09`` files are labelled EPSG:4326 but shifted).
    """
    from .coords import from_wgs84

    ring = shapely.segmentize(shapely.box(*region.bounds).exterior, max_segment_length=0.005)
    xy = shapely.get_coordinates(ring)
    if crs_name in ("gcj02", "bd09"):
        xy = np.column_stack(from_wgs84(xy[:, 0], xy[:, 1], crs_name))
    target = pyproj.CRS(crs_name) if crs_name.startswith("EPSG:") else file_crs
    if target is not None and not target.equals(pyproj.CRS.from_epsg(4326)):
        transformer = pyproj.Transformer.from_crs(4326, target, always_xy=True)
        xy = np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
    return (
        float(xy[:, 0].min()),
        float(xy[:, 1].min()),
        float(xy[:, 0].max()),
        float(xy[:, 1].max()),
    )


def _is_parquet(path: str | Path) -> bool:
    return str(path).lower().endswith((".parquet", ".geoparquet"))


def _file_crs(path: str) -> pyproj.CRS | None:
    if _is_parquet(path):
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
        geo = json.loads(meta.get(b"geo", b"{}"))
        column = geo.get("columns", {}).get(geo.get("primary_column", "geometry"), {})
        crs = column.get("crs", "EPSG:4326")
        return pyproj.CRS.from_user_input(crs) if crs is not None else None
    import pyogrio

    crs = pyogrio.read_info(path)["crs"]
    return pyproj.CRS.from_user_input(crs) if crs else None


def _read_by_extent(path: str, bbox: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
    """The rows of a layer that intersect ``bbox`` (in the file's coordinates)."""
    if _is_parquet(path):
        try:
            return gpd.read_parquet(path, bbox=bbox)
        except ValueError:
            logger.warning(
                "%s has no bbox covering column, so it is read whole; write it with "
                "write_covering_bbox=True to read only each area",
                path,
            )
            frame = gpd.read_parquet(path)
            return frame[frame.intersects(shapely.box(*bbox))]
    if str(path).lower().endswith(".shp"):
        return _read_shapefile_by_extent(path, bbox)
    return gpd.read_file(path, bbox=bbox, engine="pyogrio")


def _read_shapefile_by_extent(
    path: str, bbox: tuple[float, float, float, float]
) -> gpd.GeoDataFrame:
    """Decode the DBF as the loaders do: declared code page, else UTF-8, else GBK."""
    from .loading import dbf_code_page, sidecar_file

    file = Path(path)
    if sidecar_file(file, ".cpg") is not None or dbf_code_page(file):
        return gpd.read_file(file, bbox=bbox, engine="pyogrio")
    try:
        return gpd.read_file(file, bbox=bbox, engine="pyogrio", encoding="utf-8")
    except UnicodeDecodeError:
        return gpd.read_file(file, bbox=bbox, engine="pyogrio", encoding="gb18030")


def _extent_frame(source: SharedSource, region: BaseGeometry) -> gpd.GeoDataFrame:
    """Rows of a shared layer near ``region`` (WGS84), in the file's coordinates."""
    file_crs = _file_crs(source.read_path)
    bounds = _file_bounds(_buffered(region, BBOX_MARGIN_M), file_crs, source.crs)
    return _read_by_extent(source.read_path, bounds)


@dataclass
class _Loaded:
    data: gpd.GeoDataFrame
    report: Any


def _load_shared(
    source: SharedSource, kind: str, region: BaseGeometry, inputs_dir: Path, loader: Callable
) -> _Loaded | None:
    """Load the part of a shared layer near ``region``; ``None`` when nothing is there."""
    from .loading import LoadReport, load_report

    frame = _extent_frame(source, region)
    if source.prepared:
        frame = frame.set_crs(4326, allow_override=True)
        report = LoadReport(
            source=source.path,
            kind=kind,
            rows_read=len(frame),
            loaded=len(frame),
            rejects=_empty_rejects(),
            notes=[source.note] if source.note else [],
        )
        return _Loaded(frame.reset_index(drop=True), report)
    if frame.empty:
        return None
    # Loaders read files, so the extent is saved beside the results: reject row
    # numbers then point into this extract.
    extract = inputs_dir / f"{kind}-{Path(source.path).stem}.gpkg"
    _write_extract(frame, extract)
    result = loader(extract, crs=source.crs)
    report = load_report(result, kind)
    report.notes.insert(0, f"rows of {source.path} near the area, saved as {extract}")
    return _Loaded(result.data.reset_index(drop=True), report)


def _write_extract(frame: gpd.GeoDataFrame, target: Path) -> None:
    from .outputs import atomic_path, gpkg_ready

    with atomic_path(target) as tmp:
        # the temporary file name starts with a dot, which GeoPackage refuses as a layer name
        layer = re.sub(r"\W", "_", target.stem)
        gpkg_ready(frame).to_file(tmp, layer=layer, driver="GPKG")


def _no_facilities() -> gpd.GeoDataFrame:
    columns = {c: pd.Series(dtype=object) for c in ("facility_id", "name", "type", "category")}
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries([], crs=4326))


def _empty_rejects() -> pd.DataFrame:
    return pd.DataFrame(columns=["file", "row", "column", "reason", "value"])


def _covered(region: BaseGeometry, points: gpd.GeoSeries) -> np.ndarray:
    shapely.prepare(region)
    return np.asarray(shapely.covers(region, points.to_numpy()), dtype=bool)


def _clipped_network(source: SharedSource, reach: BaseGeometry, area_id: str) -> Any:
    from .network import load_network, network_from_lines

    lines = _extent_frame(source, reach)
    if lines.crs is None:
        lines = lines.set_crs(4326)
    reach_here = gpd.GeoSeries([reach], crs=4326).to_crs(lines.crs).iloc[0]
    shapely.prepare(reach_here)
    lines = lines[shapely.intersects(reach_here, lines.geometry.to_numpy())]
    if lines.empty:
        raise MissingDataError(f"no street of {source.path} within reach of area {area_id}")
    label = f"{source.path} (cut to area {area_id})"
    if source.prepared:  # already walkable segments
        keep = [c for c in lines.columns if c not in ("u", "v", "length_m", "in_main")]
        network = network_from_lines(lines[keep], source=label)
    else:
        network = load_network(lines)
    network.report = replace(network.report, source=label)
    return network


def _clipped_study(spec: AreaSpec) -> Study | None:
    """The study of one area cut from the shared layers, or ``None`` without compounds."""
    from .loading import (
        concat_facilities,
        join_capacity,
        load_communities,
        load_facilities,
        load_gates,
    )
    from .study import Study

    clip = spec.clip
    assert clip is not None
    area = shapely.from_wkb(bytes.fromhex(clip.area_wkb))
    reach = _buffered(area, clip.buffer_m)
    inputs_dir = Path(spec.out_dir) / "inputs"

    communities = _load_shared(clip.communities, "communities", area, inputs_dir, load_communities)
    if communities is not None:
        inside = communities.data.geometry.representative_point()
        communities.data = communities.data[_covered(area, inside)].reset_index(drop=True)
    if communities is None or communities.data.empty:
        return None
    network = _clipped_network(clip.network, reach, spec.area_id)
    communities.report.loaded = len(communities.data)
    communities.report.notes.append(
        f"{len(communities.data)} compounds have their inside point in area {spec.area_id} "
        f"of {clip.boundaries}"
    )
    reports = [communities.report]
    frames = []
    for source in clip.facilities:
        loaded = _load_shared(source, "facilities", reach, inputs_dir, load_facilities)
        if loaded is None:
            continue
        loaded.data = loaded.data[_covered(reach, loaded.data.geometry)]
        loaded.report.notes.append(
            f"{len(loaded.data)} facilities within {clip.buffer_m:g} m of area {spec.area_id}"
        )
        loaded.report.loaded = len(loaded.data)
        reports.append(loaded.report)
        frames.append(loaded.data)
    facilities = concat_facilities(frames) if frames else _no_facilities()
    if clip.capacity:
        facilities = join_capacity(facilities, Path(clip.capacity))
    gates = None
    if clip.gates is not None:
        loaded = _load_shared(clip.gates, "gates", reach, inputs_dir, load_gates)
        if loaded is not None:
            ids = set(communities.data["community_id"].astype(str))
            gates = loaded.data[loaded.data["community_id"].astype(str).isin(ids).to_numpy()]
            loaded.report.loaded = len(gates)
            loaded.report.notes.append(f"{len(gates)} gates of the area's compounds")
            reports.append(loaded.report)
    boundary = gpd.GeoDataFrame({"area_id": [spec.area_id]}, geometry=[area], crs=4326)
    study = Study(
        network,
        facilities,
        communities.data,
        options=_area_options(spec),
        gates=gates,
        boundary=boundary,
    )
    study.load_reports = reports
    study.inputs = {
        "network": clip.network.path,
        "facilities": ";".join(s.path for s in clip.facilities),
        "communities": clip.communities.path,
        **({"gates": clip.gates.path} if clip.gates else {}),
        **({"capacity": clip.capacity} if clip.capacity else {}),
        "boundary": clip.boundaries,
    }
    if facilities.empty:
        study.warnings.append(f"no facility within {clip.buffer_m:g} m of the area")
    _check_datum(study, spec)
    return study


def _check_datum(study: Study, spec: AreaSpec) -> None:
    """Each layer of a clipped area against its streets, as a single study checks it."""
    from .datum import fit_layer

    fits = []
    layers = {"facilities": study.facilities, "communities": study.communities}
    if study.gates is not None:
        layers["gates"] = study.gates
    for layer, frame in layers.items():
        if not len(frame):
            continue
        _, fit = fit_layer(
            frame,
            spec.crs.get(layer, "wgs84"),
            study.network,
            layer=layer,
            source=f"area {spec.area_id}",
            option=f"{layer}_crs",
        )
        fits.append(fit.to_dict())
        if fit.mismatch and fit.message:
            study.warnings.append(fit.message)
    study.__dict__["_datum_fits"] = fits


# ---------------------------------------------------------------------------
# The shared mode: loading tables and OpenStreetMap files once
# ---------------------------------------------------------------------------


def _reads_by_extent(path: str, kind: str) -> bool:
    suffixes = _NETWORK_EXTENT_SUFFIXES if kind == "network" else _EXTENT_SUFFIXES
    return str(path).lower().endswith(suffixes)


def _prepared_name(path: str, kind: str, crs: str) -> str:
    stat = Path(path).stat()
    key = _digest([path, stat.st_size, stat.st_mtime_ns, kind, crs])[:12]
    return f"{kind}-{Path(path).name.split('.')[0]}-{key}"


def _prepare_source(path: str, kind: str, crs: str, shared_dir: Path) -> SharedSource:
    """Load a table or OpenStreetMap file once into GeoParquet; reuse it when unchanged."""
    if _reads_by_extent(path, kind):
        return SharedSource(path=path, read_path=path, crs=crs, prepared=False)
    stem = _prepared_name(path, kind, crs)
    target = shared_dir / f"{stem}.parquet"
    info_path = shared_dir / f"{stem}.json"
    if not (target.is_file() and info_path.is_file()):
        logger.info("loading %s once for every area", path)
        frame, info = _load_whole(path, kind, crs, shared_dir / f"{stem}-rejects.csv")
        from .outputs import atomic_path, write_json

        with atomic_path(target) as tmp:
            frame.to_parquet(tmp, write_covering_bbox=True, row_group_size=20_000)
        write_json(info, info_path)
    info = json.loads(info_path.read_text(encoding="utf-8"))
    return SharedSource(
        path=path, read_path=str(target), crs="wgs84", prepared=True, note=info["note"]
    )


def _load_whole(
    path: str, kind: str, crs: str, rejects_path: Path
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    from .loading import load_communities, load_facilities, load_gates
    from .network import load_network
    from .outputs import gpkg_ready, write_table

    if kind == "network":
        frame = gpkg_ready(load_network(path).segments(to_crs=4326))
        return frame, {"note": f"walkable segments of {path}, loaded once for the batch"}
    loaders: dict[str, Callable[..., Any]] = {
        "facilities": load_facilities,
        "communities": load_communities,
    }
    loader = loaders.get(kind, load_gates)
    result = loader(path, crs=crs)
    write_table(result.rejects, rejects_path)
    note = (
        f"{path} was loaded once for the whole batch: {result.rows_read} rows read, "
        f"{len(result.rejects)} rejected (listed in {rejects_path})"
    )
    data = gpkg_ready(result.data)  # mixed object columns as text, for Parquet
    return data, {"note": note, "rows_read": result.rows_read, "rejected": len(result.rejects)}


def _stand_in(path: str, kind: str, crs: str) -> SharedSource:
    """A shared layer as configured, before any table is prepared (for hashing)."""
    return SharedSource(path=path, read_path="", crs=crs, prepared=not _reads_by_extent(path, kind))


def _shared_layers(
    cfg: BatchConfig, make: Callable[[str, str, str], SharedSource]
) -> dict[str, Any]:
    """``make(path, kind, crs)`` for every shared layer but the boundaries."""
    crs = _effective_crs({}, cfg.crs)
    section = cfg.shared
    gates = section.get("gates")
    return {
        "network": make(section["network"], "network", "wgs84"),
        "facilities": tuple(
            make(p, "facilities", crs["facilities"]) for p in section["facilities"]
        ),
        "communities": make(section["communities"], "communities", crs["communities"]),
        "gates": make(gates, "gates", crs["gates"]) if gates else None,
    }


# ---------------------------------------------------------------------------
# Planning: what to run, what to skip
# ---------------------------------------------------------------------------


def _spec(
    cfg: BatchConfig, index: int, draft: AreaDraft, sources: dict[str, Any] | None
) -> AreaSpec:
    out_dir = str(cfg.out / draft.area_id)
    if cfg.mode == "areas":
        files = draft.files
        spec = AreaSpec(
            area_id=draft.area_id,
            name=draft.name,
            index=index,
            out_dir=out_dir,
            settings=cfg.settings,
            crs=draft.crs,
            network=files["network"],
            facilities=tuple(files["facilities"]),
            communities=files["communities"],
            gates=files.get("gates"),
            boundary=files.get("boundary"),
            capacity=files.get("capacity"),
        )
    else:
        assert sources is not None and draft.geometry is not None
        clip = ClipSpec(
            area_wkb=shapely.to_wkb(draft.geometry, hex=True),
            boundaries=cfg.shared["boundaries"],
            buffer_m=float(cfg.shared["buffer_m"]),
            network=sources["network"],
            facilities=sources["facilities"],
            communities=sources["communities"],
            gates=sources["gates"],
            capacity=cfg.shared.get("capacity"),
        )
        spec = AreaSpec(
            area_id=draft.area_id,
            name=draft.name,
            index=index,
            out_dir=out_dir,
            settings=cfg.settings,
            crs=draft.crs,
            clip=clip,
        )
    return replace(
        spec,
        config_hash=_config_hash(spec),
        inputs_fingerprint=_fingerprint(spec.input_paths()),
    )


def _missing_file_error(cfg: BatchConfig, draft: AreaDraft) -> str | None:
    """Name the first missing file of an area by its key path in the configuration."""
    for key, value in draft.files.items():
        paths = value if isinstance(value, list) else [value]
        for i, path in enumerate(paths):
            if not Path(path).is_file():
                where = f"{draft.key_path}.{key}" + (f"[{i}]" if isinstance(value, list) else "")
                return str(InputError(f"{where}: file not found: {path}", file=cfg.path))
    return None


def _previous(spec: AreaSpec, retry_failed: bool) -> AreaOutcome | None:
    """The outcome of an earlier run that still holds, or ``None`` to run the area."""
    area_dir = Path(spec.out_dir)
    done = _read_marker(area_dir / DONE_MARKER)
    if (
        done
        and done.get("config_hash") == spec.config_hash
        and done.get("inputs_fingerprint") == spec.inputs_fingerprint
    ):
        status = "skipped"
        error = done.get("error", "") if done.get("status") == "skipped" else ""
        return _outcome_from_marker(spec, done, status, error)
    failed = _read_marker(area_dir / FAILED_MARKER)
    if (
        failed
        and not retry_failed
        and failed.get("config_hash") == spec.config_hash
        and failed.get("inputs_fingerprint") == spec.inputs_fingerprint
    ):
        # same configuration and same input files: the same error would come back
        error = (
            f"{failed.get('error', '')} (from an earlier run with the same inputs; "
            "pass --retry-failed to run it again)"
        )
        return _outcome_from_marker(spec, failed, "failed", error)
    return None


def _outcome_from_marker(
    spec: AreaSpec, marker: dict[str, Any], status: str, error: str
) -> AreaOutcome:
    elapsed = marker.get("elapsed_s")
    return AreaOutcome(
        area_id=spec.area_id,
        name=spec.name,
        status=status,
        error=error,
        elapsed_s=float("nan") if elapsed is None else float(elapsed),
        metrics=dict(marker.get("metrics") or {}),
        geometry_wkt=marker.get("geometry_wkt"),
        out_dir=spec.out_dir,
        recomputed=False,
    )


def _failed_before_running(spec: AreaSpec, error: str) -> AreaOutcome:
    outcome = AreaOutcome(spec.area_id, spec.name, "failed", error=error, out_dir=spec.out_dir)
    outcome.geometry_wkt = _configured_geometry(spec)
    area_dir = Path(spec.out_dir)
    area_dir.mkdir(parents=True, exist_ok=True)
    _clear_markers(area_dir)
    _write_marker(area_dir, FAILED_MARKER, spec, outcome)
    return outcome


# ---------------------------------------------------------------------------
# Execution: in this process, in local worker processes, or on Dask
# ---------------------------------------------------------------------------


def _run_serial(specs: Sequence[AreaSpec]) -> Iterator[AreaOutcome]:
    for spec in specs:
        yield run_area(spec)


def _worker_died(spec: AreaSpec, exc: BaseException) -> AreaOutcome:
    """A task that did not return (worker killed, out of memory, lost connection)."""
    error = f"the worker running this area stopped: {_error_text(exc)}"
    outcome = AreaOutcome(spec.area_id, spec.name, "failed", error=error, out_dir=spec.out_dir)
    area_dir = Path(spec.out_dir)
    area_dir.mkdir(parents=True, exist_ok=True)
    _write_marker(area_dir, FAILED_MARKER, spec, outcome)
    return outcome


def _process_context() -> Any:
    """Workers forked from a server that imported lifecircle once, where available.

    Not plain fork: the coordinating process may run threads (progress bar,
    GDAL), which fork does not copy safely. Spawn, the fallback, imports the
    libraries again in every worker.
    """
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["lifecircle.batch", "lifecircle.study"])
        return context
    return multiprocessing.get_context("spawn")


def _run_local(specs: Sequence[AreaSpec], workers: int) -> Iterator[AreaOutcome]:
    context = _process_context()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: dict[Future[AreaOutcome], AreaSpec] = {
            pool.submit(run_area, spec): spec for spec in specs
        }
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                spec = pending.pop(future)
                try:
                    yield future.result()
                except Exception as exc:  # BrokenProcessPool and the like
                    yield _worker_died(spec, exc)


def _task_key(spec: AreaSpec) -> str:
    """A Dask key unique to this submission (ids may hold any character)."""
    return f"lifecircle-area-{spec.index}-{os.getpid()}-{time.time_ns()}"


def _run_dask(specs: Sequence[AreaSpec], scheduler: Any) -> Iterator[AreaOutcome]:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise MissingDataError(
            "running on a Dask cluster needs the distributed package: "
            "pip install 'dask[distributed]'"
        ) from exc
    client = Client(scheduler) if isinstance(scheduler, str) else scheduler
    try:
        futures = {
            client.submit(run_area, spec, pure=False, key=_task_key(spec)): spec for spec in specs
        }
        for future in as_completed(list(futures)):
            spec = futures[future]
            try:
                yield future.result()
            except Exception as exc:  # KilledWorker, lost connection, ...
                yield _worker_died(spec, exc)
            finally:
                future.release()
    finally:
        if isinstance(scheduler, str):
            client.close()


def _execute(specs: Sequence[AreaSpec], workers: int, scheduler: Any) -> Iterator[AreaOutcome]:
    if not specs:
        return iter(())
    if scheduler is not None:
        logger.info("sending %d area(s) to the Dask scheduler %s", len(specs), scheduler)
        return _run_dask(specs, scheduler)
    if workers <= 1 or len(specs) == 1:
        return _run_serial(specs)
    logger.info("scoring %d area(s) in %d worker processes", len(specs), workers)
    return _run_local(specs, min(workers, len(specs)))


# ---------------------------------------------------------------------------
# Batch outputs
# ---------------------------------------------------------------------------

_FIRST_COLUMNS = [
    "area_id",
    "name",
    "status",
    "error",
    "compounds",
    "population",
    "completeness",
    "mean_score",
]


def summary_table(outcomes: Sequence[AreaOutcome]) -> pd.DataFrame:
    """One row per area: status, error, the summary numbers and ``elapsed_s``.

    Examples
    --------
    >>> ok = AreaOutcome("a", "甲", "ok", elapsed_s=1.5,
    ...                  metrics={"compounds": 3, "completeness": 0.8, "coverage_park": 1.0})
    >>> bad = AreaOutcome("b", "乙", "failed", error="file not found")
    >>> summary_table([ok, bad])[["area_id", "status", "compounds", "coverage_park"]]
      area_id  status  compounds  coverage_park
    0       a      ok          3            1.0
    1       b  failed       <NA>            NaN
    """
    extra: list[str] = []
    for outcome in outcomes:
        extra += [k for k in outcome.metrics if k not in _FIRST_COLUMNS and k not in extra]
    rows = [
        {
            "area_id": o.area_id,
            "name": o.name,
            "status": o.status,
            "error": o.error,
            **o.metrics,
            "elapsed_s": o.elapsed_s,
        }
        for o in outcomes
    ]
    columns = [*_FIRST_COLUMNS, *[c for c in extra if c != "warnings"], "warnings", "elapsed_s"]
    table = pd.DataFrame(rows).reindex(columns=columns)
    numeric = [c for c in columns if c not in ("area_id", "name", "status", "error")]
    table[numeric] = table[numeric].apply(pd.to_numeric, errors="coerce")
    for column in ("compounds", "warnings"):  # counts stay whole numbers beside failed areas
        table[column] = table[column].round().astype("Int64")
    return table


def _overview_frame(table: pd.DataFrame, outcomes: Sequence[AreaOutcome]) -> gpd.GeoDataFrame:
    geometries = [shapely.from_wkt(o.geometry_wkt) if o.geometry_wkt else None for o in outcomes]
    return gpd.GeoDataFrame(table.copy(), geometry=geometries, crs=4326)


def _text(value: Any) -> str:
    """Escape for HTML inside the JavaScript template literal folium writes."""
    escaped = html.escape("" if value is None else str(value), quote=True)
    return escaped.replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.4g}"
    return str(value)


def _popup_html(row: pd.Series) -> str:
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:8px'>{_text(k)}</th>"
        f"<td>{_text(_cell(v))}</td></tr>"
        for k, v in row.items()
    )
    return f"<table style='font-size:12px'>{cells}</table>"


def _colour_scale() -> Any:
    import branca.colormap as cm

    return cm.LinearColormap(
        ["#d73027", "#fee08b", "#1a9850"], vmin=0.0, vmax=1.0, caption="completeness (完善度)"
    )


def _colour(completeness: float, status: str) -> str:
    """Fill colour of an area: red to green by completeness, grey when unknown."""
    if status == "failed" or completeness is None or math.isnan(completeness):
        return "#9e9e9e"
    return _colour_scale()(min(max(completeness, 0.0), 1.0))


def _write_overview_html(frame: gpd.GeoDataFrame, target: Path) -> None:
    import folium

    from .outputs import atomic_path

    placed = frame[frame.geometry.notna()]
    if len(placed):
        minx, miny, maxx, maxy = placed.total_bounds
        centre = [(miny + maxy) / 2, (minx + maxx) / 2]
    else:
        centre, minx = [35.0, 105.0], None
    fmap = folium.Map(location=centre, zoom_start=10, tiles="OpenStreetMap")
    for _, row in placed.iterrows():
        status = str(row["status"])
        colour = _colour(row["completeness"], status)
        shape = shapely.simplify(row.geometry, 0.0002, preserve_topology=True)
        # geometry only: every text reaches the page through the escaped popup
        layer = folium.GeoJson(
            {"type": "Feature", "properties": {}, "geometry": mapping(shape)},
            style_function=lambda _f, c=colour, s=status: {
                "fillColor": c,
                "color": "#333333",
                "weight": 1,
                "dashArray": "4" if s == "failed" else None,
                "fillOpacity": 0.6,
            },
        )
        folium.Popup(_popup_html(row.drop(labels="geometry")), max_width=420).add_to(layer)
        layer.add_to(fmap)
    root: Any = fmap.get_root()  # a branca Figure
    root.html.add_child(folium.Element(_legend_html()))
    if minx is not None:
        fmap.fit_bounds([[miny, minx], [maxy, maxx]])
    from .maps import standalone_html

    # offline by default: Leaflet inlined, and an HTML legend instead of branca's d3 scale
    page = standalone_html(fmap)
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")


def _legend_html() -> str:
    stops = [(0.0, "0%"), (0.5, "50%"), (1.0, "100%")]
    swatches = "".join(
        f'<span style="display:inline-block;width:14px;height:10px;background:{_colour(v, "ok")};'
        f'margin:0 4px 0 8px"></span>{label}'
        for v, label in stops
    )
    return (
        '<div style="position:fixed;bottom:18px;left:12px;z-index:9999;background:#fff;'
        'padding:6px 10px;border:1px solid #999;font:12px sans-serif">completeness (完善度)'
        f'{swatches}<span style="display:inline-block;width:14px;height:10px;'
        'background:#9e9e9e;margin:0 4px 0 8px"></span>failed</div>'
    )


def _write_batch_outputs(
    out: Path, outcomes: Sequence[AreaOutcome]
) -> tuple[pd.DataFrame, list[Path]]:
    from .outputs import write_excel, write_layers, write_table

    table = summary_table(outcomes)
    write_table(table, out / "batch_summary.csv")
    write_excel({"areas": table}, out / "batch_summary.xlsx")
    frame = _overview_frame(table, outcomes)
    write_layers({"areas": frame}, out / "overview.gpkg")
    _write_overview_html(frame, out / "overview.html")
    return table, [out / name for name in BATCH_FILES]


# ---------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------


def _default_workers(n_areas: int) -> int:
    return max(1, min(os.cpu_count() or 1, n_areas))


def run_batch(
    config_path: str | Path,
    *,
    out: str | Path | None = None,
    workers: int | None = None,
    scheduler: Any = None,
    retry_failed: bool = False,
    progress: bool = True,
    overrides: dict[str, Any] | None = None,
) -> BatchResult:
    """Score every area of a batch configuration; see the module documentation.

    Parameters
    ----------
    config_path
        The YAML configuration.
    out
        Output folder; overrides the configuration's ``out``.
    workers
        Local worker processes; default the configuration's ``workers``, else
        ``min(cpu count, areas to run)``. 1 runs the areas one after another
        in this process.
    scheduler
        Address of a Dask distributed scheduler (``tcp://host:port``) or a
        ``distributed.Client``; the areas then run there and ``workers`` is
        ignored.
    retry_failed
        Run again the areas that failed in an earlier run.
    progress
        Show a progress bar over the areas.
    overrides
        Options that replace the configuration's (names of
        :class:`~lifecircle.options.Options`), as the command line gives them.

    Returns
    -------
    BatchResult
        Its :attr:`~BatchResult.exit_code` is 0, or 3 when some area failed.

    Raises
    ------
    InputError
        A bad configuration (nothing is run).
    """
    from tqdm import tqdm

    start = time.perf_counter()
    cfg = load_batch_config(config_path, out=out, overrides=overrides)
    cfg.out.mkdir(parents=True, exist_ok=True)
    sources = _shared_layers(cfg, _stand_in) if cfg.mode == "shared" else None
    specs = [_spec(cfg, i, draft, sources) for i, draft in enumerate(cfg.areas)]
    outcomes, to_run = _plan(cfg, specs, retry_failed)
    if to_run and cfg.mode == "shared":
        shared_dir = cfg.out / SHARED_DIR
        prepared = _shared_layers(
            cfg, lambda path, kind, crs: _prepare_source(path, kind, crs, shared_dir)
        )
        to_run = [_with_sources(spec, prepared) for spec in to_run]
    n_workers = workers or cfg.workers or _default_workers(len(to_run))
    scheduler = scheduler if scheduler is not None else cfg.scheduler
    logger.info("%d area(s), %d to run", len(specs), len(to_run))
    with tqdm(total=len(specs), unit="area", desc="areas", disable=not progress) as bar:
        bar.update(len(specs) - len(to_run))
        for outcome in _execute(to_run, n_workers, scheduler):
            outcomes[outcome.area_id] = outcome
            bar.set_postfix_str(f"{outcome.area_id}: {outcome.status}", refresh=False)
            bar.update(1)
    ordered = [outcomes[spec.area_id] for spec in specs]
    table, files = _write_batch_outputs(cfg.out, ordered)
    result = BatchResult(
        out=cfg.out,
        outcomes=ordered,
        summary=table,
        files=files,
        elapsed_s=round(time.perf_counter() - start, 2),
    )
    stale = [o.area_id for o in ordered if "pass --retry-failed" in (o.error or "")]
    if stale:
        result.notes.append(
            f"{len(stale)} area(s) failed in an earlier run and were not run again "
            f"({', '.join(stale)}); pass --retry-failed to run them"
        )
    if result.failed:
        logger.warning("%d area(s) failed: %s", len(result.failed), ", ".join(result.failed))
    return result


def _plan(
    cfg: BatchConfig, specs: Sequence[AreaSpec], retry_failed: bool
) -> tuple[dict[str, AreaOutcome], list[AreaSpec]]:
    """Outcomes known without running (earlier runs, missing files) and the areas to run."""
    outcomes: dict[str, AreaOutcome] = {}
    to_run: list[AreaSpec] = []
    for spec, draft in zip(specs, cfg.areas, strict=True):
        earlier = _previous(spec, retry_failed)
        missing = None if earlier is not None else _missing_file_error(cfg, draft)
        if earlier is not None:
            outcomes[spec.area_id] = earlier
        elif missing:
            outcomes[spec.area_id] = _failed_before_running(spec, missing)
        else:
            to_run.append(spec)
    return outcomes, to_run


def _with_sources(spec: AreaSpec, sources: dict[str, Any]) -> AreaSpec:
    assert spec.clip is not None
    clip = replace(
        spec.clip,
        network=sources["network"],
        facilities=sources["facilities"],
        communities=sources["communities"],
        gates=sources["gates"],
    )
    # the hash was taken from the stand-ins and stays as it is
    return replace(spec, clip=clip)
