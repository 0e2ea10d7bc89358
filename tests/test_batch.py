"""Batch scoring on the synthetic demo cut into three strips, serial, local and on Dask."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import yaml
from shapely.geometry import box

from lifecircle.batch import (
    DONE_MARKER,
    EXIT_OK,
    EXIT_SOME_FAILED,
    FAILED_MARKER,
    load_batch_config,
    run_batch,
)
from lifecircle.coords import from_wgs84, to_wgs84
from lifecircle.datasets import demo_data
from lifecircle.errors import InputError
from lifecircle.study import Study

STRIPS = ("west", "mid", "east")
NAMES = {"west": "西片", "mid": "中片", "east": "东片"}
# settings that keep each area at well under a second
FAST = {
    "standard": "puxieshi-2021",
    "isochrones": False,
    "robustness": False,
    "maps": False,
    "cell_m": 200,
}


# ---------------------------------------------------------------- fixtures
def strip_polygons() -> dict[str, shapely.Polygon]:
    """The demo boundary cut into three north-south strips."""
    area = gpd.read_file(demo_data().boundary).geometry.iloc[0]
    minx, miny, maxx, maxy = area.bounds
    edges = np.linspace(minx, maxx, len(STRIPS) + 1)
    return {
        strip_id: area.intersection(box(edges[i], miny - 0.01, edges[i + 1], maxy + 0.01))
        for i, strip_id in enumerate(STRIPS)
    }


def _poi_rows() -> tuple[list[str], list[list[str]]]:
    with demo_data().pois.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def _write_pois(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])


def write_area_files(folder: Path, strip_id: str, polygon: shapely.Polygon) -> dict[str, str]:
    """One area's own files: streets, POIs and gates near the strip, its compounds."""
    demo = demo_data()
    near = gpd.GeoSeries([polygon], crs=4326).to_crs(32651).buffer(400).to_crs(4326).iloc[0]
    folder.mkdir(parents=True, exist_ok=True)
    streets = gpd.read_file(demo.streets)
    streets[streets.intersects(near)].to_file(folder / "streets.geojson")
    compounds = gpd.read_file(demo.compounds)
    inside = compounds.geometry.representative_point().covered_by(polygon)
    compounds[inside].to_file(folder / "compounds.geojson")
    ids = set(compounds.loc[inside, "community_id"])
    gates = pd.read_csv(demo.gates, dtype=str)
    gates[gates["community_id"].isin(ids)].to_csv(folder / "gates.csv", index=False)
    header, rows = _poi_rows()
    where = header.index("location")
    lon, lat = np.array([[float(v) for v in r[where].split(",")] for r in rows]).T
    lon, lat = to_wgs84(lon, lat, "gcj02")
    keep = shapely.covers(near, shapely.points(lon, lat))
    _write_pois(folder / "pois.csv", header, [r for r, k in zip(rows, keep, strict=True) if k])
    gpd.GeoDataFrame({"name": [NAMES[strip_id]]}, geometry=[polygon], crs=4326).to_file(
        folder / "boundary.geojson"
    )
    return {
        "id": strip_id,
        "name": NAMES[strip_id],
        "network": f"{strip_id}/streets.geojson",
        "facilities": [f"{strip_id}/pois.csv"],
        "communities": f"{strip_id}/compounds.geojson",
        "gates": f"{strip_id}/gates.csv",
        "boundary": f"{strip_id}/boundary.geojson",
    }


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def areas_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three strips, each with its own files, and a configuration for them."""
    folder = tmp_path_factory.mktemp("areas")
    areas = [write_area_files(folder / s, s, p) for s, p in strip_polygons().items()]
    write_config(folder / "batch.yaml", {**FAST, "facilities_crs": "gcj02", "areas": areas})
    return folder


def read_communities(out: Path, area_id: str) -> pd.DataFrame:
    return pd.read_csv(out / area_id / "communities.csv", encoding="utf-8-sig", dtype={"name": str})


def comparable(summary: pd.DataFrame) -> pd.DataFrame:
    return summary.drop(columns="elapsed_s").reset_index(drop=True)


# ---------------------------------------------------------------- per-area files
def test_serial_batch_matches_single_studies(areas_dir: Path):
    data = yaml.safe_load((areas_dir / "batch.yaml").read_text(encoding="utf-8"))
    config = write_config(areas_dir / "with_maps.yaml", {**data, "maps": True})
    out = areas_dir / "serial"
    result = run_batch(config, out=out, workers=1, progress=False)
    assert result.exit_code == EXIT_OK
    summary = result.summary
    assert list(summary["area_id"]) == list(STRIPS)
    assert list(summary["status"]) == ["ok"] * 3
    # every demo compound belongs to exactly one strip
    assert summary["compounds"].sum() == 66
    assert summary["population"].sum() == 78602  # whole people: households x 2.62 per compound
    assert {"tier_15min_pass_share", "coverage_elderly_care", "coverage_education"} <= set(
        summary.columns
    )
    # the same numbers as scoring the west strip on its own
    west = areas_dir / "west"
    study = Study.from_files(
        west / "streets.geojson",
        west / "pois.csv",
        west / "compounds.geojson",
        gates=west / "gates.csv",
        boundary=west / "boundary.geojson",
        facilities_crs="gcj02",
        standard="puxieshi-2021",
        progress=False,
    )
    alone = study.summary()["results"]
    row = summary.set_index("area_id").loc["west"]
    assert row["compounds"] == alone["compounds"]
    assert row["completeness"] == pytest.approx(alone["completeness"])
    assert row["coverage_elderly_care"] == pytest.approx(
        alone["coverage"]["categories"]["elderly_care"]["population_share"]
    )
    table = read_communities(out, "west")
    assert list(table["score"]) == pytest.approx(list(study.score()["score"]))
    # batch files
    assert (out / "batch_summary.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    written = pd.read_csv(out / "batch_summary.csv", encoding="utf-8-sig")
    assert list(written["name"]) == ["西片", "中片", "东片"]
    assert len(pd.read_excel(out / "batch_summary.xlsx")) == 3
    overview = gpd.read_file(out / "overview.gpkg", layer="areas")
    assert list(overview["area_id"]) == list(STRIPS)
    assert overview.geometry.notna().all()
    page = (out / "overview.html").read_text(encoding="utf-8")
    assert "中片" in page and "completeness" in page
    for module, page_name in (("maps", "map.html"), ("report", "report.html")):
        if importlib.util.find_spec(f"lifecircle.{module}") is not None:
            assert all((out / a / page_name).is_file() for a in STRIPS)
    assert list(summary["warnings"]) == [0, 0, 0]
    marker = json.loads((out / "west" / DONE_MARKER).read_text(encoding="utf-8"))
    assert marker["status"] == "ok" and len(marker["config_hash"]) == 64


def test_dask_cluster_gives_the_serial_results(areas_dir: Path):
    distributed = pytest.importorskip("distributed")
    serial = run_batch(areas_dir / "batch.yaml", out=areas_dir / "s2", workers=1, progress=False)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
    ):
        on_dask = run_batch(
            areas_dir / "batch.yaml",
            out=areas_dir / "dask",
            scheduler=cluster.scheduler_address,
            progress=False,
        )
    assert on_dask.exit_code == EXIT_OK
    pd.testing.assert_frame_equal(comparable(serial.summary), comparable(on_dask.summary))
    for area_id in STRIPS:
        pd.testing.assert_frame_equal(
            read_communities(areas_dir / "s2", area_id),
            read_communities(areas_dir / "dask", area_id),
        )


def test_broken_area_fails_alone_and_resumes(areas_dir: Path, tmp_path: Path):
    data = yaml.safe_load((areas_dir / "batch.yaml").read_text(encoding="utf-8"))
    for area in data["areas"]:  # point back into the shared fixture folder
        for key in ("network", "communities", "gates", "boundary"):
            area[key] = str(areas_dir / area[key])
        area["facilities"] = [str(areas_dir / p) for p in area["facilities"]]
    broken = tmp_path / "broken_pois.csv"
    broken.write_text("名称,地址\n示例幼儿园,无坐标\n", encoding="utf-8")
    data["areas"][1]["facilities"] = [str(broken)]
    data["areas"].append({**data["areas"][0], "id": "ghost", "network": "nowhere.geojson"})
    config = write_config(tmp_path / "batch.yaml", data)
    out = tmp_path / "out"

    first = run_batch(config, out=out, workers=2, progress=False)
    assert first.exit_code == EXIT_SOME_FAILED
    status = first.summary.set_index("area_id")["status"].to_dict()
    assert status == {"west": "ok", "mid": "failed", "east": "ok", "ghost": "failed"}
    errors = first.summary.set_index("area_id")["error"]
    assert "broken_pois.csv" in errors["mid"]
    assert "batch.yaml" in errors["ghost"] and "areas[3].network" in errors["ghost"]
    assert np.isnan(first.summary.set_index("area_id").loc["mid", "completeness"])
    failed = json.loads((out / "mid" / FAILED_MARKER).read_text(encoding="utf-8"))
    assert "broken_pois.csv" in failed["error"] and "Traceback" in failed["traceback"]
    assert not (out / "mid" / DONE_MARKER).exists()

    stamps = {a: (out / a / "communities.csv").stat().st_mtime_ns for a in ("west", "east")}
    failed_stamp = (out / "mid" / FAILED_MARKER).stat().st_mtime_ns
    second = run_batch(config, out=out, workers=1, progress=False)
    assert second.exit_code == EXIT_SOME_FAILED
    assert [o.recomputed for o in second.outcomes] == [False] * 4
    assert list(second.summary["status"]) == ["skipped", "failed", "skipped", "failed"]
    assert {a: (out / a / "communities.csv").stat().st_mtime_ns for a in stamps} == stamps
    assert (out / "mid" / FAILED_MARKER).stat().st_mtime_ns == failed_stamp
    # the numbers of skipped areas are read back from their markers
    pd.testing.assert_series_equal(
        second.summary["completeness"].iloc[[0, 2]], first.summary["completeness"].iloc[[0, 2]]
    )

    broken.write_bytes((areas_dir / "mid" / "pois.csv").read_bytes())
    third = run_batch(config, out=out, workers=1, retry_failed=True, progress=False)
    status = third.summary.set_index("area_id")["status"].to_dict()
    assert status == {"west": "skipped", "mid": "ok", "east": "skipped", "ghost": "failed"}
    assert (out / "mid" / DONE_MARKER).exists() and not (out / "mid" / FAILED_MARKER).exists()
    assert [o.recomputed for o in third.outcomes] == [False, True, False, True]

    # an area whose input changed runs again; the others stay
    (areas_dir / "east" / "gates.csv").touch()
    fourth = run_batch(config, out=out, workers=1, progress=False)
    assert [o.recomputed for o in fourth.outcomes] == [False, False, True, False]
    assert fourth.summary.set_index("area_id").loc["east", "status"] == "ok"


# ---------------------------------------------------------------- shared layers
@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Boundaries of the three strips, plus one facility just east of the west strip."""
    folder = tmp_path_factory.mktemp("shared")
    polygons = strip_polygons()
    names = ["西片 <b>`${x}`</b>", "中片", "东片"]
    gpd.GeoDataFrame(
        {"code": list(polygons), "label": names}, geometry=list(polygons.values()), crs=4326
    ).to_file(folder / "strips.gpkg")
    # a park entrance 150 m across the border, where a west compound can walk to it
    header, rows = _poi_rows()
    park = next(r for r in rows if "公园" in r[header.index("type")])
    border = polygons["west"].bounds[2]
    streets = gpd.read_file(demo_data().streets)
    nodes = shapely.get_coordinates(streets.geometry.to_numpy())
    east_of_border = nodes[(nodes[:, 0] > border + 0.0012) & (nodes[:, 0] < border + 0.0025)]
    lon, lat = east_of_border[0]
    gcj_lon, gcj_lat = from_wgs84([lon], [lat], "gcj02")
    extra = dict(zip(header, park, strict=True))
    extra.pop("location")
    extra.update(id="B0EXTRA001", name="示例界外公园")
    gpd.GeoDataFrame(
        {k: [v] for k, v in extra.items()},
        geometry=gpd.points_from_xy(gcj_lon, gcj_lat),
        crs=4326,
    ).to_file(folder / "extra_pois.gpkg")
    return folder


