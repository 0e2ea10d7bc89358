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
  ``provenance``, ``facilities`` and ``rejects``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from .errors import InputError

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
def atomic_path(target: Path):  # type: ignore[no-untyped-def]
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
            gpkg_ready(gdf).to_file(tmp, layer=name, driver="GPKG")


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


def write_excel(sheets: dict[str, pd.DataFrame], target: Path) -> None:
    """An .xlsx workbook, one sheet per frame."""
    with atomic_path(target) as tmp, pd.ExcelWriter(tmp, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name[:31], index=False)


def write_outputs(
    study: Any,
    out_dir: str | Path,
    *,
    isochrones: gpd.GeoDataFrame | None = None,
    cells: gpd.GeoDataFrame | None = None,
    gaps: gpd.GeoDataFrame | None = None,
    extra_summary: dict[str, Any] | None = None,
) -> list[Path]:
    """Write every result file of a study into ``out_dir``.

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
    write_table(table, out / "communities.csv")
    layers = {"communities": scores}
    if study.gates is not None and len(study.gates):
        gate_columns = [c for c in ("gate_id", "community_id") if c in study.gates]
        layers["gates"] = study.gates[[*gate_columns, study.gates.geometry.name]].to_crs(4326)
    write_layers(layers, out / "communities.gpkg")
    written += [out / "communities.csv", out / "communities.gpkg"]
    if isochrones is not None:
        write_layers({"isochrones": isochrones}, out / "isochrones.gpkg")
        written.append(out / "isochrones.gpkg")
    if gaps is not None and cells is not None:
        write_layers(
            {"gaps": gaps, "cells": cells, "boundary": study.area_frame()}, out / "gaps.gpkg"
        )
        written.append(out / "gaps.gpkg")
        summary["gaps"] = _gap_summary(gaps, cells)
    summary.update(extra_summary or {})
    facilities = study.facility_snaps()
    write_table(facilities, out / "facilities.csv")
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
        },
        out / "results.xlsx",
    )
    written.append(out / "results.xlsx")
    logger.info("wrote %d files to %s", len(written), out)
    return written


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
