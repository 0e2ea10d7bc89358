"""Gap grid: the study area, the one verdict rule for cells, and the lattice dissolve."""

from __future__ import annotations

import textwrap
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, box

from lifecircle.gaps import clip_to_area, dissolve_gaps, grid_cells, square_lattice, study_area
from lifecircle.network import network_from_lines
from lifecircle.scoring import ScoreItem
from lifecircle.standards import load_standard
from lifecircle.study import Study

from .conftest import METRIC_CRS

ITEM = ScoreItem("category", "x", "15min", 900.0, 1.0, False, "ASSUMPTION", "S", "", ("a",))


def _union_all_gaps(cells: gpd.GeoDataFrame) -> list[tuple[float, tuple[str, ...]]]:
    """The reference construction: parts of the union of the blind cells, cells by containment."""
    blind = cells[cells["x_gap"]]
    merged = shapely.get_parts(shapely.union_all(blind.geometry.to_numpy()))
    cell_idx, part_idx = shapely.STRtree(merged).query(
        blind.geometry.representative_point().to_numpy(), predicate="within"
    )
    ids = blind["cell_id"].to_numpy()
    return sorted(
        (round(merged[p].area, 6), tuple(sorted(ids[cell_idx[part_idx == p]])))
        for p in range(merged.size)
    )


def _cells_from_mask(mask: np.ndarray, side: float, x0: float, y0: float) -> gpd.GeoDataFrame:
    rows, cols = np.indices(mask.shape)
    x, y = x0 + cols.ravel() * side, y0 + rows.ravel() * side
    rng = np.random.default_rng(int(mask.sum()))
    cells = gpd.GeoDataFrame(
        {
            "cell_id": [f"c{i}" for i in range(mask.size)],
            "population": rng.integers(1, 50, mask.size).astype(float),
            "x_min": rng.uniform(0, 30, mask.size),
        },
        geometry=shapely.box(x, y, x + side, y + side),
        crs=METRIC_CRS,
    )
    cells["x_gap"] = mask.ravel()
    return cells


@settings(deadline=None, max_examples=60)
@given(
    st.integers(1, 14),
    st.integers(1, 14),
    st.floats(0.05, 0.95),
    st.integers(0, 2**31 - 1),
    st.sampled_from([50.0, 100.0, 137.5, 200.0]),
)
def test_lattice_dissolve_equals_union_all(n_rows, n_cols, share, seed, side):
    mask = np.random.default_rng(seed).random((n_rows, n_cols)) < share
    cells = _cells_from_mask(mask, side, 440_123.25, 4_410_077.5)
    assert square_lattice(cells) is not None
    gaps = dissolve_gaps(cells, [ITEM])
    reference = _union_all_gaps(cells)
    assert len(gaps) == len(reference)
    by_id = dict(zip(cells["cell_id"], cells.geometry, strict=True))
    minutes = cells.set_index("cell_id")["x_min"]
    ours = []
    for gap in gaps.itertuples():
        members = tuple(
            sorted(
                cid
                for cid in cells.loc[cells["x_gap"], "cell_id"]
                if gap.geometry.covers(by_id[cid])
            )
        )
        assert len(members) == gap.cells
        ours.append((round(gap.geometry.area, 6), members))
        assert gap.area_m2 == pytest.approx(len(members) * side * side, abs=0.1)
        assert gap.max_min == pytest.approx(minutes[list(members)].max())
    assert sorted(ours) == reference
    pop = cells.set_index("cell_id")["population"]
    # the populations are those of the members, largest first
    expected = sorted((round(float(pop[list(m)].sum()), 1) for _, m in reference), reverse=True)
    assert gaps["population"].tolist() == expected


def test_corner_contacts_stay_apart_and_holes_are_kept():
    # a ring of eight cells around a clear centre, and one cell touching it at a corner
    mask = np.zeros((5, 5), dtype=bool)
    mask[0:3, 0:3] = True
    mask[1, 1] = False
    mask[3, 3] = True
    cells = _cells_from_mask(mask, 100.0, 0.0, 0.0)
    gaps = dissolve_gaps(cells, [ITEM]).sort_values("cells", ignore_index=True)
    assert gaps["cells"].tolist() == [1, 8]
    ring = gaps.geometry.iloc[1]
    assert ring.area == pytest.approx(8 * 100**2)
    assert len(ring.interiors) == 1
    assert gaps.geometry.iloc[0].equals(box(300, 300, 400, 400))


