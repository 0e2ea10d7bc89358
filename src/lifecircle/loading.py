"""Load facilities, residential compounds and compound gates as planners have them.

Supported inputs, chosen by file suffix:

* text tables ``.csv``, ``.tsv``, ``.txt`` in UTF-8 (with or without BOM),
  GBK/GB18030, Big5 (Traditional Chinese) or UTF-16 (Excel's "Unicode
  text", with or without BOM); the delimiter is guessed from the header line;
* Excel ``.xlsx``/``.xlsm`` (``sheet=`` picks a sheet, by name or 0-based index).
  Vertically merged cells (a 类型 cell over a group of rows) are filled down,
  header rows joined by merged header cells are combined (``坐标_经度``),
  and formulas saved without their value are named as such.
  In text and Excel tables, title rows above the header (rows filling at most
  one cell, such as "附表1：设施一览表") are skipped and row numbers still
  count from the top of the sheet; ``header_row=`` names the header row(s);
* GeoJSON (``.geojson``, ``.json``), GeoPackage (``.gpkg``; ``layer=`` is
  required when it has several layers),
  Shapefile (``.shp``; a DBF without ``.cpg`` is read as UTF-8, else as
  GBK/GB18030) and GeoParquet (``.parquet``; a plain Parquet table with
  coordinate columns works too);
* OpenStreetMap ``.osm``, ``.osm.bz2``, ``.osm.gz`` and ``.osm.pbf``
  (see :mod:`lifecircle.osm`).

Coordinates
-----------
Tables need coordinate columns: ``lon``/``lat``, ``lng``/``lat``,
``longitude``/``latitude``, ``x``/``y``, ``经度``/``纬度``, ``东经``/``北纬``,
or a single ``location``/``坐标``/``经纬度`` column holding ``"lng,lat"`` (separated
by ``,`` ``，`` ``、`` ``;`` ``；`` or spaces). Values may be decimal degrees
or degrees-minutes-seconds (``120°39'12"E``, ``北纬28度0分36秒``). Matching is
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

Projected metres where degrees are expected (CGCS2000 Gauss-Krüger X/Y,
with or without the zone prefix, in GIS or surveyor order; a GeoJSON in
metres without a ``crs`` member) raise an error naming the EPSG codes that
fit; with an explicit projected ``crs=`` surveyor order is read as such.
:func:`check_network_crs` does the same check for a street network file.

Row problems do not stop a load: each bad row goes to
:attr:`LoadResult.rejects` with its row number and the first reason found,
so that ``len(data) + len(rejects) == rows_read``. But a layer that loads no
row, or loses more than ``max_reject_share`` (half, by default) of its rows,
raises :class:`~lifecircle.errors.InputError` with the commonest reasons and
what to try; so do problems with the file itself. Text cells are cleaned of
control characters and cut to Excel's cell limit on loading
(:func:`clean_text`). :func:`gate_distance_warnings` reports gates far from
their compound.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from .coords import (
    axis_order,
    gcj02_to_wgs84,
    looks_projected,
    parse_crs,
    projected_crs_candidates,
    projected_crs_hint,
    to_wgs84,
)
from .errors import InputError, InternalError, MissingDataError
from .osm import is_osm_path, osm_facilities_table, osm_residential_table, read_osm_features

__all__ = [
    "DEFAULT_MAX_GATE_DISTANCE_M",
    "DEFAULT_MAX_REJECT_SHARE",
    "EXCEL_MAX_CHARS",
    "PERSONS_PER_HOUSEHOLD_2020",
    "REJECT_COLUMNS",
    "LoadResult",
    "check_network_crs",
    "clean_text",
    "dbf_code_page",
    "detect_gcj02_shift",
    "gate_distance_warnings",
    "gate_distances",
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

#: Share of rows a layer may lose to bad input before loading fails.
DEFAULT_MAX_REJECT_SHARE = 0.5

#: Columns of :attr:`LoadResult.rejects`.
REJECT_COLUMNS: tuple[str, ...] = ("file", "row", "column", "reason", "value")

# Rows searched for the header below title rows.
_TITLE_SCAN_ROWS = 10
# UTF-16 without a BOM: share of byte pairs with a zero byte on one side.
_UTF16_ZERO_SHARE = 0.2
# Big5 read as GBK: share of Han characters outside GB2312 (GBK text has almost none).
_BIG5_OUTSIDE_GB2312 = 0.2
#: Longest text an Excel cell holds; longer texts are cut on loading.
EXCEL_MAX_CHARS = 32767
# Characters an Excel cell cannot hold (openpyxl's illegal set, DEL, non-characters).
_CONTROL_CHARACTERS = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]"
# Rows below the header that may still belong to it (multi-row headers).
_MAX_HEADER_DEPTH = 3
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
R_FORMULA = "formula without a cached value"
R_GEOMETRY_MISSING = "geometry is missing or empty"
R_GEOMETRY_WKT = "geometry is not valid WKT"
R_GEOMETRY_RANGE = "geometry coordinates outside -180..180 / -90..90"
R_INVALID_POLYGON = "invalid polygon that make_valid could not repair"
R_NO_TYPE = "no facility type matched"
R_UNKNOWN_COMMUNITY = "unknown community_id"
R_EMPTY_COMMUNITY = "community_id is empty"

_COORDINATE_REASONS = frozenset(
    {
        R_COORD_EMPTY,
        R_COORD_NOT_NUMBER,
        R_LAT_RANGE,
        R_LON_RANGE,
        R_LOCATION_FORMAT,
        R_TRANSFORM,
        R_FORMULA,
    }
)
# Degrees, minutes and seconds as written in Chinese and Western sheets:
# 120°39'12.5"E, 北纬28°0′36″, 28度0分36秒 (after NFKC, ″ becomes ′′).
_HEMISPHERE = r"[NSEWnsew]|[东西南北][经纬]?"
_DMS = (
    rf"^\s*(?P<before>{_HEMISPHERE})?\s*(?P<deg>[+-]?\d+(?:\.\d+)?)\s*[°度º˚]\s*"
    r"(?:(?P<min>\d+(?:\.\d+)?)\s*(?:['′’]|分)\s*)?"
    r"(?:(?P<sec>\d+(?:\.\d+)?)\s*(?:\"|′′|''|”|秒)\s*)?"
    rf"(?P<after>{_HEMISPHERE})?\s*$"
)
_NEGATIVE_HEMISPHERES = ("S", "W", "西", "南")
# A single "lng,lat" cell: one of , 、 ; (full-width forms become these under NFKC),
# else whitespace between two values.
_LOCATION_SEPARATED = r"^\s*([^,、;]+?)\s*[,、;]\s*([^,、;]+?)\s*$"
_LOCATION_SPACED = r"^\s*(\S+)\s+(\S+)\s*$"

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
    path: PathArg,
    *,
    sheet: str | int | None = None,
    layer: str | None = None,
    header_row: int | Sequence[int] | None = None,
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
        Excel sheet name or 0-based index; the first sheet by default. When
        it is not given and the first sheet holds no table (notes, say), the
        error lists the sheets.
    layer
        GeoPackage layer; required when the file has several.
    header_row
        Spreadsheet row number (1-based) of the header in text and Excel
        files, or several consecutive row numbers for a multi-row header,
        whose cells are joined with ``_`` per column (``坐标_经度``). By
        default the header is the first row filling two or more cells, and in
        Excel the rows below it join the header while merged header cells
        span them and they hold no numbers.

    Raises
    ------
    InputError
        Missing, empty, undecodable or unsupported file, unknown sheet/layer,
        a ``header_row`` beyond the file,
        or a GeoPackage of several layers without ``layer``.

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
    header_rows = _header_rows(header_row)
    if header_rows is not None and kind not in ("text", "excel"):
        logger.info("%s: header_row applies to text and Excel tables only; ignored", file.name)
    if kind == "osm":
        return read_osm_features(file)
    if kind == "text":
        return _read_text(file, header_rows)
    if kind == "excel":
        return _read_excel(file, sheet, header_rows)
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
    from .formats import file_format

    return file_format(file, "table")


def _header_rows(header_row: int | Sequence[int] | None) -> tuple[int, ...] | None:
    """0-based positions of the header rows given as 1-based spreadsheet row numbers."""
    if header_row is None:
        return None
    rows = (header_row,) if isinstance(header_row, int) else tuple(header_row)
    if (
        not rows
        or not all(isinstance(r, int) and r >= 1 for r in rows)
        or list(rows) != list(range(rows[0], rows[0] + len(rows)))
    ):
        raise InputError(
            f"must be a row number (1 = first row) or consecutive row numbers, not {header_row!r}",
            column="header_row",
        )
    return tuple(r - 1 for r in rows)


def _read_text(file: Path, header_rows: tuple[int, ...] | None) -> pd.DataFrame:
    raw = file.read_bytes()
    if not raw.strip():
        raise InputError("file is empty", file=file)
    text, encoding = _decode(raw, file)
    text = text.lstrip("\ufeff")
    tab_separated = file.suffix.lower() == ".tsv"
    scan = max(_TITLE_SCAN_ROWS, (header_rows[-1] + 1) if header_rows else 0)
    first_lines = text.split("\n", scan)[:scan]
    fields = [
        next(csv.reader([line], delimiter="\t" if tab_separated else _guess_delimiter(line)), [])
        for line in first_lines
    ]
    header = _header_index(fields) if header_rows is None else header_rows[0]
    depth = 1 if header_rows is None else len(header_rows)
    if header + depth > len(first_lines):
        raise InputError(f"header_row {header + depth} is beyond the end of the file", file=file)
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
            header=0 if depth == 1 else None,
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
    notes = [f"read as {encoding} text", *_title_note(header)]
    if depth > 1:
        head = table.iloc[:depth].to_numpy(dtype=object)
        table = table.iloc[depth:].reset_index(drop=True)
        table.columns = _unique_headers(_combined_header(list(head)))
        notes.append(f"header rows {header + 1}-{header + depth} combined")
    table.attrs["notes"] = notes
    table.attrs["first_data_row"] = header + depth + 1
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
    """Decode UTF-16 (by BOM or by its zero bytes), UTF-8, Big5 or GB18030 (GBK)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "UTF-16"
    utf16 = _utf16_without_bom(raw)
    if utf16 is not None:
        try:
            return raw.decode(utf16), "UTF-16 (no BOM)"
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError as utf8_error:
        big5 = _as_big5(raw)
        if big5 is not None:
            return big5, "Big5 (Traditional Chinese)"
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


