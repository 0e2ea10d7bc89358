"""Load facilities, residential compounds and compound gates as planners have them.

Supported inputs, chosen by file suffix:

* text tables ``.csv``, ``.tsv``, ``.txt`` in UTF-8 (with or without BOM),
  GBK/GB18030 or UTF-16 (Excel's "Unicode text"); the delimiter is guessed
  from the header line;
* Excel ``.xlsx``/``.xlsm`` (``sheet=`` picks a sheet, by name or 0-based index).
  In text and Excel tables, title rows above the header (rows filling at most
  one cell, such as "附表1：设施一览表") are skipped and row numbers still
  count from the top of the sheet;
* GeoJSON (``.geojson``, ``.json``), GeoPackage (``.gpkg``, ``layer=``),
  Shapefile (``.shp``; a DBF without ``.cpg`` is read as UTF-8, else as
  GBK/GB18030) and GeoParquet (``.parquet``; a plain Parquet table with
  coordinate columns works too);
* OpenStreetMap ``.osm``, ``.osm.bz2``, ``.osm.gz`` and ``.osm.pbf``
  (see :mod:`lifecircle.osm`).

Coordinates
-----------
Tables need coordinate columns: ``lon``/``lat``, ``lng``/``lat``,
``longitude``/``latitude``, ``x``/``y``, ``经度``/``纬度``, ``东经``/``北纬``,
or Amap's single ``location`` column holding ``"lng,lat"``. Matching is
case-insensitive and accepts prefixed or suffixed names such as
``wgs84_lng``. Explicit ``lon=``/``lat=``/``location=`` arguments win. A
``wkt``/``geometry`` column of WKT text is used when there are no coordinate
columns. Columns whose values are clearly swapped (latitudes beyond ±90 in
the latitude column, or Chinese longitudes in the latitude column) are
swapped back, with a warning and a note in :attr:`LoadResult.notes`.

``crs=`` says which coordinate system the values are in: ``"wgs84"`` (the
default), ``"gcj02"`` (Amap, Tencent), ``"bd09"`` (Baidu) or any EPSG code.
For geographic files that declare a CRS, the geometry is first reprojected
to EPSG:4326 with geopandas; ``crs="gcj02"`` or ``"bd09"`` then says which
Chinese datum those longitudes and latitudes are really in. This matters
because a GeoJSON exported from Amap claims EPSG:4326 yet holds GCJ-02
coordinates, about 500 m off. An EPSG code in ``crs=`` instead overrides a
file's declared CRS (with a note), for files whose ``.prj`` is wrong.
:func:`detect_gcj02_shift` spots GCJ-02 data loaded as WGS84 by comparing it
with the street network.

Row problems do not stop a load: each bad row goes to
:attr:`LoadResult.rejects` with its row number and the first reason found,
so that ``len(data) + len(rejects) == rows_read``. Problems with the file
itself raise :class:`~lifecircle.errors.InputError`.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from .coords import gcj02_to_wgs84, parse_crs, to_wgs84
from .errors import InputError, InternalError
from .osm import is_osm_path, osm_facilities_table, osm_residential_table, read_osm_features

__all__ = [
    "PERSONS_PER_HOUSEHOLD_2020",
    "REJECT_COLUMNS",
    "LoadResult",
    "dbf_code_page",
    "detect_gcj02_shift",
    "load_communities",
    "load_facilities",
    "load_gates",
    "read_table",
    "sidecar_file",
]

logger = logging.getLogger(__name__)

PathArg = str | PathLike[str]

#: Average household size in China's 2020 census (第七次全国人口普查): 2.62 persons.
PERSONS_PER_HOUSEHOLD_2020 = 2.62

#: Columns of :attr:`LoadResult.rejects`.
REJECT_COLUMNS: tuple[str, ...] = ("file", "row", "column", "reason", "value")

# Rows searched for the header below title rows.
_TITLE_SCAN_ROWS = 10
# Share of rows that must agree before columns are judged swapped.
_NEARLY_ALL = 0.95
# GCJ-02 check: the correction must at least halve the median distance and gain this much.
_GCJ_MIN_GAIN_M = 15.0

_TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_GEO_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp")
_PARQUET_SUFFIXES = (".parquet", ".geoparquet")
_SUPPORTED = ".csv .tsv .txt .xlsx .geojson .gpkg .shp .parquet .osm .osm.bz2 .osm.gz .osm.pbf"

# Reasons a row is rejected, and the short label the summary groups them under.
R_COORD_EMPTY = "coordinate is empty"
R_COORD_NOT_NUMBER = "coordinate is not a number"
R_LAT_RANGE = "latitude outside -90..90"
R_LON_RANGE = "longitude outside -180..180"
R_LOCATION_FORMAT = "location is not 'lng,lat'"
R_TRANSFORM = "coordinate could not be transformed to WGS84"
R_GEOMETRY_MISSING = "geometry is missing or empty"
R_GEOMETRY_WKT = "geometry is not valid WKT"
R_GEOMETRY_RANGE = "geometry coordinates outside -180..180 / -90..90"
R_INVALID_POLYGON = "invalid polygon that make_valid could not repair"
R_NO_TYPE = "no facility type matched"
R_UNKNOWN_COMMUNITY = "unknown community_id"
R_EMPTY_COMMUNITY = "community_id is empty"

_COORDINATE_REASONS = frozenset(
    {R_COORD_EMPTY, R_COORD_NOT_NUMBER, R_LAT_RANGE, R_LON_RANGE, R_LOCATION_FORMAT, R_TRANSFORM}
)

# Header words, in order of preference. Matching ignores case, spaces, '_' and '-'.
_FACILITY_ID_WORDS = ("facility_id", "poi_id", "osm_id", "id", "uid", "设施编号", "编号")
_FACILITY_NAME_WORDS = ("name", "名称", "设施名称", "poi_name", "名字")
_TYPE_WORDS = ("type", "facility_type", "poi_type", "类型", "设施类型", "类别", "设施类别")
_CAPACITY_WORDS = ("capacity", "容量", "床位数", "学位数")
_COMMUNITY_ID_WORDS = ("community_id", "小区编号", "小区id", "osm_id", "id", "编号")
_COMMUNITY_NAME_WORDS = ("小区名称", "community_name", "name", "名称", "小区名", "小区")
_POPULATION_WORDS = ("population", "人口", "人数", "常住人口", "居住人口", "人口数", "pop")
_HOUSEHOLD_WORDS = ("households", "户数", "住户数", "总户数", "household")
_GATE_ID_WORDS = ("gate_id", "出入口编号", "门编号", "id", "编号")
_GATE_COMMUNITY_WORDS = (
    "community_id",
    "小区编号",
    "小区id",
    "community",
    "community_name",
    "小区名称",
    "所属小区",
    "小区",
)
_WKT_WORDS = ("wkt", "geometry", "geom", "the_geom", "shape")
_LOCATION_WORDS = ("location", "lnglat", "lonlat", "经纬度", "坐标")
# (longitude word, latitude word) in order of preference.
_COORDINATE_PAIRS = (
    ("lon", "lat"),
    ("lng", "lat"),
    ("longitude", "latitude"),
    ("long", "lat"),
    ("经度", "纬度"),
    ("东经", "北纬"),
    ("x", "y"),
)
_DATUM_HINTS = {
    "gcj02": ("gcj", "gcj02", "gaode", "amap", "高德", "火星"),
    "bd09": ("bd", "bd09", "bd09ll", "baidu", "百度"),
    "wgs84": ("wgs", "wgs84", "gps"),
}
# OSM keys the taxonomy reads; their presence is enough to classify facilities.
_OSM_KEYS = ("amenity", "shop", "leisure", "healthcare", "social_facility", "highway", "railway")


class TaxonomyLike(Protocol):
    """What the loaders need from :class:`lifecircle.taxonomy.Taxonomy`."""

    def classify(self, table: pd.DataFrame) -> pd.Series:
        """Return a facility type id, or None, for every row of ``table``."""
        ...

    def category_of(self, type_id: str) -> str:
        """Return the category a facility type belongs to."""
        ...


@dataclass
class LoadResult:
    """What a loader returns: the rows it loaded, the rows it rejected, and why.

    Attributes
    ----------
    data
        Loaded rows, EPSG:4326.
    rejects
        One row per rejected input row, columns :data:`REJECT_COLUMNS`. ``row``
        is the spreadsheet row number (the header is row 1, the first data
        row is row 2) for tables, or the 1-based feature number for
        geographic and OpenStreetMap files.
    source
        The file that was read.
    rows_read
        Rows (features) read, blank rows not counted. Always
        ``len(data) + len(rejects)``.
    notes
        Things worth knowing about the load: encoding used, swapped columns,
        repaired polygons, counts of unmatched facility types, ...

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> text = "小区名称,户数,lng,lat\\n荷清苑,400,116.33,40.0\\n"
    >>> _ = (folder / "xq.csv").write_text(text, encoding="utf-8")
    >>> communities, rejects = load_communities(folder / "xq.csv")
    >>> float(communities.loc[0, "population"]), len(rejects)
    (1048.0, 0)
    """

    data: gpd.GeoDataFrame
    rejects: pd.DataFrame
    source: str
    rows_read: int
    notes: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        yield self.data
        yield self.rejects

    def summary(self) -> str:
        """One line saying how many rows were read, loaded and rejected, and why.

        Examples
        --------
        >>> empty = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=4326))
        >>> rejects = pd.DataFrame({"file": ["p.csv"] * 2, "row": [3, 4], "column": ["lat"] * 2,
        ...                         "reason": [R_LAT_RANGE, R_NO_TYPE], "value": ["99", "x"]})
        >>> LoadResult(empty, rejects, "p.csv", 2).summary()
        'p.csv: 2 rows read, 0 loaded, 2 rejected (1 bad coordinates, 1 no facility type matched)'
        """
        name = Path(self.source).name
        text = f"{name}: {self.rows_read} rows read, {len(self.data)} loaded"
        text += f", {len(self.rejects)} rejected"
        if len(self.rejects):
            kinds = self.rejects["reason"].map(_reason_kind).value_counts(sort=False)
            kinds = kinds.sort_values(ascending=False, kind="stable")
            text += " (" + ", ".join(f"{n} {kind}" for kind, n in kinds.items()) + ")"
        return text


def _reason_kind(reason: str) -> str:
    """Group reasons for the summary line."""
    if reason in _COORDINATE_REASONS:
        return "bad coordinates"
    if reason.startswith("geometry") or reason == R_INVALID_POLYGON:
        return "bad geometry"
    if reason.startswith("duplicate"):
        return "duplicate ids"
    return reason


# ---------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------


def read_table(
    path: PathArg, *, sheet: str | int | None = None, layer: str | None = None
) -> pd.DataFrame | gpd.GeoDataFrame:
    """Read a table or geographic file as it is, without validating anything.

    Text and Excel files give a DataFrame of every row below the header,
    blank ones included, so that position ``i`` is spreadsheet row
    ``i + table.attrs["first_data_row"]`` (2 unless title rows sit above the
    header); text cells stay strings exactly as written (leading zeros kept).
    Geographic and OpenStreetMap files give a GeoDataFrame in the file's own
    CRS. Notes on how the file was read (encoding, sheet, layer) are in
    ``table.attrs["notes"]``.

    Parameters
    ----------
    path
        Any supported file (see the module documentation).
    sheet
        Excel sheet name or 0-based index; the first sheet by default.
    layer
        GeoPackage layer; the first one by default.

    Raises
    ------
    InputError
        Missing, empty, undecodable or unsupported file, or unknown sheet/layer.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "p.csv").write_bytes("名称,编号\\n幼儿园,007\\n".encode("gbk"))
    >>> table = read_table(folder / "p.csv")
    >>> table.loc[0, "编号"], table.attrs["notes"]
    ('007', ['read as GB18030 (GBK) text'])
    """
    file = _check_file(path)
    kind = _file_kind(file)
    if kind == "osm":
        return read_osm_features(file)
    if kind == "text":
        return _read_text(file)
    if kind == "excel":
        return _read_excel(file, sheet)
    if kind == "parquet":
        return _read_parquet(file)
    return _read_geo(file, layer)


def _check_file(path: PathArg) -> Path:
    file = Path(path)
    if not file.exists():
        raise InputError("file not found", file=file)
    if file.is_dir():
        raise InputError("is a folder, not a file", file=file)
    _file_kind(file)
    return file


def _file_kind(file: Path) -> str:
    name = file.name.lower()
    if is_osm_path(file):
        return "osm"
    if name.endswith(_TEXT_SUFFIXES):
        return "text"
    if name.endswith(_EXCEL_SUFFIXES):
        return "excel"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(_GEO_SUFFIXES):
        return "geo"
    if name.endswith(".xls"):
        raise InputError("old-style .xls workbooks are not supported; save it as .xlsx", file=file)
    raise InputError(
        f"unsupported file type {file.suffix or '(no suffix)'!r}; use one of {_SUPPORTED}",
        file=file,
    )


def _read_text(file: Path) -> pd.DataFrame:
    raw = file.read_bytes()
    if not raw.strip():
        raise InputError("file is empty", file=file)
    text, encoding = _decode(raw, file)
    text = text.lstrip("\ufeff")
    tab_separated = file.suffix.lower() == ".tsv"
    first_lines = text.split("\n", _TITLE_SCAN_ROWS)[:_TITLE_SCAN_ROWS]
    fields = [
        next(csv.reader([line], delimiter="\t" if tab_separated else _guess_delimiter(line)), [])
        for line in first_lines
    ]
    header = _header_index(fields)
    delimiter = "\t" if tab_separated else _guess_delimiter(first_lines[header])
    try:
        table = pd.read_csv(
            io.StringIO(text),
            skiprows=header,
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            index_col=False,
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError("file is empty", file=file) from exc
    except pd.errors.ParserError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise InputError(
            f"cannot split into columns at {delimiter!r}: {exc}",
            file=file,
            row=int(line.group(1)) if line else None,
        ) from exc
    table.attrs["notes"] = [f"read as {encoding} text", *_title_note(header)]
    table.attrs["first_data_row"] = header + 2
    return table


def _header_index(rows: Sequence[Sequence[Any]]) -> int:
    """Position of the header: the first row with two or more filled cells.

    Chinese survey sheets often carry a title row ("附表1：……设施一览表") above
    the header; such rows fill at most one cell. A file where no early row
    fills two cells has a single column, and its header is the first row.
    """
    for position, row in enumerate(rows[:_TITLE_SCAN_ROWS]):
        filled = sum(1 for cell in row if cell is not None and str(cell).strip() != "")
        if filled >= 2:
            return position
    return 0


def _title_note(header: int) -> list[str]:
    if header == 0:
        return []
    return [f"{header} title rows above the header skipped; the header is row {header + 1}"]


def _decode(raw: bytes, file: Path) -> tuple[str, str]:
    """Decode UTF-8 (BOM or not), then GB18030 (a superset of GBK); UTF-16 by its BOM."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "UTF-16"
    try:
        return raw.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError as utf8_error:
        try:
            return raw.decode("gb18030"), "GB18030 (GBK)"
        except UnicodeDecodeError as gb_error:
            # The later failure is the better guess at the broken line: each
            # decoder gets past everything valid in its own encoding.
            position = max(utf8_error.start, gb_error.start)
            line = raw.count(b"\n", 0, position) + 1
            raise InputError(
                f"byte 0x{raw[position]:02x} is neither UTF-8 nor GBK/GB18030 text; "
                "save the file as UTF-8",
                file=file,
                row=line,
            ) from gb_error