def shared_config(folder: Path, buffer_m: float, name: str) -> Path:
    demo = demo_data()
    return write_config(
        folder / f"{name}.yaml",
        {
            **FAST,
            "facilities_crs": "gcj02",
            "communities_crs": "wgs84",
            "gates_crs": "wgs84",
            "shared": {
                "boundaries": "strips.gpkg",
                "id_column": "code",
                "name_column": "label",
                "buffer_m": buffer_m,
                "network": str(demo.streets),
                "facilities": [str(demo.pois), "extra_pois.gpkg"],
                "communities": str(demo.compounds),
                "gates": str(demo.gates),
            },
        },
    )


def test_shared_layers_cut_per_area_with_a_buffer(shared_dir: Path):
    wide = run_batch(shared_config(shared_dir, 1000, "wide"), workers=1, progress=False)
    narrow = run_batch(shared_config(shared_dir, 0, "narrow"), workers=1, progress=False)
    assert wide.exit_code == narrow.exit_code == EXIT_OK
    assert wide.out == shared_dir / "wide-results"
    # each compound is scored once, in the strip holding its inside point
    assert wide.summary["compounds"].sum() == narrow.summary["compounds"].sum() == 66
    west_wide = pd.read_csv(wide.out / "west" / "facilities.csv", encoding="utf-8-sig")
    west_narrow = pd.read_csv(narrow.out / "west" / "facilities.csv", encoding="utf-8-sig")
    extra = west_wide.set_index("facility_id").loc["B0EXTRA001"]
    assert extra["type"] == "park" and extra["snap_status"] == "ok"
    assert "B0EXTRA001" not in set(west_narrow["facility_id"])
    # the demo POIs, loaded once (the 171 rows of no life-circle type listed once)
    rejects = list((wide.out / "_shared").glob("facilities-*-rejects.csv"))
    assert len(pd.read_csv(rejects[0], encoding="utf-8-sig")) == 171
    # a west compound now walks to the park across the border
    with_buffer = read_communities(wide.out, "west").set_index("community_id")
    without = read_communities(narrow.out, "west").set_index("community_id")
    nearer = with_buffer["park_m"].fillna(np.inf) < without["park_m"].fillna(np.inf)
    assert nearer.any()
    assert with_buffer["park_n"].sum() > without["park_n"].sum()
    assert (wide.out / "west" / "inputs" / "facilities-extra_pois.gpkg").exists()
    # names reach the overview page escaped
    page = (wide.out / "overview.html").read_text(encoding="utf-8")
    assert "<b>`" not in page and "${x}" not in page
    assert "&lt;b&gt;&#96;&#36;{x}&#96;&lt;/b&gt;" in page