def _utf16_without_bom(raw: bytes) -> str | None:
    """``utf-16-le``/``-be`` when zero bytes fall on one side of most byte pairs.

    Tables are full of ASCII digits, separators and line ends, which UTF-16
    writes with a zero high byte; 8-bit encodings never contain zero bytes.
    """
    sample = raw[: 1 << 14]
    if len(sample) < 4 or len(raw) % 2:
        return None
    even = sample[0::2].count(0) / (len(sample) / 2)
    odd = sample[1::2].count(0) / (len(sample) / 2)
    if odd >= _UTF16_ZERO_SHARE and even < 0.01:
        return "utf-16-le"
    if even >= _UTF16_ZERO_SHARE and odd < 0.01:
        return "utf-16-be"
    return None


def _as_big5(raw: bytes) -> str | None:
    """The text as Big5 when it is Big5, not GBK; None otherwise.

    Most Big5 byte pairs are valid GB18030 too, so decoding alone cannot tell.
    Simplified Chinese in GBK stays almost entirely within GB2312, while Big5
    read as GBK gives many characters outside it (every Big5 trail byte below
    0xA1 lands in the GBK extension), so the share outside GB2312 decides.
    """
    try:
        big5 = raw.decode("cp950")
    except UnicodeDecodeError:
        return None
    gb = raw.decode("gb18030", errors="replace")
    han = [c for c in gb if "\u4e00" <= c <= "\u9fff"]
    if not han:
        return None
    outside = sum(1 for c in han if not _in_gb2312(c))
    return big5 if outside / len(han) >= _BIG5_OUTSIDE_GB2312 else None


