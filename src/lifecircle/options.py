"""Every option of a study and of a run, in one place.

:class:`Options` holds each option with its default, its unit and its help
text. The command line builds its flags from these fields, and
:class:`~lifecircle.study.Study`, the pipeline, batch configurations,
scenarios and siting all take the same object, so an option means the same
thing everywhere. :class:`Inputs` holds the input files of a study.

This module imports nothing heavy, so that ``lifecircle --help`` is quick.

>>> from lifecircle.options import Options
>>> opts = Options(walk_speed=60, minutes=(5, 10))
>>> opts.walk_speed, opts.minutes, opts.cell_m
(60.0, (5.0, 10.0), 100.0)
>>> Options.describe("max_snap_m")
'Points farther than this from a walkable street are not routed [m]'
>>> Options(grid="hex")
Traceback (most recent call last):
...
lifecircle.errors.InputError: grid must be one of square, h3; got 'hex'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = ["CRS_CHOICES", "Inputs", "OptionSpec", "Options"]

CRS_CHOICES = "wgs84, gcj02, bd09, EPSG:n or auto"
DEFAULT_STANDARD = "gb50180-2018"
DEMO_STANDARD = "puxieshi-2021"


@dataclass(frozen=True)
class OptionSpec:
    """How one option is shown: command-line flag, unit, help and choices."""

    name: str
    flag: str
    unit: str
    help: str
    group: str
    choices: tuple[str, ...] = ()


def _opt(
    default: Any,
    help: str,
    *,
    group: str,
    unit: str = "",
    flag: str | None = None,
    choices: Sequence[str] = (),
) -> Any:
    metadata = {"help": help, "unit": unit, "group": group, "flag": flag, "choices": tuple(choices)}
    if isinstance(default, list | tuple):
        return field(default=tuple(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Options:
    """The options of a study and of a run (see the module notes).

    Groups: ``crs`` (coordinate systems of the input layers), ``study`` (what
    is measured and how it is judged), ``run`` (what a run computes), and
    ``render`` (maps and report). Every value is checked on construction;
    a bad one raises :class:`~lifecircle.errors.InputError` naming it.
    """

    # -- coordinate systems
    crs: str = _opt(
        "wgs84",
        f"Coordinates of the input tables: {CRS_CHOICES} (auto: the reading that fits the streets)",
        group="crs",
    )
    facilities_crs: str | None = _opt(None, "Override --crs for facilities", group="crs")
    communities_crs: str | None = _opt(None, "Override --crs for compounds", group="crs")
    gates_crs: str | None = _opt(None, "Override --crs for gates", group="crs")
    candidates_crs: str | None = _opt(None, "Override --crs for siting candidates", group="crs")
    # -- reading the input tables
    sheet: str | None = _opt(
        None, "Excel sheet to read (name or 1-based number; default: the first)", group="read"
    )
    header_row: str | None = _opt(
        None,
        "Header row(s) of the input tables, 1-based, e.g. 3 or 2,3 for a two-row header "
        "(default: found automatically)",
        group="read",
    )
    layer: str | None = _opt(
        None, "Layer of a multi-layer GIS file such as a GeoPackage", group="read"
    )
    # -- the study
    standard: str = _opt(DEFAULT_STANDARD, "Standard profile: id or YAML path", group="study")
    walk_speed: float | None = _opt(
        None, "Walking speed (default: the standard's)", group="study", unit="m/min"
    )
    threshold_rule: str | None = _opt(
        None,
        "Which figure of a threshold rules when a standard gives both (default: the standard's)",
        group="study",
        choices=("metres", "minutes"),
    )
    max_snap_m: float = _opt(
        250.0,
        "Points farther than this from a walkable street are not routed",
        group="study",
        unit="m",
        flag="max-snap",
    )
    score_basis: str = _opt(
        "all",
        "Which score drives tiers and maps: all items, or only the items the data hold "
        "facilities for",
        group="study",
        choices=("all", "with_data"),
    )
    district_column: str | None = _opt(
        None,
        "Column of the compounds naming their 社区, when no --districts polygons are given",
        group="study",
    )
    max_reject_share: float = _opt(
        0.5,
        "A layer that loses more than this share of its rows is an error",
        group="study",
        unit="share",
    )
    # -- what a run computes
    minutes: tuple[float, ...] = _opt(
        (5.0, 10.0, 15.0), "Isochrone bands, comma-separated", group="run", unit="min"
    )
    cell_m: float = _opt(100.0, "Gap grid cell size (50-200)", group="run", unit="m", flag="cell")
    grid: str = _opt("square", "Gap grid shape", group="run", choices=("square", "h3"))
    isochrones: bool = _opt(True, "Compute isochrones", group="run")
    robustness: bool = _opt(
        True, "Label gaps robust or fragile across walking speeds and snap limits", group="run"
    )
    # -- maps and report
    basemap: str = _opt(
        "osm",
        "Map basemap (amap shifts overlays to GCJ-02)",
        group="render",
        choices=("osm", "light", "amap", "tianditu", "none"),
    )
    lang: str = _opt(
        "zh", "Language of maps, report and tables", group="render", choices=("zh", "en")
    )
    cdn: bool = _opt(
        False,
        "Load Leaflet from a CDN instead of inlining it (smaller HTML, needs the internet)",
        group="render",
    )
    maps: bool = _opt(True, "Write map.html and report.html", group="render")
    title: str | None = _opt(None, "Study title for the map and report", group="render")
    place: str | None = _opt(None, "Place name for the map and report", group="render")
    # -- feedback
    progress: bool = _opt(True, "Show progress bars on long steps", group="feedback")

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            object.__setattr__(self, spec.name, _checked(spec.name, value, spec.metadata))
        if self.walk_speed is not None and not self.walk_speed > 0:
            raise InputError(
                f"walk_speed must be a positive number of m/min, got {self.walk_speed}"
            )
        if not self.max_snap_m > 0:
            raise InputError(
                f"max_snap_m must be a positive number of metres, got {self.max_snap_m}"
            )
        if not 10 <= self.cell_m <= 1000:
            raise InputError(f"cell_m must be between 10 and 1000 metres, got {self.cell_m}")
        if not self.minutes or min(self.minutes) <= 0:
            raise InputError("minutes must be positive numbers")
        if self.header_row is not None:
            rows = _as_list("header_row", self.header_row)
            if any(not str(r).strip().isdigit() or int(str(r).strip()) < 1 for r in rows):
                raise InputError(f"header_row takes row numbers from 1, got {self.header_row!r}")
        if not 0 < self.max_reject_share <= 1:
            raise InputError(f"max_reject_share must be in (0, 1], got {self.max_reject_share}")
        for name in ("crs", "facilities_crs", "communities_crs", "gates_crs", "candidates_crs"):
            _check_crs(name, getattr(self, name))

    # ------------------------------------------------------------ helpers
    def replace(self, **changes: Any) -> Options:
        """A copy with some options changed (``None`` values are ignored)."""
        unknown = set(changes) - self.names()
        if unknown:
            raise InputError(f"unknown option(s): {', '.join(sorted(unknown))}")
        kept = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **kept)

    def header_rows(self) -> int | list[int] | None:
        """``header_row`` as the loaders take it (1-based)."""
        if self.header_row is None:
            return None
        rows = [int(_number("header_row", v)) for v in _as_list("header_row", self.header_row)]
        return rows[0] if len(rows) == 1 else rows

    def sheet_value(self) -> str | int | None:
        """``sheet`` as the loaders take it: a 1-based number or a name."""
        if self.sheet is None:
            return None
        return int(self.sheet) if self.sheet.isdigit() else self.sheet

    def layer_crs(self, layer: str) -> str:
        """The coordinate system declared for ``layer`` (its own, or ``crs``)."""
        own = getattr(self, f"{layer}_crs", None)
        return str(own or self.crs)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists for tuples), for ``summary.json``."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in fields(self)
        }

    @classmethod
    def names(cls) -> set[str]:
        """The option names."""
        return {f.name for f in fields(cls)}

    @classmethod
    def specs(cls, groups: Iterable[str] | None = None) -> list[OptionSpec]:
        """How each option (of the given groups) is shown on the command line."""
        wanted = set(groups) if groups is not None else None
        out = []
        for f in fields(cls):
            meta = f.metadata
            if wanted is not None and meta["group"] not in wanted:
                continue
            flag = meta["flag"] or f.name.replace("_", "-")
            out.append(
                OptionSpec(f.name, flag, meta["unit"], meta["help"], meta["group"], meta["choices"])
            )
        return out

    @classmethod
    def default(cls, name: str) -> Any:
        """The default value of option ``name``."""
        return {f.name: f.default for f in fields(cls)}[name]

    @classmethod
    def describe(cls, name: str) -> str:
        """Help text of option ``name`` with its unit."""
        spec = next(s for s in cls.specs() if s.name == name)
        return f"{spec.help} [{spec.unit}]" if spec.unit else spec.help

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, where: str = "options") -> Options:
        """Options from a configuration mapping (batch files); unknown keys refused."""
        unknown = sorted(set(values) - cls.names())
        if unknown:
            raise InputError(
                f"{where}: unknown option(s) {', '.join(unknown)}; known: "
                + ", ".join(sorted(cls.names()))
            )
        return cls(**dict(values))


def _checked(name: str, value: Any, meta: Mapping[str, Any]) -> Any:
    """Coerce a value to the option's type, or raise naming the option."""
    default = Options.__dataclass_fields__[name].default
    if value is None:
        return None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InputError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, tuple):
        return tuple(_number(name, v) for v in _as_list(name, value))
    if isinstance(default, float) or name == "walk_speed":
        return _number(name, value)
    text = str(value).strip()
    choices = meta.get("choices") or ()
    if choices and text not in choices:
        raise InputError(f"{name} must be one of {', '.join(choices)}; got {text!r}")
    return text


