"""Siting (maximal covering) against brute force, hand-built networks and the demo."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from shapely.geometry import LineString, Point, box

from lifecircle.errors import InputError
from lifecircle.network import network_from_lines
from lifecircle.siting import (
    coverage_matrix,
    exact_cover,
    greedy_cover,
    load_candidates,
    network_candidates,
    recommend_sites,
    worst_covered_type,
    write_siting_outputs,
)
from lifecircle.standards import load_standard
from lifecircle.study import Study

from .conftest import METRIC_CRS

PROFILE = textwrap.dedent(
    """
    id: siting-test
    title: Siting test profile
    version: "1"
    walk_speed: {m_per_min: 60, status: ASSUMPTION, source: S_TEST}
    threshold_rule: metres
    tiers:
      - {id: 5min, name_zh: 五分钟, name_en: five, walk_m: 300, status: ASSUMPTION,
         source: S_TEST}
    requirements:
      - {type: kindergarten, tier: 5min, max_walk_m: 300, status: ASSUMPTION, source: S_TEST}
      - {type: pharmacy, tier: 5min, max_walk_m: 300, status: ASSUMPTION, source: S_TEST,
         min_count: 2}
    categories:
      - {id: care, name_zh: 养, name_en: Care, types: [elderly_daycare, community_canteen],
         tier: 5min, max_walk_m: 300, status: ASSUMPTION, source: S_TEST}
    sources:
      S_TEST: {what: hand-made test figures}
    """
)


def brute_force(matrix: np.ndarray, weights: np.ndarray, k: int) -> float:
    """Best covered weight over every set of at most k rows."""
    best = 0.0
    for size in range(1, k + 1):
        for rows in itertools.combinations(range(matrix.shape[0]), size):
            covered = matrix[list(rows)].any(axis=0)
            best = max(best, float(weights[covered].sum()))
    return best


def covered_weight(matrix: np.ndarray, weights: np.ndarray, rows) -> float:
    rows = list(rows)
    if not rows:
        return 0.0
    return float(weights[matrix[rows].any(axis=0)].sum())


# --------------------------------------------------------------------------- solvers


@pytest.mark.parametrize("seed", range(60))
def test_greedy_bound_and_exact_optimum_on_random_matrices(seed):
    rng = np.random.default_rng(seed)
    n_cand, n_comp = rng.integers(2, 10), rng.integers(2, 13)
    matrix = rng.uniform(size=(n_cand, n_comp)) < rng.uniform(0.1, 0.5)
    weights = rng.integers(1, 500, n_comp).astype(float)
    k = int(rng.integers(1, 5))
    optimum = brute_force(matrix, weights, k)
    chosen, gains = greedy_cover(sparse.csr_matrix(matrix), weights, k)
    greedy = covered_weight(matrix, weights, chosen)
    assert greedy == pytest.approx(gains.sum())
    assert greedy >= (1 - 1 / np.e) * optimum - 1e-9
    assert len(chosen) <= k
    exact, optimal = exact_cover(sparse.csr_matrix(matrix), weights, k)
    assert optimal
    assert len(exact) <= k
    assert covered_weight(matrix, weights, exact) == pytest.approx(optimum)


@pytest.mark.parametrize("seed", range(10))
def test_greedy_is_optimal_on_disjoint_coverage(seed):
    # every compound is reachable from at most one candidate: greedy = best k sets
    rng = np.random.default_rng(100 + seed)
    n_comp = 14
    owner = rng.integers(0, 7, n_comp)
    matrix = np.zeros((7, n_comp), dtype=bool)
    matrix[owner, np.arange(n_comp)] = True
    weights = rng.integers(1, 100, n_comp).astype(float)
    for k in (1, 2, 3):
        chosen, _ = greedy_cover(sparse.csr_matrix(matrix), weights, k)
        assert covered_weight(matrix, weights, chosen) == brute_force(matrix, weights, k)


def test_greedy_gains_decrease_and_stop_when_nothing_is_left():
    matrix = sparse.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]]))
    chosen, gains = greedy_cover(matrix, np.array([5.0, 1.0, 4.0, 9.0]), 5)
    # the fourth compound is reachable from nowhere; the third row adds nothing
    assert chosen.tolist() == [0, 1]
    assert gains.tolist() == [6.0, 4.0]


def test_compounds_needing_two_sites():
    # compound 0 needs two more sites, compound 1 one
    matrix = sparse.csr_matrix(np.array([[1, 0], [1, 1], [0, 1]]))
    weights = np.array([10.0, 3.0])
    need = np.array([2, 1])
    chosen, optimal = exact_cover(matrix, weights, 2, need=need)
    assert optimal and sorted(chosen.tolist()) == [0, 1]
    chosen, gains = greedy_cover(matrix, weights, 2, need=need)
    # myopic: the first pick serves compound 1, the second completes compound 0
    assert chosen.tolist() == [1, 0] and gains.tolist() == [3.0, 10.0]


# --------------------------------------------------------------------------- built network


@pytest.fixture()
def profile(tmp_path: Path):
    path = tmp_path / "siting-test.yaml"
    path.write_text(PROFILE, encoding="utf-8")
    return load_standard(path)


def _gdf(rows, geoms):
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=METRIC_CRS)


def _line_study(profile, gate_x, population, facilities=None):
    """Compounds south of one straight street, each with one gate on it."""
    net = network_from_lines(
        gpd.GeoSeries([LineString([(0, 0), (3000, 0)])], crs=METRIC_CRS), crs=METRIC_CRS
    )
    ids = [f"P{i}" for i in range(len(gate_x))]
    communities = _gdf(
        {"community_id": ids, "name": ids, "population": population},
        [box(x - 20, -100, x + 20, -60) for x in gate_x],
    )
    gates = _gdf({"community_id": ids}, [Point(x, 0) for x in gate_x])
    if facilities is None:
        facilities = _gdf({"facility_id": [], "type": []}, [])
    return Study(net, facilities, communities, standard=profile, gates=gates, progress=False)


def test_greedy_suboptimal_case_on_a_street(profile):
    # compounds c, a, b, d at x = 0, 300, 600, 900; sites at 150 reach {c, a}, at 450 {a, b},
    # at 750 {b, d} (300 m threshold). Greedy takes 450 first (6) and ends at 8.5;
    # the optimum is 150 + 750 = 11.
    study = _line_study(profile, [0, 300, 600, 900], [2.5, 3.0, 3.0, 2.5])
    cands = _gdf({"site_id": ["Y", "X", "Z"]}, [Point(150, 0), Point(450, 0), Point(750, 0)])
    greedy = recommend_sites(study, "kindergarten", 2, candidates=cands)
    assert greedy.sites["site_id"].tolist() == ["X", "Y"]
    assert greedy.sites["residents_newly_covered"].tolist() == [6.0, 2.5]
    assert greedy.sites["cumulative_covered"].tolist() == [6.0, 8.5]
    assert greedy.sites["compounds_newly_served"].tolist() == ["P1;P2", "P0"]
    assert (greedy.before, greedy.after) == (11.0, 2.5)
    exact = recommend_sites(study, "kindergarten", 2, candidates=cands, method="exact")
    assert exact.optimal
    assert sorted(exact.sites["site_id"]) == ["Y", "Z"]
    assert exact.after == 0.0
    assert greedy.newly_covered >= (1 - 1 / np.e) * exact.newly_covered
    matrix = coverage_matrix(study, cands, 300.0, np.arange(4)).toarray()
    assert brute_force(matrix, np.array([2.5, 3.0, 3.0, 2.5]), 2) == exact.newly_covered


def test_existing_facilities_count_as_covered(profile):
    kindergarten = _gdf({"facility_id": ["k1"], "type": ["kindergarten"]}, [Point(1000, 10)])
    study = _line_study(profile, [100, 700, 1300, 2900], [100.0, 200.0, 300.0, 50.0], kindergarten)
    # the kindergarten at x=1000 (10 m off the street) reaches P1 (310 m: no) and P2 (310 m: no)
    scores = study.score().set_index("community_id")
    assert not scores["kindergarten_ok"].any()
    kindergarten = _gdf({"facility_id": ["k1"], "type": ["kindergarten"]}, [Point(1000, 0)])
    study = _line_study(profile, [100, 700, 1300, 2900], [100.0, 200.0, 300.0, 50.0], kindergarten)
    # now P1 and P2 are exactly 300 m away: covered
    result = recommend_sites(study, "kindergarten", 1, spacing_m=100)
    assert result.before == 150.0
    assert result.sites["residents_newly_covered"].iloc[0] == 100.0
    assert result.sites["compounds_newly_served"].iloc[0] == "P0"
    assert result.after == 50.0
    compounds = result.compounds.set_index("community_id")
    assert compounds["covered_before"].tolist() == [False, True, True, False]
    assert compounds.loc["P0", "served_by_rank"] == 1
    assert pd.isna(compounds.loc["P3", "served_by_rank"])
    # the chosen network point lies within 300 m of P0's gate
    assert abs(result.sites["lon"].iloc[0]) > 0
    site = result.sites.to_crs(METRIC_CRS).geometry.iloc[0]
    assert abs(site.x - 100) <= 300 and site.y == pytest.approx(0, abs=1e-6)


def test_coverage_matrix_directions_agree_by_hand(profile):
    study = _line_study(profile, [0, 500, 1000], [1.0, 1.0, 1.0])
    two = _gdf({"site_id": ["a", "b"]}, [Point(250, 0), Point(900, 50)])
    # three compounds, two candidates: Dijkstra from the candidates
    few = coverage_matrix(study, two, 300.0, np.arange(3)).toarray()
    assert few.tolist() == [[True, True, False], [False, False, True]]
    many = _gdf({"site_id": list("abcdef")}, [Point(x, 0) for x in (250, 900, 1500, 2000, 0, 1)])
    # one compound, six candidates: Dijkstra from its gate
    one = coverage_matrix(study, many, 300.0, np.array([2])).toarray()
    assert one[:, 2].tolist() == [False, True, False, False, False, False]
    assert not one[:, :2].any()


def test_category_target_and_min_count(profile):
    canteen = _gdf({"facility_id": ["c1"], "type": ["community_canteen"]}, [Point(0, 0)])
    study = _line_study(profile, [0, 1000], [40.0, 60.0], canteen)
    result = recommend_sites(study, "care", 3)
    assert result.target_kind == "category"
    assert (result.before, result.after) == (60.0, 0.0)
    assert len(result.sites) == 1
    assert "only 1 of 3 sites" in result.notes[0]
    # pharmacies are required twice: one site alone serves nobody, two do
    pharmacies = recommend_sites(study, "pharmacy", 2, method="exact")
    assert pharmacies.before == 100.0
    assert pharmacies.after in (0.0, 40.0, 60.0)
    assert pharmacies.after < 100.0
    with pytest.raises(InputError, match="does not score 'hospital'"):
        recommend_sites(study, "hospital", 1)


def test_network_candidates_and_candidate_files(tmp_path):
    # a T: two 500 m halves of a street and a 400 m side street from its middle
    lines = [[(0, 0), (500, 0)], [(500, 0), (1000, 0)], [(500, 0), (500, 400)]]
    net = network_from_lines(
        gpd.GeoSeries([LineString(line) for line in lines], crs=METRIC_CRS), crs=METRIC_CRS
    )
    cands = network_candidates(net, spacing_m=200)
    xy = [(round(p.x), round(p.y)) for p in cands.geometry]
    kinds = dict(zip(xy, cands["kind"], strict=True))
    # thirds of each 500 m half, the middle of the side street, at most one point per
    # 200 m square with junctions and dead ends first: (167, 0) loses to the dead end
    assert sorted(xy) == [
        (0, 0),
        (333, 0),
        (500, 0),
        (500, 200),
        (500, 400),
        (667, 0),
        (833, 0),
        (1000, 0),
    ]
    assert kinds[(500, 0)] == "junction"
    assert kinds[(0, 0)] == kinds[(500, 400)] == kinds[(1000, 0)] == "dead_end"
    assert kinds[(333, 0)] == "street"
    csv = tmp_path / "parcels.csv"
    csv.write_text("编号,名称,lng,lat\nA1,地块一,120.66,28.01\nA2,地块二,120.67,x\n", "utf-8")
    with pytest.raises(InputError) as info:
        load_candidates(csv)
    assert (info.value.row, info.value.column) == (3, "lat")
    csv.write_text("编号,名称,lng,lat\nA1,地块一,120.66,28.01\n", "utf-8")
    loaded = load_candidates(csv)
    assert loaded["site_id"].tolist() == ["A1"] and loaded["name"].tolist() == ["地块一"]


def test_writes_sites_files(profile, tmp_path):
    study = _line_study(profile, [0, 300, 600, 900], [2.5, 3.0, 3.0, 2.5])
    result = recommend_sites(study, "kindergarten", 2)
    written = write_siting_outputs(result, tmp_path / "out")
    assert [p.name for p in written] == ["sites.csv", "sites.gpkg", "sites.json"]
    assert (tmp_path / "out" / "sites.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(tmp_path / "out" / "sites.csv", encoding="utf-8-sig")
    assert table["rank"].tolist() == [1, 2] and (table["type"] == "kindergarten").all()
    layer = gpd.read_file(tmp_path / "out" / "sites.gpkg", layer="sites")
    assert len(layer) == 2 and layer.crs.to_epsg() == 4326
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left


# --------------------------------------------------------------------------- demo


def test_demo_worst_covered_type_gains_coverage():
    from lifecircle.datasets import demo_data

    d = demo_data()
    study = Study.from_files(
        d.streets,
        d.pois,
        d.compounds,
        gates=d.gates,
        boundary=d.boundary,
        capacity=d.capacity,
        facilities_crs="gcj02",
        standard="puxieshi-2021",
        progress=False,
    )
    worst = worst_covered_type(study)
    assert worst == "elderly_daycare"
    greedy = recommend_sites(study, worst, 2)
    assert greedy.after < greedy.before
    assert greedy.sites["residents_newly_covered"].is_monotonic_decreasing
    exact = recommend_sites(study, worst, 2, method="exact")
    assert exact.after <= greedy.after
    assert greedy.newly_covered >= (1 - 1 / np.e) * exact.newly_covered
