"""Writing study results: tables for Excel, layers for QGIS, a JSON summary.

Every file is written to a temporary name in the output folder and then moved
into place, so a crash never leaves a half-written file, and the output
folder may not hold any input file (inputs are never overwritten).

Files written by :func:`write_outputs`:

* ``communities.csv`` - one row per compound, UTF-8 with BOM so Excel shows
  Chinese correctly, with ``lon``/``lat`` of the compound's inside point;
* ``communities.gpkg`` - the same with geometries (layer ``communities``),
  and the gates (layer ``gates``) when given;
* ``isochrones.gpkg`` - 5/10/15-minute polygons per compound;
* ``gaps.gpkg`` - layers ``gaps`` (dissolved blind zones), ``cells`` and
  ``boundary`` (the study area);
* ``facilities.csv`` - facilities with their type and snap status;
* ``summary.json`` - parameters, inputs, coverage, the standard and its
  provenance, warnings, attribution;
* ``results.xlsx`` - sheets ``communities``, ``summary``, ``missing``,
  ``provenance``, ``facilities`` and ``rejects``, then ``dictionary`` (说明):
  every column in Chinese and English with its id and unit. With
  ``lang="zh"`` sheet names, headers and words are Chinese. Numbers are
  rounded for reading and codes (``ASSUMPTION``, source keys) are words;
* ``communities_zh.csv`` - with ``lang="zh"``, the compounds for people:
  Chinese headers, rounded numbers, words. ``communities.csv`` and
  ``facilities.csv`` keep the English column ids and codes for programs;
* ``context.gpkg`` - map context: ``streets`` (by class) and ``water``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from .columns import per_distinct
from .config import read_yaml_text
from .errors import InputError

if TYPE_CHECKING:
    from .study import Study

logger = logging.getLogger(__name__)

__all__ = [
    "OUTPUT_NAMES",
    "atomic_path",
    "check_output_dir",
    "flatten_summary",
    "gpkg_ready",
    "refuse_to_overwrite",
    "write_outputs",
]


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it into place on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # some writers refuse to overwrite an existing (empty) file
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


OUTPUT_NAMES = (
    "communities.csv",
    "communities.gpkg",
    "isochrones.gpkg",
    "gaps.gpkg",
    "facilities.csv",
    "summary.json",
    "results.xlsx",
    "map.html",
    "report.html",
    "report.pdf",
    "communities_zh.csv",
    "context.gpkg",
    "whatif.json",
)


def refuse_to_overwrite(targets: Iterable[Path], inputs: Iterable[str | Path]) -> None:
    """Raise :class:`InputError` when writing ``targets`` would replace an input file.

    ``inputs`` may hold ``;``-joined lists of paths, as ``Study.inputs`` does.
    """
    resolved = {Path(t).resolve() for t in targets}
    for item in inputs:
        for part in str(item).split(";"):
            if part and Path(part).resolve() in resolved:
                raise InputError(
                    f"writing results would overwrite the input file {part}; "
                    "choose another output folder"
                )


def check_output_dir(out_dir: Path, inputs: Iterable[str | Path]) -> None:
    """Refuse an output folder where a result file would replace an input file."""
    refuse_to_overwrite((out_dir / name for name in OUTPUT_NAMES), inputs)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def write_json(data: dict[str, Any], target: Path) -> None:
    """Write ``data`` as pretty UTF-8 JSON, atomically (NaN becomes null)."""
    with atomic_path(target) as tmp:
        tmp.write_text(
            json.dumps(_nan_to_none(data), ensure_ascii=False, indent=2, default=_json_default),
            encoding="utf-8",
        )


def _table(gdf: gpd.GeoDataFrame) -> pd.DataFrame:
    """A GeoDataFrame as a plain table with lon/lat of an inside point."""
    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    if len(gdf):
        points = gdf.geometry.to_crs(4326).representative_point()
        frame["lon"] = points.x.round(7).to_numpy()
        frame["lat"] = points.y.round(7).to_numpy()
    return frame


def gpkg_ready(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """GeoPackage takes no list or object columns of mixed types; stringify them."""
    out = gdf.copy()
    for column in out.columns:
        if column == out.geometry.name:
            continue
        if out[column].dtype == object:
            out[column] = out[column].map(lambda v: None if v is None else str(v))
    return out


def write_table(frame: pd.DataFrame, target: Path) -> None:
    """CSV for Excel: UTF-8 with BOM."""
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8-sig")


def write_layers(layers: dict[str, gpd.GeoDataFrame], target: Path) -> None:
    """One GeoPackage with several layers."""
    with atomic_path(target) as tmp:
        for name, gdf in layers.items():
            # through Arrow: the same file, two to three times faster for a city's layers
            gpkg_ready(gdf).to_file(tmp, layer=name, driver="GPKG", use_arrow=True)


def flatten_summary(summary: dict[str, Any]) -> pd.DataFrame:
    """Coverage rows of a summary, for the Excel sheet and the report."""
    rows = []
    coverage = summary["results"]["coverage"]
    for level in ("tiers", "categories", "types"):
        for item, values in coverage[level].items():
            rows.append(
                {
                    "level": level[:-1] if level != "categories" else "category",
                    "item": item,
                    **values,
                }
            )
    return pd.DataFrame(rows)


# ------------------------------------------------------------ reader tables
_COLUMNS_FILE = "columns.yaml"
# Excel keeps at most 32,767 characters in a cell.
MAX_CELL_CHARS = 32_000
_CONTROL_CHARS = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
_DECIMALS = {"m": 0, "min": 1, "persons": 0, "share": 4, "score": 1}
_DERIVED_SUFFIXES = ("_supply_per_1000", "_supply_ratio", "_ok", "_min", "_m", "_n")
_WORD_COLUMNS = ("status", "walk_speed_status")
_VALUE_COLUMNS = ("origin", "kind", "level", "route_status", "snap_status")


@functools.cache
def column_vocabulary() -> dict[str, Any]:
    """The packaged column dictionary and words (``data/columns.yaml``)."""
    text = (resources.files("lifecircle") / "data" / _COLUMNS_FILE).read_text(encoding="utf-8")
    return dict(read_yaml_text(text, source=_COLUMNS_FILE))


def status_word(code: Any, lang: str) -> str:
    """A threshold status in words (``ASSUMPTION`` -> ``假设`` / ``assumption``).

    Examples
    --------
    >>> status_word("ASSUMPTION", "zh"), status_word("UNCONFIRMED", "en")
    ('假设', 'unconfirmed')
    """
    entry = column_vocabulary()["statuses"].get(str(code))
    return str(entry[lang]) if entry else str(code)


def source_word(key: Any, lang: str) -> str:
    """A source key of a standard in words (``S_PUXIESHI_PLAN`` -> its short name).

    Examples
    --------
    >>> source_word("S_TOOLKIT", "zh")
    '本工具的设定（非标准规定）'
    """
    entry = column_vocabulary()["sources"].get(str(key))
    return str(entry[lang]) if entry else str(key)


class Vocabulary:
    """Headers, words and units of the result tables in one language.

    Parameters
    ----------
    lang
        ``"zh"`` or ``"en"``.
    standard
        The standard as a dict (``summary["provenance"]``), whose items and
        tiers name the derived columns (``education_ok`` -> ``教育·满足``).
    """

    def __init__(self, lang: str, standard: dict[str, Any] | None = None) -> None:
        from .maps import Labels, ui_text

        ui_text(lang)  # validates lang
        self.lang = lang
        self.data = column_vocabulary()
        self.labels = Labels(standard or {}, lang)
        self.other = Labels(standard or {}, "en" if lang == "zh" else "zh")
        self.tiers = {str(t["id"]) for t in (standard or {}).get("tiers") or []}

    def _entry(self, column: str) -> tuple[dict[str, Any], dict[str, str]] | None:
        """The dictionary entry of a column and the names to put into it."""
        exact = self.data["columns"].get(column)
        if exact is not None:
            return exact, {}
        if column.startswith("tier_") and column.endswith("_pass"):
            tier = column[5:-5]
            names = {"tier": self.labels.tier(tier), "tier_other": self.other.tier(tier)}
            return self.data["patterns"]["tier_{tier}_pass"], names
        for suffix in _DERIVED_SUFFIXES:
            if column.endswith(suffix) and len(column) > len(suffix):
                item = column[: -len(suffix)]
                names = {"item": self.labels.item(item), "item_other": self.other.item(item)}
                return self.data["patterns"]["{item}" + suffix], names
        return None

    def header(self, column: str, lang: str | None = None) -> str:
        """The header of a column in ``lang`` (default: this vocabulary's language)."""
        lang = lang or self.lang
        found = self._entry(column)
        if found is None:
            return column
        entry, names = found
        if lang != self.lang:
            names = {k: v for k, v in names.items() if k.endswith("_other")}
            names = {k[: -len("_other")]: v for k, v in names.items()}
        return str(entry[lang]).format(**names)

    def unit(self, column: str) -> str | None:
        """The unit of a column (``m``, ``min``, ``persons``, ``share``, ``score``) or None."""
        found = self._entry(column)
        return None if found is None else found[0].get("unit")

    def sheet(self, sheet_id: str) -> str:
        """The sheet name of a sheet id."""
        entry = self.data["sheets"].get(sheet_id)
        return str(entry[self.lang]) if entry else sheet_id

    def word(self, column: str, value: Any) -> Any:
        """A code of a column in words; other values unchanged."""
        if not isinstance(value, str | bool | np.bool_):
            return value
        if column in _WORD_COLUMNS:
            return status_word(value, self.lang)
        if column == "source":
            return source_word(value, self.lang)
        if column == "item":
            text = str(value)
            return self.labels.tier(text) if text in self.tiers else self.labels.item(text)
        if column == "tier":
            return self.labels.tier(str(value))
        if column == "type":
            return self.labels.type(str(value))
        if column == "missing":
            names = [self.labels.item(v) for v in str(value).split(";") if v]
            return ("、" if self.lang == "zh" else ", ").join(names)
        if column == "category":
            return self.labels.category(str(value))
        if isinstance(value, bool | np.bool_):
            value = "true" if value else "false"
        entry = self.data["values"].get(value)
        return str(entry[self.lang]) if entry else value

    def dictionary(self, described: Sequence[tuple[str, str]]) -> pd.DataFrame:
        """The 说明 / dictionary sheet: one row per (sheet, column)."""
        heads = self.data["dictionary_headers"]
        units = self.data["units"]
        rows = []
        for sheet, column in described:
            found = self._entry(column)
            entry, names = found if found is not None else ({}, {})
            unit = entry.get("unit")
            own = names.get("item") or names.get("tier") or ""
            other = names.get("item_other") or names.get("tier_other") or ""
            name = {self.lang: own, ("en" if self.lang == "zh" else "zh"): other}
            rows.append(
                {
                    heads["sheet"][self.lang]: sheet,
                    heads["column_zh"][self.lang]: self.header(column, "zh"),
                    heads["column_en"][self.lang]: column,
                    heads["unit"][self.lang]: units[unit][self.lang] if unit else "",
                    heads["what_zh"][self.lang]: _described(entry, "what_zh", name["zh"]),
                    heads["what_en"][self.lang]: _described(entry, "what_en", name["en"]),
                }
            )
        return pd.DataFrame(rows)


def _described(entry: dict[str, Any], key: str, name: str) -> str:
    text = str(entry.get(key, ""))
    if not name or not text:
        return text
    return f"{name}：{text}" if key == "what_zh" else f"{name}: {text}"


def clean_text(values: pd.Series) -> pd.Series:
    """Strings without control characters (NUL breaks Excel), cut to :data:`MAX_CELL_CHARS`.

    Examples
    --------
    >>> clean_text(pd.Series(["a\\x00b", "x" * 32_010])).str.len().tolist()
    [2, 32025]
    """
    text = values.astype("string").str.replace(_CONTROL_CHARS, "", regex=True)
    long = text.str.len() > MAX_CELL_CHARS
    if long.any():
        cut = text[long].str.slice(0, MAX_CELL_CHARS)
        lengths = text[long].str.len()
        text[long] = cut + " …[cut: " + lengths.astype(str) + " characters]"
    return text.astype(object).where(values.notna(), None)


def round_for_reading(frame: pd.DataFrame, vocabulary: Vocabulary) -> pd.DataFrame:
    """Numbers rounded by unit: metres to 1 m, minutes to 0.1, residents to whole people.

    Other floats lose their float noise (four decimals are kept).
    """
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if not pd.api.types.is_float_dtype(series):
            continue
        unit = vocabulary.unit(str(column))
        if column in ("lon", "lat"):
            out[column] = series.round(7)
        elif unit in _DECIMALS:
            decimals = _DECIMALS[unit]
            rounded = series.round(decimals)
            whole = decimals == 0 and series.isna().sum() == 0
            out[column] = rounded.astype("int64") if whole else rounded
        else:
            out[column] = series.round(4)
    return out


def _is_text(series: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)


def reader_table(frame: pd.DataFrame, vocabulary: Vocabulary) -> pd.DataFrame:
    """A table for people: cleaned text, rounded numbers, codes in words, headers in the
    vocabulary's language."""
    out = round_for_reading(frame, vocabulary)
    for column in out.columns:
        if _is_text(out[column]) or pd.api.types.is_bool_dtype(out[column]):
            # each distinct value is put into words (and cleaned) once, not once per row
            values = out[column].dropna().unique()
            words = pd.Series([vocabulary.word(str(column), v) for v in values])
            if not _is_text(words):
                out[column] = out[column].map(dict(zip(values, words, strict=True)))
                continue
            mapped = out[column].map(dict(zip(values, clean_text(words), strict=True)))
            out[column] = mapped.astype(object).where(mapped.notna(), None)
    out.columns = [vocabulary.header(str(c)) for c in out.columns]
    return out


def machine_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A table for programs: ids and codes kept, float noise removed, text cleaned."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_float_dtype(series):
            out[column] = series.round(7 if column in ("lon", "lat") else 4)
        elif _is_text(series):
            out[column] = clean_text(series)
    return out


def write_excel(
    sheets: dict[str, pd.DataFrame],
    target: Path,
    *,
    lang: str = "en",
    standard: dict[str, Any] | None = None,
    dictionary: bool = True,
) -> None:
    """An .xlsx workbook, one sheet per frame.

    Every sheet has a frozen, filtered header row and column widths that fit.
    Numbers are rounded for reading (metres to 1 m, minutes to 0.1, residents
    to whole people), status codes and source keys are shown as words, and
    with ``dictionary`` a last sheet (说明 / dictionary) explains every column
    in Chinese and English, with its machine-stable id.

    Parameters
    ----------
    sheets
        Frames by sheet id; known ids get a sheet name in ``lang``.
    target
        The workbook to write (atomically).
    lang
        ``"zh"`` for Chinese headers and words, ``"en"`` for English.
    standard
        The standard as a dict (``summary["provenance"]``), to name the items
        and tiers of derived columns.
    """
    import rustpy_xlsxwriter as rx

    vocabulary = Vocabulary(lang, standard)
    header = rx.Format().set_bold().set_background_color("#eceff1").set_text_wrap()
    percent = rx.Format().set_num_format("0.0%")
    entries: list[tuple[str, pd.DataFrame]] = []
    widths: dict[str, dict[str, float] | list[float]] = {}
    formats: dict[str, dict[str, Any]] = {}
    described: list[tuple[str, str]] = []
    for sheet_id, frame in sheets.items():
        name = vocabulary.sheet(sheet_id)[:31]
        table = reader_table(frame, vocabulary)
        units = [vocabulary.unit(str(c)) for c in frame.columns]
        formats[name] = {
            str(c): percent for c, unit in zip(table.columns, units, strict=True) if unit == "share"
        }
        entries.append((name, _cells(table)))
        widths[name] = _column_widths(table)
        described += [(name, str(c)) for c in frame.columns]
    if dictionary:
        name = vocabulary.sheet("dictionary")[:31]
        table = vocabulary.dictionary(described)
        entries.append((name, _cells(table)))
        widths[name] = _column_widths(table)
    with atomic_path(target) as tmp:
        # the writer is compiled (Rust): a city's three million cells take
        # seconds, where a Python writer takes minutes
        rx.write_worksheets(
            entries,
            str(tmp),
            freeze_panes={"general": {"row": 1, "col": 0}},
            autofilter={"general": True},
            column_widths=widths,
            column_formats={name: f for name, f in formats.items() if f},
            header_format={"general": header},
        )


def _cells(table: pd.DataFrame) -> pd.DataFrame:
    """Cell values: Python objects, missing values as ``None`` (an empty cell)."""
    cells = table.astype(object).where(table.notna(), None)
    cells.columns = _unique_headers([str(c) for c in table.columns])
    return cells


def _unique_headers(headers: list[str]) -> list[str]:
    """Headers made unique (``名称``, ``名称 (2)``): the writer keys columns by header."""
    seen: dict[str, int] = {}
    unique = []
    for header in headers:
        seen[header] = seen.get(header, 0) + 1
        unique.append(header if seen[header] == 1 else f"{header} ({seen[header]})")
    return unique


def _display_width(text: str) -> int:
    """Width in Excel characters: CJK and full-width characters count twice."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _column_widths(table: pd.DataFrame, sample: int = 500) -> list[float]:
    """Widths that fit the header and the first rows, between 6 and 50 characters."""
    widths = []
    head = table.head(sample)
    for column in table.columns:
        cells = head[column].dropna().astype(str)
        longest = max((_display_width(v) for v in cells), default=0)
        # headers wrap onto two lines, so they need only half their width
        header = _display_width(str(column)) / 2 + 2
        widths.append(float(min(50, max(6, longest + 2, header))))
    return widths


def write_outputs(
    study: Study,
    out_dir: str | Path,
    *,
    isochrones: gpd.GeoDataFrame | None = None,
    cells: gpd.GeoDataFrame | None = None,
    gaps: gpd.GeoDataFrame | None = None,
    extra_summary: dict[str, Any] | None = None,
    lang: str = "en",
    water: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    extra_sheets: dict[str, pd.DataFrame] | None = None,
) -> list[Path]:
    """Write every result file of a study into ``out_dir``.

    Parameters
    ----------
    extra_sheets
        More sheets for ``results.xlsx`` (the one-map per 社区, ...), by id.
    lang
        Language of ``results.xlsx`` (headers, sheet names, words). With
        ``"zh"`` a ``communities_zh.csv`` with Chinese headers is written too;
        ``communities.csv`` and ``facilities.csv`` always keep the English
        column ids and codes, for programs.
    water
        Water polygons drawn as map context (else ``study.water`` when set).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    out = Path(out_dir)
    check_output_dir(out, study.inputs.values())
    out.mkdir(parents=True, exist_ok=True)
    scores = study.score()
    summary = study.summary()
    written: list[Path] = []

    table = _table(scores)
    write_table(machine_table(table), out / "communities.csv")
    layers = {"communities": scores}
    if study.gates is not None and len(study.gates):
        gate_columns = [c for c in ("gate_id", "community_id") if c in study.gates]
        layers["gates"] = study.gates[[*gate_columns, study.gates.geometry.name]].to_crs(4326)
    write_layers(layers, out / "communities.gpkg")
    written += [out / "communities.csv", out / "communities.gpkg"]
    if lang != "en":
        vocabulary = Vocabulary(lang, summary.get("provenance"))
        write_table(reader_table(table, vocabulary), out / f"communities_{lang}.csv")
        written.append(out / f"communities_{lang}.csv")
    if isochrones is not None:
        write_layers({"isochrones": isochrones}, out / "isochrones.gpkg")
        written.append(out / "isochrones.gpkg")
    if gaps is not None and cells is not None:
        write_layers(
            {"gaps": gaps, "cells": cells, "boundary": study.area_frame()}, out / "gaps.gpkg"
        )
        written.append(out / "gaps.gpkg")
        summary["gaps"] = _gap_summary(gaps, cells)
    context = context_layers(study, water if water is not None else getattr(study, "water", None))
    if context:
        write_layers(context, out / CONTEXT_FILE)
        written.append(out / CONTEXT_FILE)
    summary.update(extra_summary or {})
    facilities = study.facility_snaps()
    write_table(machine_table(facilities), out / "facilities.csv")
    written.append(out / "facilities.csv")
    write_json(summary, out / "summary.json")
    written.append(out / "summary.json")
    rejects = (
        pd.concat([r.rejects for r in study.load_reports], ignore_index=True)
        if (study.load_reports)
        else pd.DataFrame(columns=["file", "row", "column", "reason", "value"])
    )
    write_excel(
        {
            "communities": table,
            "summary": flatten_summary(summary),
            "missing": study.missing(),
            "provenance": study.standard.provenance(),
            "facilities": facilities,
            "rejects": rejects,
            **(extra_sheets or {}),
        },
        out / "results.xlsx",
        lang=lang,
        standard=summary.get("provenance"),
    )
    written.append(out / "results.xlsx")
    logger.info("wrote %d files to %s", len(written), out)
    return written


# ---------------------------------------------------------------- map context
CONTEXT_FILE = "context.gpkg"
# Street classes drawn as map context when no basemap tiles load.
STREET_CLASSES: dict[str, tuple[str, ...]] = {
    "major": (
        "motorway",
        "trunk",
        "primary",
        "secondary",
        "motorway_link",
        "trunk_link",
        "primary_link",
        "secondary_link",
    ),
    "minor": (
        "tertiary",
        "tertiary_link",
        "residential",
        "unclassified",
        "living_street",
        "service",
        "road",
    ),
}


def street_class(highway: pd.Series) -> pd.Series:
    """``major``, ``minor`` or ``path`` (footways, steps, alleys and anything else).

    Examples
    --------
    >>> street_class(pd.Series(["primary", "residential", "footway", None])).tolist()
    ['major', 'minor', 'path', 'path']
    """
    return pd.Series(per_distinct(highway, _street_class_of), index=highway.index, dtype=object)


def _street_class_of(highway: Any) -> str:
    text = "" if highway is None else str(highway).split(";")[0].strip()
    return next((name for name, values in STREET_CLASSES.items() if text in values), "path")


def context_layers(
    study: Study, water: gpd.GeoDataFrame | gpd.GeoSeries | None = None
) -> dict[str, gpd.GeoDataFrame]:
    """Streets by class (one line per street of the network) and water, in WGS84."""
    layers: dict[str, gpd.GeoDataFrame] = {}
    network = getattr(study, "network", None)
    if network is not None and network.n_segments:
        ways_used, geoms = _way_lines(network.seg_way, network.segment_geometries)
        ways = network.ways.iloc[ways_used]
        highway = ways["highway"] if "highway" in ways else pd.Series(None, index=ways.index)
        layers["streets"] = gpd.GeoDataFrame(
            {"class": street_class(highway).to_numpy()},
            geometry=geoms,
            crs=network.crs,
        ).to_crs(4326)
    if water is not None and len(water):
        series = water.geometry if isinstance(water, gpd.GeoDataFrame) else water
        polygons = series[series.geom_type.isin(["Polygon", "MultiPolygon"])]
        if len(polygons):
            layers["water"] = gpd.GeoDataFrame(geometry=polygons.to_crs(4326).to_numpy(), crs=4326)
    return layers


def _way_lines(
    seg_way: NDArray[np.int64], segments: NDArray[np.object_]
) -> tuple[NDArray[np.int64], NDArray[np.object_]]:
    """The ways that have segments, and each one's line: its segments merged, or its
    one segment as it is (most ways of a graph export are one segment long)."""
    order = np.argsort(seg_way, kind="stable")
    used, dense, counts = np.unique(seg_way[order], return_inverse=True, return_counts=True)
    ordered = segments[order]
    lines = np.empty(used.size, dtype=object)
    single = counts == 1
    lines[single] = ordered[(np.cumsum(counts) - counts)[single]]
    several = np.flatnonzero(~single)
    if several.size:
        mine = np.isin(dense, several)
        parts = shapely.multilinestrings(
            ordered[mine], indices=np.searchsorted(several, dense[mine])
        )
        lines[several] = shapely.line_merge(parts)
    return used, lines


def _gap_summary(gaps: gpd.GeoDataFrame, cells: gpd.GeoDataFrame) -> dict[str, Any]:
    by_item = gaps.groupby("item")["population"].sum().round(1).to_dict() if len(gaps) else {}
    unrouted = cells["snap_status"] != "ok"
    return {
        "polygons": len(gaps),
        "cells": len(cells),
        "cells_not_routed": int(unrouted.sum()),
        "population_in_cells_not_routed": round(float(cells.loc[unrouted, "population"].sum()), 1),
        "population_by_item": by_item,
        "largest": gaps.drop(columns="geometry").head(10).to_dict(orient="records"),
    }
