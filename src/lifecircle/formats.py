"""One table of file formats: which suffixes mean what, and which layer takes which.

Every reader asks :func:`file_format`, so a format listed here is accepted by
every layer that can hold it (a FlatGeobuf ``.fgb`` as a network, facilities,
compounds, gates, candidates or a boundary), and a file is refused with the
same message everywhere.

>>> file_format("pois.fgb", "facilities"), file_format("streets.osm.gz", "network")
('geo', 'osm')
>>> try:
...     file_format("gates.osm", "gates")
... except InputError as exc:
...     print(exc.message.split(";")[0])
the gates layer cannot be read from an OpenStreetMap file
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from .errors import InputError

__all__ = ["FORMATS", "LAYER_FORMATS", "Format", "file_format", "suffixes_of"]


@dataclass(frozen=True)
class Format:
    """A family of files read the same way."""

    kind: str
    suffixes: tuple[str, ...]
    label: str


FORMATS: tuple[Format, ...] = (
    Format(
        "osm",
        (".osm", ".osm.bz2", ".osm.gz", ".osm.xml", ".osm.pbf", ".pbf"),
        "an OpenStreetMap file",
    ),
    Format("graphml", (".graphml",), "an osmnx GraphML file"),
    Format("text", (".csv", ".tsv", ".txt"), "a text table"),
    Format("excel", (".xlsx", ".xlsm"), "an Excel workbook"),
    Format("geo", (".geojson", ".json", ".gpkg", ".shp", ".fgb", ".zip"), "a GIS file"),
    Format("parquet", (".parquet", ".geoparquet"), "a (Geo)Parquet file"),
)

# Which kinds of file each layer can be read from.
LAYER_FORMATS: dict[str, tuple[str, ...]] = {
    "network": ("osm", "graphml", "geo", "parquet"),
    "facilities": ("osm", "text", "excel", "geo", "parquet"),
    "communities": ("osm", "text", "excel", "geo", "parquet"),
    "gates": ("text", "excel", "geo", "parquet"),
    "candidates": ("text", "excel", "geo", "parquet"),
    "capacity": ("text", "excel", "geo", "parquet"),
    "boundary": ("geo", "parquet"),
    "districts": ("geo", "parquet"),
    "table": ("text", "excel", "geo", "parquet", "osm"),
}


def suffixes_of(layer: str) -> tuple[str, ...]:
    """Every suffix the layer accepts, in table order."""
    kinds = LAYER_FORMATS[layer]
    return tuple(s for f in FORMATS if f.kind in kinds for s in f.suffixes)


def _format_of(name: str) -> Format | None:
    # longest suffix first: ".osm.pbf" before ".pbf", ".osm.gz" before ".gz"
    hits = [(len(s), f) for f in FORMATS for s in f.suffixes if name.endswith(s)]
    return max(hits, key=lambda hit: hit[0])[1] if hits else None


def file_format(path: str | PathLike[str], layer: str) -> str:
    """The kind of ``path`` (``osm``, ``text``, ``excel``, ``geo``, ...) for ``layer``.

    Raises :class:`~lifecircle.errors.InputError` when the suffix is unknown or
    the layer cannot be read from such a file; the message lists what it takes.
    """
    file = Path(path)
    name = file.name.lower()
    accepted = " ".join(suffixes_of(layer))
    if name.endswith(".xls"):
        raise InputError("old-style .xls workbooks are not supported; save it as .xlsx", file=file)
    found = _format_of(name)
    if found is None:
        suffix = "".join(file.suffixes[-2:]) or "(no suffix)"
        raise InputError(
            f"unsupported file type {suffix!r} for the {layer} layer; use {accepted}", file=file
        )
    if found.kind not in LAYER_FORMATS[layer]:
        raise InputError(
            f"the {layer} layer cannot be read from {found.label}; it takes {accepted}",
            file=file,
        )
    return found.kind