def test_h3_cells_fall_back_to_union():
    area = shapely.union_all([box(0, 0, 600, 600), box(3000, 0, 3600, 600)])
    cells = grid_cells(area, METRIC_CRS, cell_m=100, kind="h3")
    assert square_lattice(cells) is None
    cells["population"] = 1.0
    cells["x_min"] = 1.0
    cells["x_gap"] = True
    gaps = dissolve_gaps(cells, [ITEM])
    assert len(gaps) == 2  # one per separate part of the area
    assert gaps["cells"].sum() == len(cells)


def test_far_outlier_does_not_span_the_grid():
    near = [box(x, 0, x + 80, 80) for x in range(0, 1000, 200)]
    frame = gpd.GeoDataFrame({"population": [1.0] * len(near)}, geometry=near, crs=METRIC_CRS)
    base = grid_cells(study_area(frame, None, METRIC_CRS), METRIC_CRS, cell_m=100)
    # the same compounds and one moved 1,300 km away
    far = box(1_300_000, 900_000, 1_300_080, 900_080)
    with_outlier = gpd.GeoDataFrame(
        {"population": [1.0] * 6}, geometry=[*near, far], crs=METRIC_CRS
    )
    area = study_area(with_outlier, None, METRIC_CRS)
    cells = grid_cells(area, METRIC_CRS, cell_m=100)
    # each compound brings only its 200 m neighbourhood: at most 6 x 6 cells of its own
    assert len(cells) <= len(base) + 36
    assert len(cells) > len(base)
    assert cells.geometry.contains(far.centroid).sum() == 1
    # every compound's cells are there, and nothing between them
    assert not cells.geometry.intersects(box(10_000, 10_000, 1_290_000, 890_000)).any()
    assert area.area < 2 * 6 * 1000 * 500


def test_area_is_the_compounds_neighbourhood():
    frame = gpd.GeoDataFrame(
        {"population": [1.0, 1.0]}, geometry=[box(0, 0, 100, 100), Point(5000, 0)], crs=METRIC_CRS
    )
    area = study_area(frame, None, METRIC_CRS, margin_m=200)
    assert area.contains(Point(250, 50)) and area.contains(Point(5150, 0))
    assert not area.contains(Point(2500, 0))  # a hull would hold it
    boundary = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10)], crs=METRIC_CRS)
    assert study_area(frame, boundary, METRIC_CRS).equals(box(0, 0, 10, 10))


PROFILE = textwrap.dedent(
    """
    id: count-test
    title: Two clinics
    version: "1"
    walk_speed: {m_per_min: 60, status: ASSUMPTION, source: S_TEST}
    threshold_rule: metres
    tiers:
      - {id: 15min, name_zh: 十五分钟, name_en: fifteen, walk_min: 15, walk_m: 1000,
         status: ASSUMPTION, source: S_TEST}
    requirements:
      - {type: clinic, tier: 15min, max_walk_m: 500, min_count: 2, status: ASSUMPTION,
         source: S_TEST}
    sources:
      S_TEST: {what: hand-made test figures}
    """
)


def _count_study(tmp_path: Path, clinics: list[Point]) -> Study:
    path = tmp_path / "count-test.yaml"
    path.write_text(PROFILE, encoding="utf-8")
    net = network_from_lines(
        gpd.GeoSeries([LineString([(0, 0), (3000, 0)])], crs=METRIC_CRS), crs=METRIC_CRS
    )
    facilities = gpd.GeoDataFrame(
        {"facility_id": [f"c{i}" for i in range(len(clinics))], "type": "clinic"},
        geometry=clinics,
        crs=METRIC_CRS,
    )
    communities = gpd.GeoDataFrame(
        {"community_id": ["A"], "name": ["甲"], "population": [100.0]},
        geometry=[box(110, 10, 190, 90)],  # one cell, centred (150, 50)
        crs=METRIC_CRS,
    )
    gates = gpd.GeoDataFrame({"community_id": ["A"]}, geometry=[Point(150, 0)], crs=METRIC_CRS)
    return Study(
        net, facilities, communities, standard=load_standard(path), gates=gates, progress=False
    )