def _guess_delimiter(header_line: str) -> str:
    counts = {sep: header_line.count(sep) for sep in (",", "\t", ";", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _read_excel(file: Path, sheet: str | int | None) -> pd.DataFrame:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(file, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError) as exc:
        raise InputError(f"cannot open as an Excel workbook: {exc}", file=file) from exc
    try:
        worksheet = _pick_sheet(workbook, sheet, file)
        rows = list(worksheet.iter_rows(values_only=True))
    finally:
        workbook.close()
    if not any(any(cell is not None for cell in row) for row in rows[:_TITLE_SCAN_ROWS]):
        raise InputError(f"sheet {worksheet.title!r} is empty", file=file)
    header = _header_index(rows)
    names = _unique_headers(rows[header])
    table = pd.DataFrame.from_records(rows[header + 1 :], columns=names)
    unnamed = [name for name, cell in zip(names, rows[header], strict=True) if cell is None]
    table = table.drop(columns=[c for c in unnamed if table[c].isna().all()])
    table.attrs["notes"] = [f"read sheet {worksheet.title!r}", *_title_note(header)]
    table.attrs["first_data_row"] = header + 2
    return table


def _pick_sheet(workbook: Any, sheet: str | int | None, file: Path) -> Any:
    names = workbook.sheetnames
    if sheet is None:
        return workbook.worksheets[0]
    if isinstance(sheet, int):
        if 0 <= sheet < len(names):
            return workbook.worksheets[sheet]
    elif sheet in names:
        return workbook[sheet]
    raise InputError(f"no sheet {sheet!r}; the workbook has {names}", file=file)


def _unique_headers(cells: Sequence[Any]) -> list[str]:
    """Header names as text, blanks named column_<n>, repeats numbered like pandas does."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for position, cell in enumerate(cells, start=1):
        name = f"column_{position}" if cell is None else str(cell).strip()
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        names.append(name)
    return names


def _read_parquet(file: Path) -> pd.DataFrame:
    try:
        return gpd.read_parquet(file)
    except ValueError as exc:
        if "geo metadata" not in str(exc):
            raise InputError(f"cannot read GeoParquet: {exc}", file=file) from exc
    except OSError as exc:
        raise InputError(f"cannot read Parquet: {exc}", file=file) from exc
    try:
        table = pd.read_parquet(file)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read Parquet: {exc}", file=file) from exc
    table.attrs["notes"] = ["Parquet without geometry: coordinates taken from columns"]
    return table


def _read_geo(file: Path, layer: str | None) -> gpd.GeoDataFrame:
    import pyogrio
    from pyogrio.errors import DataLayerError, DataSourceError

    try:
        layers = [str(name) for name in pyogrio.list_layers(file)[:, 0]]
    except (DataSourceError, DataLayerError, OSError) as exc:
        raise InputError(f"cannot open as a geographic file: {exc}", file=file) from exc
    notes: list[str] = []
    if layer is not None and layer not in layers:
        raise InputError(f"no layer {layer!r}; the file has {layers}", file=file)
    if layer is None and len(layers) > 1:
        notes.append(
            f"file has layers {layers}; read the first, {layers[0]!r} (choose with layer=)"
        )
    chosen = layer if layer is not None else (layers[0] if layers else None)
    try:
        if file.suffix.lower() == ".shp":
            table, encoding_note = _read_shapefile(file)
            notes.append(encoding_note)
        else:
            table = gpd.read_file(file, layer=chosen, engine="pyogrio")
    except (DataSourceError, DataLayerError, OSError, ValueError) as exc:
        raise InputError(f"cannot read geographic file: {exc}", file=file) from exc
    table.attrs["notes"] = notes
    return table


def _read_shapefile(file: Path) -> tuple[gpd.GeoDataFrame, str]:
    """Honour a .cpg or DBF code page; otherwise try UTF-8, then GBK/GB18030."""
    cpg = sidecar_file(file, ".cpg")
    if cpg is not None:
        declared = cpg.read_text(errors="replace").strip()
        return gpd.read_file(file, engine="pyogrio"), f"DBF text read as {declared} (from .cpg)"
    if dbf_code_page(file):
        return gpd.read_file(file, engine="pyogrio"), "DBF text read with its own code page"
    try:
        return gpd.read_file(file, engine="pyogrio", encoding="utf-8"), "DBF text read as UTF-8"
    except UnicodeDecodeError:
        table = gpd.read_file(file, engine="pyogrio", encoding="gb18030")
        return table, "DBF has no .cpg and is not UTF-8; read its text as GBK/GB18030"


def sidecar_file(file: Path, suffix: str) -> Path | None:
    """A shapefile's companion file, whatever the case of its suffix."""
    for candidate in (file.with_suffix(suffix), file.with_suffix(suffix.upper())):
        if candidate.is_file():
            return candidate
    return None


def dbf_code_page(file: Path) -> int:
    """The DBF header's language driver id (byte 29); 0 means not declared."""
    dbf = sidecar_file(file, ".dbf")
    if dbf is None:
        return 0
    with dbf.open("rb") as handle:
        header = handle.read(32)
    return header[29] if len(header) > 29 else 0


# ---------------------------------------------------------------------------
# Row bookkeeping
# ---------------------------------------------------------------------------


@dataclass
class _Source:
    """A file's rows ready for validation, with their row numbers."""

    file: Path
    table: pd.DataFrame
    rows: np.ndarray
    kind: str
    notes: list[str]

    @property
    def has_geometry(self) -> bool:
        table = self.table
        return isinstance(table, gpd.GeoDataFrame) and table.active_geometry_name in table.columns

    @property
    def attribute_columns(self) -> list[str]:
        geometry = self.table.geometry.name if self.has_geometry else None
        return [str(c) for c in self.table.columns if c != geometry]


class _Ledger:
    """Tracks which rows are still alive and why the others were rejected."""

    def __init__(self, file: Path, rows: np.ndarray) -> None:
        self.file = file.name
        self.rows = rows
        self.alive = np.ones(len(rows), dtype=bool)
        self._parts: list[pd.DataFrame] = []

    def reject(
        self,
        mask: np.ndarray | pd.Series,
        reason: str | np.ndarray | pd.Series,
        *,
        column: str | None = None,
        values: pd.Series | np.ndarray | None = None,
    ) -> int:
        """Reject the alive rows in ``mask``; return how many."""
        hit = np.asarray(mask, dtype=bool) & self.alive
        if not hit.any():
            return 0
        reasons = reason if isinstance(reason, str) else np.asarray(reason, dtype=object)[hit]
        shown = _as_text(values)[hit] if values is not None else ""
        self._parts.append(
            pd.DataFrame(
                {
                    "file": self.file,
                    "row": self.rows[hit],
                    "column": column,
                    "reason": reasons,
                    "value": shown,
                }
            )
        )
        self.alive &= ~hit
        return int(hit.sum())

    def frame(self) -> pd.DataFrame:
        if not self._parts:
            return pd.DataFrame({name: pd.Series([], dtype=object) for name in REJECT_COLUMNS})
        rejects = pd.concat(self._parts, ignore_index=True)
        rejects["column"] = rejects["column"].astype(object)
        rejects["row"] = rejects["row"].astype("int64")
        return rejects.sort_values("row", kind="stable").reset_index(drop=True)


def _as_text(values: pd.Series | np.ndarray) -> np.ndarray:
    series = (
        values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    )
    return series.astype(object).where(series.notna(), "").astype(str).to_numpy()


def _open_source(
    file: Path,
    *,
    sheet: str | int | None,
    layer: str | None,
    osm_reader: Callable[[Path], gpd.GeoDataFrame],
) -> _Source:
    kind = _file_kind(file)
    table = osm_reader(file) if kind == "osm" else read_table(file, sheet=sheet, layer=layer)
    notes = list(table.attrs.get("notes", []))
    first_row = int(table.attrs.get("first_data_row", 1))
    table.attrs = {}
    rows = np.arange(len(table), dtype=np.int64) + first_row
    if kind in ("text", "excel"):
        blank = _blank_rows(table)
        if blank.any():
            notes.append(f"{int(blank.sum())} blank rows skipped")
            table, rows = table.loc[~blank].reset_index(drop=True), rows[~blank]
    if len(table) == 0:
        tabular = kind in ("text", "excel")
        what = {"osm": "no OpenStreetMap features of this kind"}.get(kind, "no features")
        if tabular:
            what = "no data rows below the header"
        raise InputError(what, file=file, row=first_row if tabular else None)
    return _Source(file=file, table=table, rows=rows, kind=kind, notes=notes)


def _blank_rows(table: pd.DataFrame) -> np.ndarray:
    blank = np.ones(len(table), dtype=bool)
    for column in table.columns:
        values = table[column]
        text = values.astype("string").str.strip()
        blank &= (values.isna() | (text == "")).fillna(True).to_numpy(dtype=bool)
    return blank


# ---------------------------------------------------------------------------
# Column detection
# ---------------------------------------------------------------------------


def _normalise_header(name: Any) -> str:
    text = unicodedata.normalize("NFKC", str(name)).strip().lower()
    return re.sub(r"[\s_\-]+", "", text)


def _header_tokens(name: Any) -> list[str]:
    text = unicodedata.normalize("NFKC", str(name)).lower()
    return re.findall(r"[a-z]+[0-9]*|[0-9]+|[\u4e00-\u9fff]+", text)


def _find_column(columns: Sequence[str], words: Sequence[str]) -> str | None:
    """The first column whose normalised header equals a word, in word order."""
    by_name: dict[str, str] = {}
    for column in columns:
        by_name.setdefault(_normalise_header(column), column)
    for word in words:
        found = by_name.get(_normalise_header(word))
        if found is not None:
            return found
    return None


def _pick_column(
    source: _Source, explicit: str | None, words: Sequence[str], *, argument: str
) -> str | None:
    """An explicitly named column (which must exist) or an auto-detected one."""
    columns = source.attribute_columns
    if explicit is None:
        return _find_column(columns, words)
    if explicit in columns:
        return explicit
    raise InputError(
        f"column given as {argument}= does not exist; columns are: {', '.join(columns)}",
        file=source.file,
        column=explicit,
    )


def _word_in_header(word: str, header: str) -> bool:
    if word.isascii():
        return word in _header_tokens(header)
    # Chinese words are not space-separated; 经纬度 holds both 经 and 纬度 but is a location.
    return word in header and "经纬" not in header


def _coordinate_pair(columns: Sequence[str], file: Path) -> tuple[str, str] | None:
    for lon_word, lat_word in _COORDINATE_PAIRS:
        lon_exact = [c for c in columns if _normalise_header(c) == lon_word]
        lat_exact = [c for c in columns if _normalise_header(c) == lat_word]
        if len(lon_exact) == 1 and len(lat_exact) == 1:
            return lon_exact[0], lat_exact[0]
        lon_any = [c for c in columns if _word_in_header(lon_word, c)]
        lat_any = [c for c in columns if _word_in_header(lat_word, c)]
        if len(lon_any) == 1 and len(lat_any) == 1:
            return lon_any[0], lat_any[0]
        if lon_any and lat_any:
            raise InputError(
                f"several coordinate columns ({', '.join(lon_any + lat_any)}); "
                "say which to use with lon= and lat=",
                file=file,
            )
    return None


def _location_column(columns: Sequence[str]) -> str | None:
    exact = _find_column(columns, _LOCATION_WORDS)
    if exact is not None:
        return exact
    candidates = [
        c
        for c in columns
        if "location" in _header_tokens(c) or "经纬度" in str(c) or str(c).strip() == "坐标"
    ]
    return candidates[0] if len(candidates) == 1 else None


def _datum_hint(column_names: Sequence[str]) -> str | None:
    tokens = {token for name in column_names for token in _header_tokens(name)}
    text = "".join(column_names)
    for datum, words in _DATUM_HINTS.items():
        if any(w in tokens if w.isascii() else w in text for w in words):
            return datum
    return None


# ---------------------------------------------------------------------------
# Numbers and coordinates
# ---------------------------------------------------------------------------


@dataclass
class _Numbers:
    values: np.ndarray
    empty: np.ndarray
    not_number: np.ndarray


def _parse_numbers(series: pd.Series, *, thousands: bool = False) -> _Numbers:
    """Numbers from raw cells; full-width digits accepted, '' and missing are empty."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        empty = np.isnan(values)
        return _Numbers(values, empty, ~empty & ~np.isfinite(values))
    text = series.astype("string").str.normalize("NFKC").str.strip()
    if thousands:
        text = text.str.replace(",", "", regex=False)
    empty = (text.isna() | (text == "")).to_numpy(dtype=bool)
    parsed = pd.to_numeric(text.where(~empty), errors="coerce")
    values = pd.Series(parsed).to_numpy(dtype=float, na_value=np.nan)
    return _Numbers(values, empty, ~empty & ~np.isfinite(values))


def _is_geographic(crs_name: str) -> bool:
    return crs_name in ("wgs84", "gcj02", "bd09") or pyproj.CRS(crs_name).is_geographic


def _swap_reason(lon: np.ndarray, lat: np.ndarray) -> str | None:
    """Why the two columns look swapped, or None when they do not (or it is unclear)."""
    finite = np.isfinite(lon) & np.isfinite(lat)
    if not finite.any():
        return None
    x, y = lon[finite], lat[finite]
    if (
        np.mean(np.abs(x) <= 90) >= _NEARLY_ALL
        and np.mean(np.abs(y) > 90) >= 0.5
        and np.mean(np.abs(y) <= 180) >= _NEARLY_ALL
    ):
        return "latitudes beyond ±90 but longitudes within it"
    in_china = np.mean((y >= 73) & (y <= 135) & (x >= 18) & (x <= 54))
    if in_china >= _NEARLY_ALL:
        return "latitude column holds Chinese longitudes (73..135), longitude column 18..54"
    return None


def _table_geometry(
    source: _Source,
    ledger: _Ledger,
    *,
    crs_name: str,
    lon: str | None,
    lat: str | None,
    location: str | None,
    notes: list[str],
) -> gpd.GeoSeries:
    """Points (or WKT shapes) from the coordinate columns of a table."""
    table, columns = source.table, source.attribute_columns
    if (lon is None) != (lat is None):
        raise InputError("give both lon= and lat=, or neither", file=source.file)
    for argument, name in (("lon", lon), ("lat", lat), ("location", location)):
        _pick_column(source, name, (), argument=argument)
    pair = (lon, lat) if lon is not None and lat is not None else None
    location_column = location
    if pair is None and location_column is None:
        pair = _coordinate_pair(columns, source.file)
        if pair is None:
            location_column = _location_column(columns)
    if pair is None and location_column is None:
        wkt_column = _find_column(columns, _WKT_WORDS)
        if wkt_column is not None:
            return _wkt_geometry(source, ledger, wkt_column, crs_name, notes)
        raise InputError(
            "no coordinate columns found; expected lon/lat, lng/lat, longitude/latitude, x/y, "
            "经度/纬度 or an Amap 'location' column (or name them with lon=, lat=, location=); "
            f"columns found: {', '.join(columns)}",
            file=source.file,
        )
    if pair is None:
        lon_name = lat_name = str(location_column)
        x, y, lon_raw, lat_raw = _split_location(table[lon_name], ledger, lon_name)
        hint_columns = [lon_name]
    else:
        lon_name, lat_name = pair
        lon_raw, lat_raw = table[lon_name], table[lat_name]
        x, y = _parse_numbers(lon_raw), _parse_numbers(lat_raw)
        for numbers, name, raw in ((x, lon_name, lon_raw), (y, lat_name, lat_raw)):
            ledger.reject(numbers.empty, R_COORD_EMPTY, column=name, values=raw)
            ledger.reject(numbers.not_number, R_COORD_NOT_NUMBER, column=name, values=raw)
        hint_columns = [lon_name, lat_name]
    _warn_datum_hint(hint_columns, crs_name, source, notes)
    lon_values, lat_values = x.values, y.values
    if _is_geographic(crs_name):
        reason = _swap_reason(lon_values[ledger.alive], lat_values[ledger.alive])
        if reason is not None:
            message = (
                f"columns {lon_name} and {lat_name} look swapped ({reason}); swapped them back"
            )
            if lon_name == lat_name:
                message = f"column {lon_name} looks like 'lat,lng' ({reason}); read it that way"
            logger.warning("%s: %s", source.file.name, message)
            notes.append(message)
            lon_values, lat_values = lat_values, lon_values
            lon_name, lat_name = lat_name, lon_name
            lon_raw, lat_raw = lat_raw, lon_raw
        with np.errstate(invalid="ignore"):
            ledger.reject(np.abs(lat_values) > 90, R_LAT_RANGE, column=lat_name, values=lat_raw)
            ledger.reject(np.abs(lon_values) > 180, R_LON_RANGE, column=lon_name, values=lon_raw)
    return _points_in_wgs84(lon_values, lat_values, crs_name, ledger, lon_name, lon_raw)


def _split_location(
    values: pd.Series, ledger: _Ledger, column: str
) -> tuple[_Numbers, _Numbers, pd.Series, pd.Series]:
    """Amap's ``location`` cells, "lng,lat" (a full-width comma is accepted too)."""
    text = values.astype("string").str.normalize("NFKC").str.strip()
    empty = (text.isna() | (text == "")).to_numpy(dtype=bool)
    ledger.reject(empty, R_COORD_EMPTY, column=column, values=values)
    parts = text.str.extract(r"^\s*([^,\s]+)\s*,\s*([^,\s]+)\s*$")
    malformed = parts[0].isna().to_numpy(dtype=bool)
    ledger.reject(malformed, R_LOCATION_FORMAT, column=column, values=values)
    x, y = _parse_numbers(parts[0]), _parse_numbers(parts[1])
    ledger.reject(x.not_number | y.not_number, R_COORD_NOT_NUMBER, column=column, values=values)
    return x, y, values, values


def _warn_datum_hint(
    columns: Sequence[str], crs_name: str, source: _Source, notes: list[str]
) -> None:
    """Column names like gcj02_lng or a typecode column say a lot about the datum."""
    hint = _datum_hint(columns)
    headers = {_normalise_header(c) for c in source.attribute_columns}
    amap_export = hint is None and {"typecode", "location"} <= headers
    if amap_export:
        hint = "gcj02"
    if hint is None or hint == crs_name or crs_name.startswith("EPSG:"):
        return
    message = (
        f"column names ({', '.join(columns)}) suggest {hint.upper()} coordinates "
        f"but crs={crs_name!r} was used; pass crs={hint!r} if the values are {hint.upper()}"
    )
    if amap_export:
        message = (
            "this looks like an Amap export (typecode and location columns), whose coordinates "
            f"are GCJ-02, but crs={crs_name!r} was used; pass crs='gcj02' if so"
        )
    logger.warning("%s: %s", source.file.name, message)
    notes.append(message)


def _points_in_wgs84(
    lon: np.ndarray,
    lat: np.ndarray,
    crs_name: str,
    ledger: _Ledger,
    column: str,
    raw: pd.Series,
) -> gpd.GeoSeries:
    alive = ledger.alive.copy()
    out_lon = np.full(len(lon), np.nan)
    out_lat = np.full(len(lat), np.nan)
    if alive.any():
        out_lon[alive], out_lat[alive] = to_wgs84(lon[alive], lat[alive], crs_name)
    failed = alive & ~(np.isfinite(out_lon) & np.isfinite(out_lat))
    ledger.reject(failed, R_TRANSFORM, column=column, values=raw)
    keep = ledger.alive
    geometry = np.full(len(lon), None, dtype=object)
    geometry[keep] = shapely.points(out_lon[keep], out_lat[keep])
    return gpd.GeoSeries(geometry, crs="EPSG:4326")


def _wkt_geometry(
    source: _Source, ledger: _Ledger, column: str, crs_name: str, notes: list[str]
) -> gpd.GeoSeries:
    raw = source.table[column]
    text = raw.astype("string").str.strip()
    empty = (text.isna() | (text == "")).to_numpy(dtype=bool)
    ledger.reject(empty, R_GEOMETRY_MISSING, column=column, values=raw)
    shapes = shapely.from_wkt(text.fillna("").to_numpy(dtype=object), on_invalid="ignore")
    ledger.reject(pd.isna(shapes), R_GEOMETRY_WKT, column=column, values=raw)
    notes.append(f"geometry read from WKT column {column}")
    return _geometry_in_wgs84(gpd.GeoSeries(shapes), None, crs_name, source, ledger, notes)


def _geometry_in_wgs84(
    geometry: gpd.GeoSeries,
    declared: pyproj.CRS | None,
    crs_name: str,
    source: _Source,
    ledger: _Ledger,
    notes: list[str],
) -> gpd.GeoSeries:
    """Reproject to EPSG:4326, then undo a GCJ-02/BD-09 shift when ``crs_name`` says so."""
    geometry = gpd.GeoSeries(geometry.to_numpy(), crs=declared)
    missing = (geometry.isna() | geometry.is_empty).to_numpy(dtype=bool)
    ledger.reject(missing, R_GEOMETRY_MISSING, column="geometry")
    geometry = _blank_out(geometry, ledger.alive)
    if crs_name.startswith("EPSG:"):
        if declared is not None and pyproj.CRS(crs_name) != declared:
            message = f"file declares {declared.to_string()}, crs={crs_name!r} overrides it"
            logger.warning("%s: %s", source.file.name, message)
            notes.append(message)
        geometry = geometry.set_crs(crs_name, allow_override=True)
    elif declared is None:
        geometry = geometry.set_crs("EPSG:4326")
    geometry = geometry.to_crs("EPSG:4326")
    if crs_name in ("gcj02", "bd09"):
        geometry = gpd.GeoSeries(
            shapely.transform(geometry.to_numpy(), lambda xy: _datum_to_wgs84(xy, crs_name)),
            crs="EPSG:4326",
        )
    bounds = shapely.bounds(geometry.to_numpy())
    with np.errstate(invalid="ignore"):
        outside = (
            ~np.isfinite(bounds).all(axis=1)
            | (np.abs(bounds[:, [0, 2]]) > 180).any(axis=1)
            | (np.abs(bounds[:, [1, 3]]) > 90).any(axis=1)
        )
    ledger.reject(outside, R_GEOMETRY_RANGE, column="geometry", values=_bounds_text(bounds))
    return _blank_out(geometry, ledger.alive)


def _blank_out(geometry: gpd.GeoSeries, keep: np.ndarray) -> gpd.GeoSeries:
    values = geometry.to_numpy().copy()
    values[~keep] = None
    return gpd.GeoSeries(values, crs=geometry.crs)


def _datum_to_wgs84(xy: np.ndarray, crs_name: str) -> np.ndarray:
    lon, lat = to_wgs84(xy[:, 0], xy[:, 1], crs_name)
    return np.column_stack([lon, lat])


def _bounds_text(bounds: np.ndarray) -> np.ndarray:
    frame = pd.DataFrame(bounds).round(6).astype(str)
    return (frame[0] + "," + frame[1] + "," + frame[2] + "," + frame[3]).to_numpy()


def _locate(
    source: _Source,
    ledger: _Ledger,
    *,
    crs_name: str,
    lon: str | None,
    lat: str | None,
    location: str | None,
    notes: list[str],
) -> gpd.GeoSeries:
    """Geometry in EPSG:4326 for every row (None where the row was rejected)."""
    explicit_columns = lon is not None or lat is not None or location is not None
    if source.kind == "osm":
        if crs_name != "wgs84":
            notes.append(f"OpenStreetMap data is WGS84; crs={crs_name!r} ignored")
        crs_name = "wgs84"
    if source.has_geometry and not explicit_columns:
        geometry = source.table.geometry
        return _geometry_in_wgs84(geometry, geometry.crs, crs_name, source, ledger, notes)
    return _table_geometry(
        source, ledger, crs_name=crs_name, lon=lon, lat=lat, location=location, notes=notes
    )


def _as_points(
    geometry: gpd.GeoSeries, keep: np.ndarray, notes: list[str], what: str
) -> gpd.GeoSeries:
    """Points as they are; areas and lines by a point guaranteed to lie on them."""
    values = geometry.to_numpy().copy()
    # get_type_id: -1 missing, 0 Point, anything above is a line or an area.
    shaped = shapely.get_type_id(values) > 0
    if shaped.any():
        values[shaped] = shapely.point_on_surface(values[shaped])
    if (shaped & keep).any():
        count = int((shaped & keep).sum())
        notes.append(f"{count} {what} mapped as areas or lines placed at a point on them")
    return gpd.GeoSeries(values, crs="EPSG:4326")


# ---------------------------------------------------------------------------
# Ids, names, numbers
# ---------------------------------------------------------------------------


def _id_strings(values: pd.Series) -> pd.Series:
    """Ids as text: whole numbers without '.0', text stripped, missing as NA."""
    if pd.api.types.is_float_dtype(values):
        whole = values.notna() & (values == np.floor(values))
        text = values.astype("string")
        return text.where(~whole, values.where(whole).astype("Int64").astype("string"))
    text = values.astype("string").str.strip()
    if not (pd.api.types.is_string_dtype(values) and values.dtype != object):
        # Excel and geo attributes hold real numbers; 12.0 is the id 12.
        text = text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    return text.where(text != "", pd.NA)


def _ids(
    source: _Source, column: str | None, ledger: _Ledger, notes: list[str], what: str
) -> pd.Series:
    """Ids from ``column``, or "<stem>-<row>" where there is none."""
    generated = f"{source.file.stem}-" + pd.Series(source.rows).astype("string")
    if column is None:
        return generated
    ids = _id_strings(source.table[column]).reset_index(drop=True)
    blank = ids.isna() & pd.Series(ledger.alive)
    if blank.any():
        notes.append(
            f"{int(blank.sum())} rows have no {what} in column {column}; named <file>-<row>"
        )
    return ids.fillna(generated)


def _reject_duplicates(ids: pd.Series, ledger: _Ledger, column: str | None, what: str) -> None:
    """Keep the first alive row of each id; reject the later ones, naming the first."""
    alive = np.flatnonzero(ledger.alive)
    if len(alive) == 0:
        return
    alive_ids = ids.iloc[alive].reset_index(drop=True)
    first_row = pd.Series(ledger.rows[alive]).groupby(alive_ids.to_numpy()).transform("first")
    duplicate = alive_ids.duplicated(keep="first").to_numpy()
    if not duplicate.any():
        return
    mask = np.zeros(len(ids), dtype=bool)
    mask[alive[duplicate]] = True
    reasons = np.empty(len(ids), dtype=object)
    first_text = first_row[duplicate].astype("string")
    reasons[alive[duplicate]] = (f"duplicate {what} (first at row " + first_text + ")").to_numpy()
    ledger.reject(mask, reasons, column=column, values=ids)


def _plain(values: pd.Series) -> pd.Series:
    """Object column with None for missing values, whatever pandas version reads it."""
    return values.astype(object).where(values.notna(), None)


def _names(source: _Source, column: str | None) -> pd.Series:
    if column is None:
        return pd.Series(pd.NA, index=range(len(source.table)), dtype="string")
    text = source.table[column].astype("string").str.strip().reset_index(drop=True)
    return text.where(text != "", pd.NA)


def _non_negative(
    source: _Source,
    column: str | None,
    ledger: _Ledger,
    notes: list[str],
    what: str,
) -> np.ndarray:
    """Numbers >= 0 from ``column`` (NaN if empty or absent); bad cells reject the row.

    OpenStreetMap tags are free text, so there a bad value becomes NaN with a note
    instead of costing the feature.
    """
    if column is None:
        return np.full(len(source.table), np.nan)
    raw = source.table[column].reset_index(drop=True)
    numbers = _parse_numbers(raw, thousands=True)
    with np.errstate(invalid="ignore"):
        negative = numbers.values < 0
    if source.kind == "osm":
        bad = (numbers.not_number | negative) & ledger.alive
        if bad.any():
            notes.append(f"{int(bad.sum())} OpenStreetMap {what} tags are not numbers; ignored")
        return np.where(bad, np.nan, numbers.values)
    ledger.reject(numbers.not_number, f"{what} is not a number", column=column, values=raw)
    ledger.reject(negative, f"{what} is negative", column=column, values=raw)
    return numbers.values


# ---------------------------------------------------------------------------
# Assembling results
# ---------------------------------------------------------------------------


def _assemble(
    source: _Source,
    ledger: _Ledger,
    front: dict[str, Any],
    geometry: gpd.GeoSeries,
    notes: list[str],
) -> LoadResult:
    """Derived columns first, then the file's own columns, only the rows still alive."""
    keep = ledger.alive
    derived = pd.DataFrame(front)
    derived["source_file"] = source.file.name
    derived["source_row"] = source.rows
    originals = pd.DataFrame(source.table[source.attribute_columns]).reset_index(drop=True)
    derived, originals = derived.loc[keep].reset_index(drop=True), originals.loc[keep]
    originals = _resolve_clashes(originals.reset_index(drop=True), derived, notes)
    table = pd.concat([derived, originals], axis=1)
    data = gpd.GeoDataFrame(
        table, geometry=gpd.GeoSeries(geometry.to_numpy()[keep], crs="EPSG:4326")
    )
    result = LoadResult(
        data=data,
        rejects=ledger.frame(),
        source=str(source.file),
        rows_read=len(source.rows),
        notes=source.notes + notes,
    )
    if len(result.data) + len(result.rejects) != result.rows_read:
        raise InternalError(f"{result.summary()}: loaded and rejected rows do not add up")
    if len(result.data) == 0:
        logger.warning("%s; nothing was loaded", result.summary())
    else:
        logger.info(result.summary())
    for note in result.notes:
        logger.info("%s: %s", source.file.name, note)
    return result


def _resolve_clashes(
    originals: pd.DataFrame, derived: pd.DataFrame, notes: list[str]
) -> pd.DataFrame:
    """A file column named like a derived one is dropped if identical, else renamed source_<c>."""
    renames: dict[str, str] = {}
    drops: list[str] = []
    for column in originals.columns:
        if column not in derived.columns and column != "geometry":
            continue
        if column in derived.columns and _same_values(originals[column], derived[column]):
            drops.append(column)
            continue
        new = f"source_{column}"
        while new in originals.columns or new in derived.columns:
            new = f"source_{new}"
        renames[column] = new
    if renames:
        listed = ", ".join(f"{old} -> {new}" for old, new in renames.items())
        notes.append(f"file columns renamed to keep them apart from derived ones: {listed}")
    return originals.drop(columns=drops).rename(columns=renames)


def _same_values(left: pd.Series, right: pd.Series) -> bool:
    if pd.api.types.is_float_dtype(right):
        numbers = pd.to_numeric(left.reset_index(drop=True), errors="coerce").to_numpy(float)
        return bool(np.allclose(numbers, right.to_numpy(float), equal_nan=True))
    a = left.astype("string").fillna("").str.strip().reset_index(drop=True)
    b = right.astype("string").fillna("").str.strip().reset_index(drop=True)
    return bool((a == b).all())


# ---------------------------------------------------------------------------
# Public loaders
# ---------------------------------------------------------------------------


def load_facilities(
    path: PathArg,
    *,
    crs: str = "wgs84",
    lon: str | None = None,
    lat: str | None = None,
    location: str | None = None,
    id_column: str | None = None,
    name_column: str | None = None,
    type_column: str | None = None,
    capacity_column: str | None = None,
    taxonomy: TaxonomyLike | None = None,
    sheet: str | int | None = None,
    layer: str | None = None,
) -> LoadResult:
    """Load facilities (POIs) and give each a facility type.

    Parameters
    ----------
    path
        Any supported file (see the module documentation). OpenStreetMap files
        give the features of :func:`lifecircle.osm.osm_facilities_table`.
    crs
        Coordinate system of the values: ``"wgs84"``, ``"gcj02"`` (Amap,
        Tencent), ``"bd09"`` (Baidu) or an EPSG code. For geographic files
        with a declared CRS, see the module documentation.
    lon, lat, location
        Coordinate columns, when auto-detection is not enough.
    id_column, name_column, type_column, capacity_column
        Columns for the facility id (default: ``facility_id``, ``poi_id``,
        ``osm_id``, ``id``, ``uid`` or ``编号``; else ``<file stem>-<row>``),
        name (``name``, ``名称``, ...), type (``type``, ``类型``, ``类别``, ...;
        an Amap type string or a lifecircle type id) and capacity
        (``capacity``, ``容量``, ...).
    taxonomy
        Classifies rows into facility types; :func:`lifecircle.taxonomy.default_taxonomy`
        by default. It sees the file's columns (OSM tags, Amap ``typecode``)
        plus ``name`` and ``type`` taken from the columns above.
    sheet, layer
        Excel sheet and GeoPackage layer.

    Returns
    -------
    LoadResult
        ``data`` has ``facility_id``, ``name``, ``type``, ``category``,
        ``capacity`` (NaN if absent), ``source_file``, ``source_row``, the
        file's own columns and point geometry (areas become a point on them).
        Rows of no facility type are rejected with ``"no facility type
        matched"``; a repeated id rejects the later rows.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "pois.csv").write_text(
    ...     "name,type,lng,lat\\n清华附小,primary_school,116.32,40.0\\n", encoding="utf-8")
    >>> facilities, rejects = load_facilities(folder / "pois.csv")
    >>> facilities.loc[0, "type"], len(rejects)
    ('primary_school', 0)
    """
    file = _check_file(path)
    crs_name = parse_crs(crs)
    source = _open_source(file, sheet=sheet, layer=layer, osm_reader=osm_facilities_table)
    id_name = _pick_column(source, id_column, _FACILITY_ID_WORDS, argument="id_column")
    name_name = _pick_column(source, name_column, _FACILITY_NAME_WORDS, argument="name_column")
    type_name = _pick_column(source, type_column, _TYPE_WORDS, argument="type_column")
    capacity_name = _pick_column(
        source, capacity_column, _CAPACITY_WORDS, argument="capacity_column"
    )
    _require_type_evidence(source, name_name, type_name)
    tax = taxonomy if taxonomy is not None else _default_taxonomy()
    notes: list[str] = []
    ledger = _Ledger(file, source.rows)
    geometry = _locate(
        source, ledger, crs_name=crs_name, lon=lon, lat=lat, location=location, notes=notes
    )
    names = _names(source, name_name)
    types, all_types, flags = _classify(tax, source, names, type_name)
    _reject_unmatched(source, ledger, types, names, type_name, notes, flags)
    ids = _ids(source, id_name, ledger, notes, "facility_id")
    _reject_duplicates(ids, ledger, id_name, "facility_id")
    capacity = _non_negative(source, capacity_name, ledger, notes, "capacity")
    geometry = _as_points(geometry, ledger.alive, notes, "facilities")
    front = {
        "facility_id": _plain(ids),
        "name": _plain(names),
        "type": _plain(types),
        "types": _plain(all_types),
        "category": _plain(_categories(tax, types)),
        "capacity": capacity,
    }
    return _assemble(source, ledger, front, geometry, notes)


def _default_taxonomy() -> TaxonomyLike:
    try:
        from .taxonomy import default_taxonomy
    except ImportError as exc:
        raise InternalError("lifecircle.taxonomy is not available") from exc
    return default_taxonomy()


def _require_type_evidence(source: _Source, name: str | None, type_name: str | None) -> None:
    headers = {_normalise_header(c) for c in source.attribute_columns}
    if name or type_name or "typecode" in headers or headers & set(_OSM_KEYS):
        return
    raise InputError(
        "nothing to tell facility types from: expected a type column (type, 类型, 类别), "
        "an Amap typecode, OpenStreetMap tags or at least a name; columns found: "
        + ", ".join(source.attribute_columns),
        file=source.file,
    )


def _classify(
    taxonomy: TaxonomyLike, source: _Source, names: pd.Series, type_name: str | None
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Main type of every row, all types it serves (";"-joined) and the rules' flags."""
    view = pd.DataFrame(source.table[source.attribute_columns]).reset_index(drop=True)
    view["name"] = names.astype(object)
    if type_name is not None:
        view["type"] = view[type_name]
    elif source.kind == "osm" and "type" in view.columns:
        view = view.drop(columns="type")  # the OSM relation type, not a facility type
    audit = getattr(taxonomy, "audit", None)
    if callable(audit):
        audited = pd.DataFrame(audit(view)).reset_index(drop=True)
        types, served = audited["type"].astype(object), audited["types"].astype(object)
        flags = audited["flags"].fillna("").astype(str)
    else:
        types = pd.Series(taxonomy.classify(view)).reset_index(drop=True).astype(object)
        served, flags = types, pd.Series("", index=types.index)
    missing = types.isna() | (types.astype(str).str.strip() == "")
    return types.where(~missing, None), served.where(~missing, None), flags


def _categories(taxonomy: TaxonomyLike, types: pd.Series) -> pd.Series:
    known = {t: taxonomy.category_of(t) for t in types.dropna().unique()}
    return types.map(known).astype(object)


def _reject_unmatched(
    source: _Source,
    ledger: _Ledger,
    types: pd.Series,
    names: pd.Series,
    type_name: str | None,
    notes: list[str],
    flags: pd.Series | None = None,
) -> None:
    label = _type_label(source, type_name)
    shown = (names.fillna("") + (" (" + label + ")").fillna("")).str.strip()
    if flags is not None:
        _note_flags(source.rows[ledger.alive], flags[ledger.alive], notes)
    unmatched = types.isna().to_numpy() & ledger.alive
    count = ledger.reject(unmatched, R_NO_TYPE, column=type_name, values=shown)
    if count:
        common = label[unmatched].fillna("(no type)").value_counts().head(5)
        listed = ", ".join(f"{value} ({n})" for value, n in common.items())
        notes.append(f"{count} rows matched no facility type; most common: {listed}")


def _note_flags(rows: np.ndarray, flags: pd.Series, notes: list[str]) -> None:
    """Name the first rows the taxonomy flagged (implausible tag and name, ...)."""
    flagged = (flags != "").to_numpy()
    if not flagged.any():
        return
    listed = "; ".join(
        f"row {row}: {text}"
        for row, text in zip(rows[flagged][:3], flags[flagged][:3], strict=False)
    )
    more = f" (and {int(flagged.sum()) - 3} more)" if flagged.sum() > 3 else ""
    notes.append(
        f"{int(flagged.sum())} rows flagged by the taxonomy (list them all with "
        f"lifecircle.taxonomy.check_file): {listed}{more}"
    )


def _type_label(source: _Source, type_name: str | None) -> pd.Series:
    """What the row says its type is: the type column, typecode, or its OSM key=value."""
    table = source.table.reset_index(drop=True)
    label = pd.Series(pd.NA, index=table.index, dtype="string")
    if type_name is not None:
        label = table[type_name].astype("string")
    typecode = _find_column(source.attribute_columns, ("typecode",))
    if typecode is not None:
        label = label.fillna(table[typecode].astype("string"))
    for key in (*_OSM_KEYS, "public_transport"):
        if key in table.columns:
            label = label.fillna(key + "=" + table[key].astype("string"))
    return label.where(label.str.strip() != "", pd.NA)


def load_communities(
    path: PathArg,
    *,
    crs: str = "wgs84",
    lon: str | None = None,
    lat: str | None = None,
    location: str | None = None,
    id_column: str | None = None,
    name_column: str | None = None,
    population_column: str | None = None,
    households_column: str | None = None,
    persons_per_household: float = PERSONS_PER_HOUSEHOLD_2020,
    sheet: str | int | None = None,
    layer: str | None = None,
    standalone_buildings: bool = False,
) -> LoadResult:
    """Load residential compounds (小区) as points or (multi)polygons.

    Parameters
    ----------
    path
        Any supported file. OpenStreetMap files give the compounds of
        :func:`lifecircle.osm.osm_residential_table`: ``landuse=residential``
        areas with their buildings folded in, population tagged, ESTIMATED
        from ``building:levels`` or NaN (see ``population_status``).
    crs, lon, lat, location, sheet, layer
        As for :func:`load_facilities`.
    id_column
        Default ``community_id``, ``小区编号``, ``osm_id``, ``id``, ``编号``;
        else ``<file stem>-<row>``.
    name_column
        Default ``小区名称``, ``name``, ``名称``, ``小区``.
    population_column, households_column
        Default ``population``/``人口``/``人数`` and ``households``/``户数``.
    persons_per_household
        Residents per household, used where population is missing but the
        household count is known. The default, 2.62, is China's average
        household size in the 2020 census (第七次全国人口普查).
    standalone_buildings
        OpenStreetMap files only: also score named residential buildings that
        lie in no ``landuse=residential`` area as compounds of their own.

    Returns
    -------
    LoadResult
        ``data`` has ``community_id``, ``name``, ``population`` (the population
        column, else households × ``persons_per_household``, else NaN),
        ``households``, ``geometry``, ``source_file``, ``source_row`` and the
        file's own columns. Invalid polygons are repaired with ``make_valid``;
        those that stay invalid or empty are rejected, as are lines, repeated
        ids and negative or non-numeric population or household counts.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "xq.csv").write_text(
    ...     "编号,小区名称,人口,经度,纬度\\n"
    ...     "1,荷清苑,1200,116.33,40.0\\n"
    ...     "1,西王庄,800,116.34,40.0\\n", encoding="utf-8")
    >>> communities, rejects = load_communities(folder / "xq.csv")
    >>> communities.loc[0, "name"], rejects.loc[0, "reason"]
    ('荷清苑', 'duplicate community_id (first at row 2)')
    """
    file = _check_file(path)
    crs_name = parse_crs(crs)
    if not (np.isfinite(persons_per_household) and persons_per_household > 0):
        raise InputError(
            f"must be a positive number, not {persons_per_household!r}",
            column="persons_per_household",
        )
    source = _open_source(
        file,
        sheet=sheet,
        layer=layer,
        osm_reader=lambda f: osm_residential_table(f, standalone_buildings=standalone_buildings),
    )
    id_name = _pick_column(source, id_column, _COMMUNITY_ID_WORDS, argument="id_column")
    name_name = _pick_column(source, name_column, _COMMUNITY_NAME_WORDS, argument="name_column")
    population_name = _pick_column(
        source, population_column, _POPULATION_WORDS, argument="population_column"
    )
    households_name = _pick_column(
        source, households_column, _HOUSEHOLD_WORDS, argument="households_column"
    )
    notes: list[str] = []
    ledger = _Ledger(file, source.rows)
    geometry = _locate(
        source, ledger, crs_name=crs_name, lon=lon, lat=lat, location=location, notes=notes
    )
    geometry = _community_shapes(geometry, ledger, notes)
    ids = _ids(source, id_name, ledger, notes, "community_id")
    _reject_duplicates(ids, ledger, id_name, "community_id")
    population = _non_negative(source, population_name, ledger, notes, "population")
    households = _non_negative(source, households_name, ledger, notes, "households")
    estimated = np.isnan(population) & ~np.isnan(households) & ledger.alive
    if estimated.any():
        notes.append(
            f"population of {int(estimated.sum())} compounds estimated as households × "
            f"{persons_per_household:g}"
        )
    front = {
        "community_id": _plain(ids),
        "name": _plain(_names(source, name_name)),
        "population": np.where(
            np.isnan(population), households * persons_per_household, population
        ),
        "households": households,
    }
    return _assemble(source, ledger, front, geometry, notes)


def _community_shapes(geometry: gpd.GeoSeries, ledger: _Ledger, notes: list[str]) -> gpd.GeoSeries:
    """Points and (multi)polygons; invalid polygons repaired, anything else rejected."""
    values = geometry.to_numpy().copy()
    kinds = geometry.geom_type.to_numpy(dtype=object)
    allowed = pd.Series(kinds).isin(["Point", "Polygon", "MultiPolygon"]).to_numpy()
    present = pd.notna(values)
    wrong = present & ~allowed
    reasons = (
        "geometry is a " + pd.Series(kinds).astype("string") + "; expected a point or polygon"
    ).to_numpy(dtype=object)
    ledger.reject(wrong, reasons, column="geometry", values=kinds)
    polygonal = (
        ledger.alive & present & pd.Series(kinds).isin(["Polygon", "MultiPolygon"]).to_numpy()
    )
    invalid = polygonal & ~shapely.is_valid(values)
    if invalid.any():
        why = shapely.is_valid_reason(values[invalid])
        repaired = _polygonal_part(shapely.make_valid(values[invalid]))
        failed = shapely.is_empty(repaired) | ~shapely.is_valid(repaired)
        values[invalid] = repaired
        reasons_invalid = np.empty(len(values), dtype=object)
        reasons_invalid[invalid] = why
        mask = np.zeros(len(values), dtype=bool)
        mask[np.flatnonzero(invalid)[failed]] = True
        ledger.reject(mask, R_INVALID_POLYGON, column="geometry", values=reasons_invalid)
        fixed = int(invalid.sum()) - int(failed.sum())
        if fixed:
            notes.append(f"{fixed} invalid polygons repaired with make_valid")
    values[~ledger.alive] = None
    return gpd.GeoSeries(values, crs="EPSG:4326")


def _polygonal_part(geometries: np.ndarray) -> np.ndarray:
    """The (multi)polygon inside each geometry; an empty polygon when there is none."""
    # Two levels of get_parts flatten a GeometryCollection holding MultiPolygons.
    parts, owner = shapely.get_parts(geometries, return_index=True)
    pieces, piece_owner = shapely.get_parts(parts, return_index=True)
    owner = owner[piece_owner]
    is_polygon = shapely.get_type_id(pieces) == 3
    merged = np.full(len(geometries), shapely.Polygon(), dtype=object)
    if is_polygon.any():
        shapely.multipolygons(pieces[is_polygon], indices=owner[is_polygon], out=merged)
    single = shapely.get_num_geometries(merged) == 1
    merged[single] = shapely.get_geometry(merged[single], 0)
    return merged


def load_gates(
    path: PathArg,
    *,
    communities: gpd.GeoDataFrame | None = None,
    crs: str = "wgs84",
    lon: str | None = None,
    lat: str | None = None,
    location: str | None = None,
    community_column: str | None = None,
    id_column: str | None = None,
    sheet: str | int | None = None,
    layer: str | None = None,
) -> LoadResult:
    """Load the gates (出入口) of residential compounds.

    Parameters
    ----------
    path
        Any supported file of gate points.
    communities
        Loaded compounds (``load_communities(...).data``). When given, every
        gate's compound must be among them: the column may hold a
        ``community_id`` or, failing that, a compound name that is unique.
    community_column
        Column naming each gate's compound; default ``community_id``,
        ``小区编号``, ``community``, ``小区名称``, ``所属小区``, ``小区``.
    id_column
        Default ``gate_id``, ``出入口编号``, ``id``, ``编号``; else ``<file stem>-<row>``.
    crs, lon, lat, location, sheet, layer
        As for :func:`load_facilities`.

    Returns
    -------
    LoadResult
        ``data`` has ``gate_id``, ``community_id``, ``source_file``,
        ``source_row``, the file's own columns and point geometry.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "gates.csv").write_text(
    ...     "gate_id,小区编号,lng,lat\\nG1,XQ1,116.33,40.0\\nG2,XQ9,116.34,40.0\\n", "utf-8")
    >>> known = gpd.GeoDataFrame({"community_id": ["XQ1"], "name": ["荷清苑"]},
    ...                          geometry=gpd.points_from_xy([116.33], [40.0]), crs=4326)
    >>> gates, rejects = load_gates(folder / "gates.csv", communities=known)
    >>> list(gates["gate_id"]), rejects.loc[0, "reason"]
    (['G1'], 'unknown community_id')
    """
    file = _check_file(path)
    crs_name = parse_crs(crs)
    source = _open_source(file, sheet=sheet, layer=layer, osm_reader=_osm_gates_unsupported)
    id_name = _pick_column(source, id_column, _GATE_ID_WORDS, argument="id_column")
    community_name = _pick_column(
        source, community_column, _GATE_COMMUNITY_WORDS, argument="community_column"
    )
    if community_name is None:
        raise InputError(
            "missing the column that names each gate's compound (community_id, 小区编号, "
            "小区名称, ...; or pass community_column=); columns found: "
            + ", ".join(source.attribute_columns),
            file=file,
        )
    notes: list[str] = []
    ledger = _Ledger(file, source.rows)
    geometry = _locate(
        source, ledger, crs_name=crs_name, lon=lon, lat=lat, location=location, notes=notes
    )
    community_ids = _gate_communities(source, community_name, communities, ledger, notes)
    ids = _ids(source, id_name, ledger, notes, "gate_id")
    _reject_duplicates(ids, ledger, id_name, "gate_id")
    geometry = _as_points(geometry, ledger.alive, notes, "gates")
    front = {"gate_id": _plain(ids), "community_id": _plain(community_ids)}
    return _assemble(source, ledger, front, geometry, notes)


def _osm_gates_unsupported(file: Path) -> gpd.GeoDataFrame:
    raise InputError(
        "gates cannot be read from OpenStreetMap files yet; use a table of gate points",
        file=file,
    )


def _gate_communities(
    source: _Source,
    column: str,
    communities: gpd.GeoDataFrame | None,
    ledger: _Ledger,
    notes: list[str],
) -> pd.Series:
    raw = source.table[column].reset_index(drop=True)
    values = _id_strings(raw)
    ledger.reject(values.isna().to_numpy(), R_EMPTY_COMMUNITY, column=column, values=raw)
    if communities is None:
        return values
    known_ids = pd.Index(_id_strings(communities["community_id"].reset_index(drop=True)))
    resolved = values.where(values.isin(known_ids), pd.NA)
    if "name" in communities.columns:
        names = communities["name"].astype("string").str.strip().reset_index(drop=True)
        unique_names = names[~names.duplicated(keep=False) & names.notna()]
        by_name = pd.Series(known_ids[unique_names.index], index=unique_names.to_numpy())
        from_name = values.map(by_name).astype("string")
        use_name = resolved.isna() & from_name.notna() & pd.Series(ledger.alive)
        if use_name.any():
            notes.append(f"{int(use_name.sum())} gates matched to their compound by name")
        resolved = resolved.fillna(from_name)
    ledger.reject(resolved.isna().to_numpy(), R_UNKNOWN_COMMUNITY, column=column, values=raw)
    return resolved


# ---------------------------------------------------------------------------
# GCJ-02 self-check
# ---------------------------------------------------------------------------


def detect_gcj02_shift(points: gpd.GeoSeries, lines: gpd.GeoSeries) -> str | None:
    """Say so when points fit the street network better as GCJ-02 than as given.

    Facilities copied from Amap or Tencent are in GCJ-02 and sit several
    hundred metres off an OpenStreetMap street network. This measures, in a
    local UTM projection, each point's distance to the nearest line as given
    and after the GCJ-02 correction. If the correction at least halves the
    median distance and gains at least 15 m, the points are judged GCJ-02.

    Parameters
    ----------
    points
        Facility or compound locations, EPSG:4326 (areas are reduced to a
        point on them).
    lines
        Street network edges, EPSG:4326.

    Returns
    -------
    str or None
        A message for the user, or None when nothing looks wrong.

    Examples
    --------
    >>> from lifecircle.coords import wgs84_to_gcj02
    >>> street = gpd.GeoSeries.from_wkt(["LINESTRING (116.30 40.0, 116.34 40.0)",
    ...                                  "LINESTRING (116.32 39.98, 116.32 40.02)"], crs=4326)
    >>> lon = np.array([116.305, 116.315, 116.325, 116.32, 116.32])
    >>> lat = np.array([40.0, 40.0, 40.0, 39.99, 40.01])
    >>> shifted = gpd.GeoSeries(gpd.points_from_xy(*wgs84_to_gcj02(lon, lat)), crs=4326)
    >>> detect_gcj02_shift(shifted, street).startswith("these look like GCJ-02")
    True
    >>> detect_gcj02_shift(gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326), street) is None
    True
    """
    located = _point_array(points)
    streets = gpd.GeoSeries(lines).dropna()
    streets = streets[~streets.is_empty]
    if len(located) == 0 or len(streets) == 0:
        return None
    wgs = gpd.GeoSeries(located, crs="EPSG:4326")
    local = wgs.estimate_utm_crs()
    tree = shapely.STRtree(_in_wgs84(streets).to_crs(local).to_numpy())
    as_given = np.median(_nearest_distance(tree, wgs.to_crs(local)))
    lon, lat = gcj02_to_wgs84(shapely.get_x(located), shapely.get_y(located))
    corrected = gpd.GeoSeries(shapely.points(lon, lat), crs="EPSG:4326").to_crs(local)
    after = np.median(_nearest_distance(tree, corrected))
    if after <= as_given / 2 and as_given - after >= _GCJ_MIN_GAIN_M:
        return (
            f"these look like GCJ-02 coordinates: {len(located)} points sit a median "
            f"{as_given:.0f} m from the street network as given and {after:.0f} m after "
            "GCJ-02 correction; load them with crs='gcj02'"
        )
    return None


def _in_wgs84(series: gpd.GeoSeries) -> gpd.GeoSeries:
    """The series in EPSG:4326; one without a CRS is taken to be in it already."""
    if series.crs is None:
        return series.set_crs("EPSG:4326")
    return series.to_crs("EPSG:4326")


def _point_array(points: gpd.GeoSeries) -> np.ndarray:
    values = _in_wgs84(gpd.GeoSeries(points)).dropna().to_numpy()
    values = values[~shapely.is_empty(values)]
    shaped = shapely.get_type_id(values) != 0
    values[shaped] = shapely.point_on_surface(values[shaped])
    return values


def _nearest_distance(tree: shapely.STRtree, points: gpd.GeoSeries) -> np.ndarray:
    _, distances = tree.query_nearest(points.to_numpy(), return_distance=True, all_matches=False)
    return distances