def _as_list(name: str, value: Any) -> list[Any]:
    if isinstance(value, str):
        parts = [p for p in value.replace("，", ",").split(",") if p.strip()]
        if not parts:
            raise InputError(f"{name} takes numbers separated by commas, got {value!r}")
        return parts
    if isinstance(value, int | float):
        return [value]
    return list(value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise InputError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    return number


def _check_crs(name: str, value: str | None) -> None:
    if value is None or value.lower() in ("auto", "wgs84", "gcj02", "bd09"):
        return  # the common names need no import of the coordinate module
    from .coords import parse_crs

    try:
        parse_crs(value)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from None


_OPTIONAL_INPUTS = (
    "network",
    "communities",
    "gates",
    "boundary",
    "capacity",
    "districts",
    "taxonomy_overrides",
)


@dataclass(frozen=True)
class Inputs:
    """The input files of a study (paths; only the first three are required)."""

    network: Path
    facilities: tuple[Path, ...]
    communities: Path
    gates: Path | None = None
    boundary: Path | None = None
    capacity: Path | None = None
    districts: Path | None = None
    taxonomy_overrides: Path | None = None

    def __post_init__(self) -> None:
        facilities = self.facilities
        if isinstance(facilities, str | Path):
            facilities = (facilities,)
        object.__setattr__(self, "facilities", tuple(Path(p) for p in facilities))
        for name in _OPTIONAL_INPUTS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))

    def paths(self) -> list[Path]:
        """Every input path given."""
        out = [self.network, *self.facilities, self.communities]
        out += [getattr(self, n) for n in _OPTIONAL_INPUTS[2:] if getattr(self, n)]
        return out

    def check(self) -> None:
        """Refuse missing, empty or unreadable files before any work starts."""
        for name, path in self.named():
            if path.is_dir() and name == "network" and path.suffix == "":
                raise InputError(f"--{name} is a folder, not a file", file=path)
            if not path.exists():
                raise InputError(f"--{name}: no such file", file=path)
            if path.is_file() and path.stat().st_size == 0:
                raise InputError(f"--{name}: the file is empty", file=path)

    def named(self) -> list[tuple[str, Path]]:
        """(option name, path) for every input given."""
        out = [("network", self.network)]
        out += [("facilities", p) for p in self.facilities]
        out.append(("communities", self.communities))
        for name in _OPTIONAL_INPUTS[2:]:
            value = getattr(self, name)
            if value is not None:
                out.append((name, value))
        return out