def test_cells_need_min_count_facilities(tmp_path):
    # one clinic 100 m along the street from the compound's cell, the second 2 km away
    study = _count_study(tmp_path, [Point(250, 0), Point(2250, 0)])
    scores = study.score()
    assert not scores["clinic_ok"].iloc[0]  # the compound fails: one clinic in reach
    cells, gaps = study.gaps(cell_m=100)
    cells = cells.to_crs(METRIC_CRS)
    home = cells[cells.geometry.contains(Point(150, 50))].iloc[0]
    # centre (150, 50): 50 m leg + 100 m along the street to the clinic at x = 250
    assert home["clinic_min"] == pytest.approx(150 / 60, abs=0.05)
    assert home["clinic_n"] == 1
    assert not home["clinic_ok"]
    assert home["clinic_gap"]
    assert len(gaps) == 1 and gaps["item"].iloc[0] == "clinic"
    assert gaps["population"].iloc[0] == pytest.approx(100.0)


def test_cells_meet_min_count_with_two_in_reach(tmp_path):
    study = _count_study(tmp_path, [Point(250, 0), Point(500, 0)])
    assert study.score()["clinic_ok"].iloc[0]
    cells, gaps = study.gaps(cell_m=100)
    cells = cells.to_crs(METRIC_CRS)
    home = cells[cells.geometry.contains(Point(150, 50))].iloc[0]
    assert home["clinic_n"] == 2  # 150 m and 400 m
    assert home["clinic_ok"] and not home["clinic_gap"]
    assert gaps.empty


@settings(deadline=None, max_examples=40)
@given(
    st.integers(2, 12),
    st.integers(2, 12),
    st.floats(0.2, 0.9),
    st.integers(0, 2**31 - 1),
    st.floats(30.0, 400.0),
)
def test_clip_to_area_equals_cutting_each_gap(n_rows, n_cols, share, seed, radius):
    # two items' gaps (they overlap each other) cut to a round area crossing the grid
    rng = np.random.default_rng(seed)
    cells = _cells_from_mask(rng.random((n_rows, n_cols)) < share, 100.0, 0.0, 0.0)
    gaps = dissolve_gaps(cells, [ITEM])
    cells["x_gap"] = rng.random(len(cells)) < share
    gaps = pd.concat([gaps, dissolve_gaps(cells, [ITEM]).assign(item="y")], ignore_index=True)
    area = shapely.union_all([Point(150, 250).buffer(radius), box(0, 0, 60, n_rows * 100 + 10)])
    geoms = gaps.geometry.to_numpy()
    ours = clip_to_area(geoms, area, gaps["item"].to_numpy())
    for mine, theirs in zip(ours, shapely.intersection(geoms, area), strict=True):
        assert mine.area == pytest.approx(theirs.area, abs=1e-6)
        assert shapely.symmetric_difference(mine, theirs).area < 1e-6
    # with no groups each polygon is cut alone: the same answer
    assert all(shapely.equals(ours, clip_to_area(geoms, area)) | shapely.is_empty(ours))


def test_clip_to_area_tells_inside_outside_and_edge_gaps_of_an_area_with_a_hole():
    area = shapely.union_all([box(0, 0, 1000, 1000), box(2000, 0, 2500, 500)])
    area = area.difference(box(400, 400, 600, 600))
    geoms = np.array(
        [
            box(100, 100, 200, 200),  # inside
            box(450, 450, 550, 550),  # in the hole
            box(350, 350, 450, 450),  # across the hole's edge
            box(900, 900, 1100, 1100),  # across the outer edge
            box(1200, 0, 1300, 100),  # between the parts
            shapely.MultiPolygon([box(10, 10, 20, 20), box(2100, 10, 2200, 20)]),  # both parts
            box(2400, 400, 2600, 600),  # across the second part's edge
            shapely.Polygon(),
        ],
        dtype=object,
    )
    ours = clip_to_area(geoms, area, np.array(list("abcdefgh"), dtype=object))
    theirs = shapely.intersection(geoms, area)
    assert [round(g.area) for g in ours] == [round(g.area) for g in theirs]
    assert [round(g.area) for g in ours] == [10_000, 0, 7_500, 10_000, 0, 1_100, 10_000, 0]
    assert ours[0] is geoms[0] and ours[5] is geoms[5]  # covered: kept as they are