def _in_gb2312(char: str) -> bool:
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _guess_delimiter(header_line: str) -> str:
    counts = {sep: header_line.count(sep) for sep in (",", "\t", ";", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


# A merged range as 0-based (first row, last row, first column, last column).
_Merge = tuple[int, int, int, int]


def _read_excel(
    file: Path, sheet: str | int | None, header_rows: tuple[int, ...] | None
) -> pd.DataFrame:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        # Not read-only: merged cell ranges are only known to a fully loaded sheet.
        workbook = openpyxl.load_workbook(file, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError) as exc:
        raise InputError(f"cannot open as an Excel workbook: {exc}", file=file) from exc
    try:
        worksheet = _pick_sheet(workbook, sheet, file)
        title, sheets = str(worksheet.title), list(workbook.sheetnames)
        rows = [list(row) for row in worksheet.iter_rows(values_only=True)]
        merges: list[_Merge] = [
            (m.min_row - 1, m.max_row - 1, m.min_col - 1, m.max_col - 1)
            for m in worksheet.merged_cells.ranges
        ]
    finally:
        workbook.close()
    notes = [f"read sheet {title!r}"]
    if not any(any(cell is not None for cell in row) for row in rows[:_TITLE_SCAN_ROWS]):
        raise InputError(f"sheet {title!r} is empty{_other_sheets(sheets, title)}", file=file)
    formulas = _uncached_formulas(file, title, rows)
    if formulas:
        notes.append(
            f"{formulas} cells hold formulas without a stored value (the file was not saved "
            "by Excel); open it in Excel or LibreOffice and save it to store the values"
        )
    if header_rows is None:
        header = _header_index(rows)
        block = _header_block(rows, merges, header)
    else:
        block = list(header_rows)
        if block[-1] >= len(rows):
            raise InputError(f"header_row {block[-1] + 1} is beyond the last row", file=file)
    header, last = block[0], block[-1]
    notes += _fill_merges(rows, merges, header, last)
    head = [rows[i] for i in block]
    names = _unique_headers(_combined_header(head))
    table = pd.DataFrame.from_records(rows[last + 1 :], columns=names)
    unnamed = [n for n, *cells in zip(names, *head, strict=True) if all(c is None for c in cells)]
    table = table.drop(columns=[c for c in unnamed if table[c].isna().all()])
    notes += _title_note(header)
    if len(block) > 1:
        notes.append(f"header rows {header + 1}-{last + 1} combined")
    table.attrs["notes"] = notes
    table.attrs["first_data_row"] = last + 2
    table.attrs["sheets"] = sheets
    return table


def _other_sheets(sheets: list[str], title: str) -> str:
    others = [name for name in sheets if name != title]
    return f"; the workbook's other sheets are {others} (choose with sheet=)" if others else ""


def _uncached_formulas(file: Path, title: str, rows: list[list[Any]]) -> int:
    """Put formula text where a formula has no stored value; return how many.

    Files written by scripts (openpyxl, pandas) keep formulas but no computed
    values, which an Excel reader sees as empty cells.
    """
    if not _has_uncached_formula(file):
        return 0
    import openpyxl

    workbook = openpyxl.load_workbook(file, read_only=True, data_only=False)
    count = 0
    try:
        for i, formula_row in enumerate(workbook[title].iter_rows(values_only=True)):
            if i >= len(rows):
                break
            row = rows[i]
            for j, cell in enumerate(formula_row[: len(row)]):
                if row[j] is None and isinstance(cell, str) and cell.startswith("="):
                    row[j] = cell
                    count += 1
    finally:
        workbook.close()
    return count


# A formula cell closed without a value (no <v>, or an empty one), in a worksheet's XML.
_UNCACHED_FORMULA = re.compile(rb"(?:</f>|<f[^>]*/>)\s*(?:<v\s*/>|<v>\s*</v>)?\s*</c>")


def _has_uncached_formula(file: Path) -> bool:
    """Cheap test on the raw worksheet XML before a second, formula-reading pass."""
    with zipfile.ZipFile(file) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        return any(_UNCACHED_FORMULA.search(archive.read(n)) for n in sheets if n.endswith(".xml"))


def _header_block(rows: Sequence[Sequence[Any]], merges: list[_Merge], header: int) -> list[int]:
    """The header row and the rows below that still belong to it.

    A row joins the header when a merged header cell reaches down into it or
    spans several columns above two or more of its cells (as "坐标" over "经度"
    and "纬度"), and it holds text but no numbers.
    """
    block = [header]
    while len(block) < _MAX_HEADER_DEPTH and block[-1] + 1 < len(rows):
        below = block[-1] + 1
        filled = [c is not None and str(c).strip() != "" for c in rows[below]]
        reaches = any(r0 <= block[-1] < below <= r1 for r0, r1, _, _ in merges)
        spans = any(
            r0 == r1 == block[-1] and c1 > c0 and sum(filled[c0 : c1 + 1]) >= 2
            for r0, r1, c0, c1 in merges
        )
        cells = [c for c, full in zip(rows[below], filled, strict=True) if full]
        if not (reaches or spans) or not cells or any(_looks_numeric(c) for c in cells):
            break
        block.append(below)
    return block


def _looks_numeric(cell: Any) -> bool:
    if isinstance(cell, int | float):
        return True
    try:
        float(unicodedata.normalize("NFKC", str(cell)).strip())
    except ValueError:
        return False
    return True


def _fill_merges(rows: list[list[Any]], merges: list[_Merge], header: int, last: int) -> list[str]:
    """Give every cell of a merged range its value: header merges in both directions,
    data merges down their rows only (a 类型 cell merged over a group of rows)."""
    filled = 0
    for r0, r1, c0, c1 in merges:
        in_header = r0 <= last and r1 >= header
        if not in_header and (r0 < header or r1 == r0):
            continue
        if r0 >= len(rows) or c0 >= len(rows[r0]):
            continue
        value = rows[r0][c0]
        for r in range(r0, min(r1, len(rows) - 1) + 1):
            for c in range(c0, min(c1, len(rows[r]) - 1) + 1):
                if (r, c) != (r0, c0):
                    rows[r][c] = value
                    filled += r > last
    if not filled:
        return []
    return [f"{filled} cells of vertically merged ranges filled with the merged value"]


def _combined_header(head: Sequence[Sequence[Any]]) -> list[Any]:
    """One name per column from one or more header rows: their distinct texts joined by '_'."""
    width = max(len(row) for row in head)
    names: list[Any] = []
    for column in range(width):
        parts: list[str] = []
        for row in head:
            cell = row[column] if column < len(row) else None
            text = "" if cell is None or pd.isna(cell) else str(cell).strip()
            if text and (not parts or parts[-1] != text):
                parts.append(text)
        names.append("_".join(parts) if parts else None)
    return names


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
        text = "" if cell is None else str(cell).strip()
        name = text or f"column_{position}"
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
        raise InputError(
            f"the file has {len(layers)} layers, {layers}; choose one with layer= (--layer)",
            file=file,
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
    sheets: list[str] = field(default_factory=list)

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
    header_row: int | Sequence[int] | None = None,
    osm_reader: Callable[[Path], gpd.GeoDataFrame],
) -> _Source:
    kind = _file_kind(file)
    table = (
        osm_reader(file)
        if kind == "osm"
        else read_table(file, sheet=sheet, layer=layer, header_row=header_row)
    )
    notes = list(table.attrs.get("notes", []))
    first_row = int(table.attrs.get("first_data_row", 1))
    sheets = [str(name) for name in table.attrs.get("sheets", [])]
    table.attrs = {}
    notes += _clean_table(table)
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
    return _Source(file=file, table=table, rows=rows, kind=kind, notes=notes, sheets=sheets)


def clean_text(series: pd.Series, *, max_chars: int = EXCEL_MAX_CHARS) -> pd.Series:
    """Text cells without control characters and no longer than ``max_chars``.

    NUL and the other C0 control characters (tab, line feed and carriage
    return excepted), DEL and the non-characters U+FFFE/U+FFFF are removed:
    Excel files cannot hold them and openpyxl refuses to write them. Texts
    longer than Excel's cell limit are cut. Cells that are not text are kept.

    Examples
    --------
    >>> clean_text(pd.Series(["示例\\x00幼儿园", 5, "a" * 9]), max_chars=6).tolist()
    ['示例幼儿园', 5, 'aaaaaa']
    """
    values = series.to_numpy(dtype=object)
    is_text = np.array([isinstance(v, str) for v in values], dtype=bool)
    if not is_text.any():
        return series
    text = pd.Series(values[is_text], dtype=object).str.replace(_CONTROL_CHARACTERS, "", regex=True)
    text = text.str.slice(0, max_chars)
    out = values.copy()
    out[is_text] = text.to_numpy(dtype=object)
    return pd.Series(out, index=series.index, name=series.name, dtype=series.dtype)


def _clean_table(table: pd.DataFrame, max_chars: int = EXCEL_MAX_CHARS) -> list[str]:
    """Clean every text column in place (see :func:`clean_text`); say what changed."""
    geometry = table.geometry.name if isinstance(table, gpd.GeoDataFrame) else None
    controlled: dict[str, int] = {}
    cut: dict[str, int] = {}
    for column in table.columns:
        values = table[column]
        if column == geometry or not (
            values.dtype == object or pd.api.types.is_string_dtype(values)
        ):
            continue
        text = values.astype("string")
        has_control = text.str.contains(_CONTROL_CHARACTERS, regex=True).fillna(False)
        too_long = (text.str.len() > max_chars).fillna(False)
        if has_control.any() or too_long.any():
            table[column] = clean_text(values, max_chars=max_chars)
        if has_control.any():
            controlled[str(column)] = int(has_control.sum())
        if too_long.any():
            cut[str(column)] = int(too_long.sum())
    notes = []
    if controlled:
        listed = ", ".join(f"{c} ({n})" for c, n in controlled.items())
        notes.append(f"control characters (NUL and the like) removed from cells of {listed}")
    if cut:
        listed = ", ".join(f"{c} ({n})" for c, n in cut.items())
        notes.append(f"texts longer than {max_chars} characters (Excel's limit) cut in {listed}")
    return notes


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


def _parse_coordinates(series: pd.Series) -> _Numbers:
    """Decimal degrees, or degrees-minutes-seconds, from raw cells."""
    numbers = _parse_numbers(series)
    if not numbers.not_number.any():
        return numbers
    text = series.astype("string").str.normalize("NFKC")
    parts = text.str.extract(_DMS)
    degrees = pd.to_numeric(parts["deg"], errors="coerce").to_numpy(dtype=float)
    minutes = pd.to_numeric(parts["min"], errors="coerce").fillna(0).to_numpy(dtype=float)
    seconds = pd.to_numeric(parts["sec"], errors="coerce").fillna(0).to_numpy(dtype=float)
    hemisphere = parts["before"].fillna(parts["after"]).fillna("").str.upper()
    south_west = hemisphere.str.startswith(_NEGATIVE_HEMISPHERES).to_numpy(dtype=bool)
    value = np.abs(degrees) + minutes / 60 + seconds / 3600
    value = np.where(south_west | (degrees < 0), -value, value)
    usable = numbers.not_number & np.isfinite(value) & (minutes < 60) & (seconds < 60)
    values = np.where(usable, value, numbers.values)
    return _Numbers(values, numbers.empty, numbers.not_number & ~usable)


def _formula_cells(raw: pd.Series) -> np.ndarray:
    """Cells holding formula text: an Excel formula whose value was never stored."""
    text = raw.astype("string").str.lstrip()
    return text.str.startswith("=").fillna(False).to_numpy(dtype=bool)


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
            f"columns found: {', '.join(columns)}{_sheet_hint(source)}",
            file=source.file,
        )
    if pair is None:
        lon_name = lat_name = str(location_column)
        x, y, lon_raw, lat_raw = _split_location(table[lon_name], ledger, lon_name)
        hint_columns = [lon_name]
    else:
        lon_name, lat_name = pair
        lon_raw, lat_raw = table[lon_name], table[lat_name]
        x, y = _parse_coordinates(lon_raw), _parse_coordinates(lat_raw)
        for numbers, name, raw in ((x, lon_name, lon_raw), (y, lat_name, lat_raw)):
            ledger.reject(_formula_cells(raw), R_FORMULA, column=name, values=raw)
            ledger.reject(numbers.empty, R_COORD_EMPTY, column=name, values=raw)
            ledger.reject(numbers.not_number, R_COORD_NOT_NUMBER, column=name, values=raw)
        hint_columns = [lon_name, lat_name]
    _warn_datum_hint(hint_columns, crs_name, source, notes)
    lon_values, lat_values = x.values, y.values
    alive = ledger.alive
    if _is_geographic(crs_name) and looks_projected(lon_values[alive], lat_values[alive]):
        raise _projected_error(source, lon_name, lat_name, lon_values[alive], lat_values[alive])
    if not _is_geographic(crs_name) and axis_order(lon_values[alive], lat_values[alive]) == "yx":
        message = (
            f"columns {lon_name} and {lat_name} are in surveyor order (X northing, Y easting); "
            "read them as easting, northing"
        )
        logger.warning("%s: %s", source.file.name, message)
        notes.append(message)
        lon_values, lat_values = lat_values, lon_values
        lon_name, lat_name = lat_name, lon_name
        lon_raw, lat_raw = lat_raw, lon_raw
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


def _require_a_table(source: _Source) -> None:
    """A sheet of one column is notes, not a table, in a workbook of several sheets."""
    if source.kind != "excel" or len(source.sheets) < 2 or len(source.attribute_columns) > 1:
        return
    raise InputError(
        f"this sheet holds no table (columns found: {', '.join(source.attribute_columns)})"
        + _sheet_hint(source),
        file=source.file,
    )


def _sheet_hint(source: _Source) -> str:
    if len(source.sheets) < 2:
        return ""
    return f"; the workbook has sheets {source.sheets}: is it another one (sheet=, --sheet)?"


def _split_location(
    values: pd.Series, ledger: _Ledger, column: str
) -> tuple[_Numbers, _Numbers, pd.Series, pd.Series]:
    """Single-cell "lng,lat" values, as Amap and survey sheets write them.

    The two values may be separated by ``,`` ``，`` ``、`` ``;`` ``；`` or
    whitespace, and each may be decimal or degrees-minutes-seconds.
    """
    text = values.astype("string").str.normalize("NFKC").str.strip()
    empty = (text.isna() | (text == "")).to_numpy(dtype=bool)
    ledger.reject(_formula_cells(values), R_FORMULA, column=column, values=values)
    ledger.reject(empty, R_COORD_EMPTY, column=column, values=values)
    parts = text.str.extract(_LOCATION_SEPARATED)
    spaced = text.str.extract(_LOCATION_SPACED)
    parts = parts.where(parts[0].notna(), spaced)
    malformed = parts[0].isna().to_numpy(dtype=bool)
    ledger.reject(malformed, R_LOCATION_FORMAT, column=column, values=values)
    x, y = _parse_coordinates(parts[0]), _parse_coordinates(parts[1])
    ledger.reject(x.not_number | y.not_number, R_COORD_NOT_NUMBER, column=column, values=values)
    return x, y, values, values


def _projected_error(
    source: _Source, lon_name: str, lat_name: str, x: np.ndarray, y: np.ndarray
) -> InputError:
    """Metres where degrees were expected: say so, and which EPSG codes fit."""
    where = f"columns {lon_name} and {lat_name}" if lon_name != lat_name else f"column {lon_name}"
    return _metres_error(source.file, where, x, y)


def _metres_error(file: Path, where: str, x: np.ndarray, y: np.ndarray) -> InputError:
    order = axis_order(x, y)
    surveyor = ""
    if order == "yx":
        x, y = y, x
        surveyor = " in surveyor order (X northing, Y easting)"
    return InputError(
        f"{where} hold projected coordinates in metres{surveyor}, not degrees "
        f"(median {np.median(x):.0f}, {np.median(y):.0f}); {projected_crs_hint(x, y)}",
        file=file,
    )


# True while a layer declared ``auto`` is loaded: its system is measured against
# the streets afterwards, so a hint from its column names would be beside the point
_DATUM_MEASURED: ContextVar[bool] = ContextVar("datum_measured", default=False)


def _warn_datum_hint(
    columns: Sequence[str], crs_name: str, source: _Source, notes: list[str]
) -> None:
    """Column names like gcj02_lng or a typecode column say a lot about the datum."""
    if _DATUM_MEASURED.get():
        return  # crs auto: the layer is read in the system that fits the streets best
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
    if not crs_name.startswith("EPSG:") and (declared is None or declared.is_geographic):
        # A GeoJSON without a "crs" member counts as WGS84, whatever its numbers are.
        centres = shapely.bounds(geometry.to_numpy()[ledger.alive])
        x, y = (centres[:, 0] + centres[:, 2]) / 2, (centres[:, 1] + centres[:, 3]) / 2
        if looks_projected(x, y):
            said = "no CRS" if declared is None else f"{declared.name} (degrees)"
            raise _metres_error(source.file, f"the geometry (the file declares {said})", x, y)
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
    ledger.reject(
        np.asarray(outside, dtype=bool),
        R_GEOMETRY_RANGE,
        column="geometry",
        values=_bounds_text(bounds),
    )
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
    max_reject_share: float | None,
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
    for note in result.notes:
        logger.info("%s: %s", source.file.name, note)
    if max_reject_share is not None:
        _require_most_rows(result, max_reject_share)
    if len(result.data) == 0:
        logger.warning("%s; nothing was loaded", result.summary())
    else:
        logger.info(result.summary())
    return result


def _check_share(max_reject_share: float | None) -> None:
    if max_reject_share is None:
        return
    if not (np.isfinite(max_reject_share) and 0 <= max_reject_share <= 1):
        raise InputError(
            f"must be between 0 and 1, not {max_reject_share!r}", column="max_reject_share"
        )


def _require_most_rows(result: LoadResult, max_reject_share: float) -> None:
    """Fail when nothing loaded, or when bad rows exceed ``max_reject_share`` of those read.

    Facilities of no known type are out of scope rather than broken (a POI
    export holds restaurants too), so they count only when nothing is left.
    """
    reasons = result.rejects["reason"].astype(str)
    lost = int((reasons != R_NO_TYPE).sum())
    if len(result.data) and lost <= max_reject_share * result.rows_read:
        return
    top = result.rejects.groupby("reason", sort=False).agg(
        count=("row", "size"),
        row=("row", "first"),
        column=("column", "first"),
        value=("value", "first"),
    )
    top = top.sort_values("count", ascending=False, kind="stable").head(3)
    listed = "; ".join(
        f"{reason}: {int(item['count'])} rows (e.g. row {item['row']}"
        + (f", column {item['column']}" if isinstance(item["column"], str) else "")
        + (f", value {str(item['value'])[:40]!r}" if str(item["value"]) else "")
        + ")"
        for reason, item in top.iterrows()
    )
    hints = list(dict.fromkeys(_reject_hint(str(reason)) for reason in top.index))
    what = (
        "no row loaded"
        if len(result.data) == 0
        else f"{lost} of {result.rows_read} rows rejected, more than the "
        f"{max_reject_share:.0%} allowed (max_reject_share)"
    )
    raise InputError(
        f"{what}: {result.summary()}. Most common reasons: {listed}. To try: "
        + "; ".join(h for h in hints if h),
        file=Path(result.source).name,
    )


def _reject_hint(reason: str) -> str:
    """What to try against the commonest kinds of rejected rows."""
    if reason == R_FORMULA:
        return (
            "the cells hold formulas whose values were never stored: open the file in "
            "Excel or LibreOffice and save it"
        )
    if reason in (R_COORD_EMPTY, R_COORD_NOT_NUMBER, R_LOCATION_FORMAT):
        return (
            "check that the header row was found (header_row=, --header-row) and the sheet "
            "is the right one (sheet=, --sheet), or name the coordinate columns with lon=, "
            "lat= or location="
        )
    if reason in (R_LAT_RANGE, R_LON_RANGE, R_GEOMETRY_RANGE, R_TRANSFORM):
        return "say which coordinate system the values are in with crs= (an EPSG code)"
    if reason == R_NO_TYPE:
        return "name the type column with type_column= or check the facility types"
    if reason in (R_UNKNOWN_COMMUNITY, R_EMPTY_COMMUNITY):
        return (
            "check that each gate names its compound by the compounds file's community_id "
            "or unique name (community_column=)"
        )
    if reason.startswith("duplicate"):
        return "name the id column with id_column="
    return "see the rejected rows for details, or raise max_reject_share="


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
    header_row: int | Sequence[int] | None = None,
    max_reject_share: float | None = DEFAULT_MAX_REJECT_SHARE,
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
    sheet, layer, header_row
        Excel sheet, GeoPackage layer and header row number(s); see
        :func:`read_table`.
    max_reject_share
        Share of the rows read that may be rejected before the load fails
        (facilities of no known type do not count); None never fails. A
        layer that loads no row always fails.

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
    _check_share(max_reject_share)
    source = _open_source(
        file, sheet=sheet, layer=layer, header_row=header_row, osm_reader=osm_facilities_table
    )
    id_name = _pick_column(source, id_column, _FACILITY_ID_WORDS, argument="id_column")
    name_name = _pick_column(source, name_column, _FACILITY_NAME_WORDS, argument="name_column")
    type_name = _pick_column(source, type_column, _TYPE_WORDS, argument="type_column")
    capacity_name = _pick_column(
        source, capacity_column, _CAPACITY_WORDS, argument="capacity_column"
    )
    _require_a_table(source)
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
    return _assemble(source, ledger, front, geometry, notes, max_reject_share)


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
    header_row: int | Sequence[int] | None = None,
    max_reject_share: float | None = DEFAULT_MAX_REJECT_SHARE,
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
    crs, lon, lat, location, sheet, layer, header_row, max_reject_share
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
    _check_share(max_reject_share)
    source = _open_source(
        file,
        sheet=sheet,
        layer=layer,
        header_row=header_row,
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
        # residents are whole people: households x 2.62 is rounded once, here
        "population": np.round(
            np.where(np.isnan(population), households * persons_per_household, population)
        ),
        "households": households,
    }
    return _assemble(source, ledger, front, geometry, notes, max_reject_share)


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
    header_row: int | Sequence[int] | None = None,
    max_reject_share: float | None = DEFAULT_MAX_REJECT_SHARE,
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
    crs, lon, lat, location, sheet, layer, header_row, max_reject_share
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
    _check_share(max_reject_share)
    source = _open_source(
        file, sheet=sheet, layer=layer, header_row=header_row, osm_reader=_osm_gates_unsupported
    )
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
    return _assemble(source, ledger, front, geometry, notes, max_reject_share)


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
# Checks across layers
# ---------------------------------------------------------------------------

#: Distance from its compound beyond which a gate is reported.
DEFAULT_MAX_GATE_DISTANCE_M = 500.0
# Far gates listed one by one before the rest are only counted.
_LISTED_GATES = 10


def gate_distances(gates: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> pd.Series:
    """Metres from each gate to its own compound (0 inside a compound's polygon).

    Parameters
    ----------
    gates
        ``load_gates(...).data``: ``community_id`` and point geometry.
    communities
        ``load_communities(...).data``: ``community_id`` and point or polygon geometry.

    Returns
    -------
    pandas.Series
        Indexed like ``gates``; NaN for a gate whose compound is unknown.
    """
    if len(gates) == 0:
        return pd.Series([], index=gates.index, dtype=float)
    local = _in_wgs84(gpd.GeoSeries(gates.geometry)).estimate_utm_crs()
    shapes = gpd.GeoSeries(communities.geometry).set_axis(
        _id_strings(communities["community_id"].reset_index(drop=True)).to_numpy()
    )
    shapes = shapes[~shapes.index.duplicated()]
    owner = _id_strings(gates["community_id"].reset_index(drop=True))
    known = owner.isin(shapes.index).to_numpy()
    distance = np.full(len(gates), np.nan)
    if known.any():
        own = _in_wgs84(shapes).to_crs(local).reindex(owner[known].to_numpy())
        points = _in_wgs84(gpd.GeoSeries(gates.geometry)).to_crs(local).to_numpy()[known]
        distance[known] = shapely.distance(points, own.to_numpy())
    return pd.Series(distance, index=gates.index, name="distance_m")


def gate_distance_warnings(
    gates: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    max_m: float = DEFAULT_MAX_GATE_DISTANCE_M,
) -> list[str]:
    """Say which gates lie farther than ``max_m`` from their compound.

    A gate two kilometres from its compound is almost always a wrong
    ``community_id`` or a typing error in its coordinates, and it would make
    the compound's walking distances wrong without any other sign.

    Parameters
    ----------
    gates, communities
        As for :func:`gate_distances`.
    max_m
        Distance in metres; a gate exactly at it is not reported.

    Returns
    -------
    list of str
        One warning per far gate (the first ten; then one line counting the
        rest), empty when every gate is near its compound.

    Examples
    --------
    >>> xq = gpd.GeoDataFrame({"community_id": ["XQ1"]},
    ...     geometry=gpd.points_from_xy([116.33], [40.0]), crs=4326)
    >>> gates = gpd.GeoDataFrame({"gate_id": ["G1", "G2"], "community_id": ["XQ1", "XQ1"]},
    ...     geometry=gpd.points_from_xy([116.331, 116.33], [40.0, 40.02]), crs=4326)
    >>> [message[:44] for message in gate_distance_warnings(gates, xq)]
    ['gate G2 lies 2220 m from its compound XQ1 (m']
    """
    if not (np.isfinite(max_m) and max_m > 0):
        raise InputError(f"must be a positive distance, not {max_m!r}", column="max_m")
    distance = gate_distances(gates, communities)
    far = np.flatnonzero((distance > max_m).to_numpy())
    messages = []
    for position in far[:_LISTED_GATES]:
        gate = gates.iloc[position]
        where = ""
        if "source_file" in gates.columns and "source_row" in gates.columns:
            where = f" ({gate['source_file']}, row {gate['source_row']})"
        messages.append(
            f"gate {gate.get('gate_id', position)}{where} lies {distance.iloc[position]:.0f} m "
            f"from its compound {gate['community_id']} (more than {max_m:g} m): check its "
            "compound or its coordinates"
        )
    if len(far) > _LISTED_GATES:
        messages.append(
            f"{len(far) - _LISTED_GATES} more gates lie more than {max_m:g} m from their compound"
        )
    for message in messages:
        logger.warning(message)
    return messages


def check_network_crs(
    source: PathArg | gpd.GeoDataFrame | gpd.GeoSeries,
    *,
    layer: str | None = None,
    name: str = "the street network",
) -> None:
    """Refuse a street network whose coordinates are metres but whose CRS says degrees or nothing.

    Without this, such a file fails deep inside with "Unable to determine
    UTM CRS". Files are checked from their header (CRS and extent) without
    reading the features.

    Parameters
    ----------
    source
        A network file readable by GDAL (not OpenStreetMap, which is always
        WGS84), or a GeoDataFrame or GeoSeries of lines.
    layer
        Layer of a multi-layer file.
    name
        What the error calls a GeoDataFrame or GeoSeries (the file it was read from).

    Raises
    ------
    InputError
        Naming the EPSG codes the coordinates fit.
    """
    if isinstance(source, gpd.GeoDataFrame | gpd.GeoSeries):
        crs, bounds = source.crs, np.asarray(source.total_bounds)
    else:
        file = Path(source)
        if is_osm_path(file) or file.suffix.lower() in (".graphml", ".pbf"):
            return
        import pyogrio

        try:
            info = pyogrio.read_info(file, layer=layer, force_total_bounds=True)
        except Exception as exc:  # pyogrio raises several unrelated types; the loader reports them
            logger.debug("cannot check the CRS of %s: %s", file, exc)
            return
        crs = pyproj.CRS(info["crs"]) if info.get("crs") else None
        bounds, name = np.asarray(info["total_bounds"], dtype=float), str(file)
    if crs is not None and not pyproj.CRS(crs).is_geographic:
        return
    x, y = bounds[[0, 2]], bounds[[1, 3]]
    if not looks_projected(x, y):
        return
    order = axis_order(x, y)
    if order == "yx":
        x, y = y, x
    codes = projected_crs_candidates(x, y)
    said = "no CRS" if crs is None else f"{pyproj.CRS(crs).name} (degrees)"
    fits = ", ".join(codes[:4]) if 0 < len(codes) <= 4 else "a CGCS2000 Gauss-Krüger or UTM zone"
    raise InputError(
        f"the street network's coordinates are metres (x {bounds[0]:.0f}..{bounds[2]:.0f}, "
        f"y {bounds[1]:.0f}..{bounds[3]:.0f}) but it declares {said}; they fit {fits}: "
        "save it with that CRS (or reproject it to EPSG:4326) and load it again",
        file=name,
    )


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


# ---------------------------------------------------------------------------
# Every layer of a study, loaded and checked together
# ---------------------------------------------------------------------------


@dataclass
class LoadReport:
    """What was read from each input file, and what was rejected and why."""

    source: str
    kind: str
    rows_read: int
    loaded: int
    rejects: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (reasons counted, not listed)."""
        reasons = self.rejects["reason"].value_counts().to_dict() if len(self.rejects) else {}
        return {
            "source": self.source,
            "kind": self.kind,
            "rows_read": self.rows_read,
            "loaded": self.loaded,
            "rejected": len(self.rejects),
            "rejected_by_reason": {str(k): int(v) for k, v in reasons.items()},
            "notes": list(self.notes),
        }


def load_boundary(path: PathArg) -> gpd.GeoDataFrame:
    """The study-area polygon(s) from a GIS file, in WGS84.

    Refuses, naming the file, what is not a boundary: a table without
    geometries, points or lines, an empty layer, or a file without a CRS.
    """
    from .formats import file_format

    file = Path(path)
    file_format(file, "boundary")
    try:
        frame = gpd.read_file(file)
    except Exception as exc:  # pyogrio raises its own error types for unreadable files
        raise InputError(f"cannot read the boundary: {exc}", file=file) from None
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.isna().all() or frame.empty:
        raise InputError("the boundary file holds no polygon", file=file)
    polygonal = frame.geom_type.isin(["Polygon", "MultiPolygon"])
    if not polygonal.all():
        row = int(np.flatnonzero(~polygonal.to_numpy())[0]) + 1
        kind = frame.geom_type.iloc[row - 1]
        raise InputError(f"the boundary must be polygons, not {kind}", file=file, row=row)
    if frame.crs is None:
        raise InputError("the boundary file has no coordinate system (CRS)", file=file)
    return frame.to_crs(4326)


def load_report(result: Any, kind: str) -> LoadReport:
    """What one loaded input contributed: rows read, loaded, rejected, notes."""
    return LoadReport(
        source=str(result.source),
        kind=kind,
        rows_read=int(result.rows_read),
        loaded=len(result.data),
        rejects=result.rejects,
        notes=list(result.notes),
    )


def concat_facilities(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Facilities from several files in one table, ids made unique by file."""
    if not frames:
        raise MissingDataError("no facility file given")
    fac = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)
    duplicated = fac["facility_id"].astype(str).duplicated(keep=False)
    if duplicated.any():
        # ids from different files may collide; keep them unique and traceable
        fac.loc[duplicated, "facility_id"] = (
            fac.loc[duplicated, "source_file"].map(lambda p: Path(str(p)).stem)
            + ":"
            + fac.loc[duplicated, "facility_id"].astype(str)
        )
    return fac


def join_capacity(facilities: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    """Add capacities (seats, beds) from a table of facility ``id`` and ``capacity``."""
    table = read_table(path)
    if not {"id", "capacity"} <= set(table.columns):
        raise InputError("the capacity table needs the columns id and capacity", file=path)
    first_row = int(table.attrs.get("first_data_row", 2))
    ids = table["id"].astype(str).str.strip()
    blank = ids.isin(["", "nan", "None"]) & table["capacity"].astype(str).str.strip().isin(
        ["", "nan", "None"]
    )
    table, ids = table[~blank.to_numpy()], ids[~blank.to_numpy()]
    capacity = pd.to_numeric(table["capacity"], errors="coerce")
    bad = capacity.isna() | (capacity < 0)
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            "capacity must be a non-negative number",
            file=path,
            row=int(table.index[position]) + first_row,
            column="capacity",
        )
    lookup = pd.Series(capacity.to_numpy(), index=ids.to_numpy())
    joined = facilities["facility_id"].astype(str).map(lookup)
    out = facilities.copy()
    existing = out["capacity"] if "capacity" in out else pd.Series(np.nan, index=out.index)
    out["capacity"] = joined.where(joined.notna(), existing).astype(float)
    unknown = ~ids.isin(facilities["facility_id"].astype(str))
    if unknown.any():
        logger.warning("%s: %d capacity rows name no loaded facility", path, int(unknown.sum()))
    return out


_CRS_OPTION = {
    "facilities": "--facilities-crs",
    "communities": "--communities-crs",
    "gates": "--gates-crs",
    "candidates": "--candidates-crs",
}


@dataclass
class StudyLayers:
    """Every input layer of a study, loaded, with what the checks found."""

    network: Any
    facilities: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    gates: gpd.GeoDataFrame | None
    boundary: gpd.GeoDataFrame | None
    reports: list[LoadReport]
    inputs: dict[str, str]
    datum_fits: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    districts: gpd.GeoDataFrame | None = None


def load_layers(
    network: PathArg,
    facilities: PathArg | Sequence[PathArg],
    communities: PathArg,
    *,
    gates: PathArg | None = None,
    boundary: PathArg | None = None,
    capacity: PathArg | None = None,
    districts: PathArg | None = None,
    options: Any = None,
    taxonomy: TaxonomyLike | None = None,
) -> StudyLayers:
    """Load the network and every layer of a study, and check them against each other.

    The small files come first, so that a bad one fails before the network is
    read. Each point or polygon layer is then checked against the streets
    under every coordinate reading (:func:`lifecircle.datum.fit_layer`): a
    layer declared ``auto`` is read in the best fit, and a declared system
    that another reading beats clearly gives a warning naming the option to
    pass. Gates far from their compound are warned about too.

    Parameters
    ----------
    network, facilities, communities, gates, boundary, capacity
        Paths of the inputs (``facilities`` may be several).
    options
        :class:`lifecircle.options.Options` (coordinate systems, sheet,
        header row, layer, the reject share).
    taxonomy
        Facility types to classify with (default: the packaged taxonomy).
    """
    from .datum import AUTO, fit_layer
    from .network import load_network
    from .options import Options

    opts: Options = options or Options()
    read: dict[str, Any] = {
        "sheet": opts.sheet_value(),
        "layer": opts.layer,
        "header_row": opts.header_rows(),
        "max_reject_share": opts.max_reject_share,
    }
    boundary_frame = load_boundary(boundary) if boundary is not None else None
    district_frame = None
    if districts is not None:
        from .onemap import load_districts

        district_frame = load_districts(districts)
    net = load_network(network)  # which checks that the coordinates fit the CRS
    paths = [facilities] if isinstance(facilities, str | PathLike) else list(facilities)
    reports: list[LoadReport] = []
    fits: list[dict[str, Any]] = []
    warnings: list[str] = []

    def declared(layer: str) -> str:
        return opts.layer_crs(layer)

    def as_loaded(layer: str) -> str:
        return "wgs84" if declared(layer).lower() == AUTO else declared(layer)

    def checked(frame: gpd.GeoDataFrame, layer: str, source: str) -> gpd.GeoDataFrame:
        if not len(frame):
            return frame
        frame, fit = fit_layer(
            frame,
            declared(layer),
            net,
            layer=layer,
            source=source,
            option=_CRS_OPTION.get(layer, "--crs"),
        )
        fits.append(fit.to_dict())
        if fit.mismatch and fit.message:
            warnings.append(fit.message)
        return frame

    frames = []
    for path in paths:
        with _measured(declared("facilities")):
            result = load_facilities(path, crs=as_loaded("facilities"), taxonomy=taxonomy, **read)
        reports.append(load_report(result, "facilities"))
        frames.append(checked(result.data, "facilities", str(path)))
    fac = concat_facilities(frames)
    if capacity is not None:
        fac = join_capacity(fac, Path(capacity))
    with _measured(declared("communities")):
        comm = load_communities(communities, crs=as_loaded("communities"), **read)
    reports.append(load_report(comm, "communities"))
    comm_frame = checked(comm.data, "communities", str(communities))
    gate_frame = None
    gate_source = gates if gates is not None else communities
    if is_osm_path(gate_source):
        # entrances mapped on the compounds' outlines are their gates
        gate_frame = _osm_gates(gate_source, comm_frame, reports)
    elif gates is not None:
        with _measured(declared("gates")):
            gate_result = load_gates(gates, communities=comm_frame, crs=as_loaded("gates"), **read)
        reports.append(load_report(gate_result, "gates"))
        gate_frame = checked(gate_result.data, "gates", str(gates))
    if gate_frame is not None:
        warnings += gate_distance_warnings(gate_frame, comm_frame)
    inputs = {
        "network": str(network),
        "facilities": ";".join(str(p) for p in paths),
        "communities": str(communities),
        **({"gates": str(gates)} if gates else {}),
        **({"boundary": str(boundary)} if boundary else {}),
        **({"capacity": str(capacity)} if capacity else {}),
        **({"districts": str(districts)} if districts else {}),
    }
    return StudyLayers(
        net,
        fac,
        comm_frame,
        gate_frame,
        boundary_frame,
        reports,
        inputs,
        datum_fits=fits,
        warnings=warnings,
        districts=district_frame,
    )


def _osm_gates(
    path: PathArg, communities: gpd.GeoDataFrame, reports: list[LoadReport]
) -> gpd.GeoDataFrame | None:
    """Gates from the entrances on the compounds' outlines in an OSM file, if any."""
    from .osm import osm_gates_table

    table = osm_gates_table(path, communities)
    notes = list(table.attrs.get("notes", []))
    empty = pd.DataFrame(columns=["file", "row", "column", "reason", "value"])
    reports.append(LoadReport(str(path), "gates", len(table), len(table), empty, notes))
    if not len(table):
        return None
    logger.info("%d gates from the entrances mapped on the compounds' outlines", len(table))
    return table


@contextmanager
def _measured(declared: str) -> Iterator[None]:
    """While loading a layer declared ``auto``, its system is left to the street fit."""
    token = _DATUM_MEASURED.set(declared.lower() == "auto")
    try:
        yield
    finally:
        _DATUM_MEASURED.reset(token)