# ---------------------------------------------------------------- configuration errors
def _config_error(tmp_path: Path, data: dict | str) -> str:
    path = tmp_path / "bad.yaml"
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        write_config(path, data)
    with pytest.raises(InputError) as info:
        load_batch_config(path)
    assert "bad.yaml" in str(info.value)
    return str(info.value)


def test_config_errors_name_file_and_key(tmp_path: Path):
    demo = demo_data()
    area = {
        "id": "a",
        "network": str(demo.streets),
        "facilities": str(demo.pois),
        "communities": str(demo.compounds),
    }
    message = _config_error(tmp_path, {"areas": [area, {**area, "id": "b", "gatez": "x"}]})
    assert "areas[1]: unknown key(s) 'gatez'" in message
    assert "(top level): unknown key(s) 'minute'" in _config_error(
        tmp_path, {"minute": [5], "areas": [area]}
    )
    assert "areas[0].facilities: expected a path or a list of paths" in _config_error(
        tmp_path, {"areas": [{**area, "facilities": 5}]}
    )
    assert "minutes[1]: -5 is less than or equal to the minimum of 0" in _config_error(
        tmp_path, {"minutes": [5, -5], "areas": [area]}
    )
    assert "areas[0]: 'communities' is required" in _config_error(
        tmp_path, {"areas": [{k: v for k, v in area.items() if k != "communities"}]}
    )
    assert "exactly one of 'areas'" in _config_error(tmp_path, {"standard": "gb50180-2018"})
    assert "areas[1].id: area id 'a' repeats areas[0].id" in _config_error(
        tmp_path, {"areas": [area, area]}
    )
    assert "cannot name a folder" in _config_error(tmp_path, {"areas": [{**area, "id": "../x"}]})
    assert "areas[0].facilities_crs: unknown coordinate system 'moon'" in _config_error(
        tmp_path, {"areas": [{**area, "facilities_crs": "moon"}]}
    )
    assert "standard:" in _config_error(tmp_path, {"standard": "gb-nope", "areas": [area]})
    assert "line 3, column 15: not valid YAML (mapping values are not allowed" in (
        _config_error(tmp_path, "areas:\n  - id: a\n    network: x: y\n")
    )
    shared = {
        "boundaries": str(demo.boundary),
        "network": str(demo.streets),
        "facilities": [str(demo.pois), "missing.csv"],
        "communities": str(demo.compounds),
    }
    assert "shared.facilities[1]: file not found" in _config_error(tmp_path, {"shared": shared})
    shared["facilities"] = [str(demo.pois)]
    assert "shared.id_column: no column 'id'" in _config_error(tmp_path, {"shared": shared})
