#!/usr/bin/env python
"""End-to-end benchmark: ``lifecircle score`` on synthetic grid cities, and a networkx peer.

For each size (network nodes / compounds) the script generates a city
deterministically and writes it as a user would hand it over:

* centre-line streets (GeoJSON, WGS84): a jittered 100 m grid with 3 % of the
  streets missing, crossed by an east-west river that only a few bridges span;
* polygon compounds (GeoJSON) with 1-4 gates each (CSV);
* an Amap-style POI export (CSV, GCJ-02): ``--pois`` typed POIs (default
  4,500) of 20 life-circle types, plus 10 % others (restaurants, banks...).

It then runs ``lifecircle score`` with the default ``gb50180-2018`` profile
and a 100 m gap grid in a fresh process, once with the defaults and once with
``--no-isochrones --no-robustness``, and prints the CPU seconds of the child
(``getrusage``), its peak RSS (``VmHWM``) and the time of every stage (the
child wraps the library's stage functions with timers before it calls the
command-line entry point). At one size (40k nodes, 10k with ``--quick``) it
also does the same job the usual way, in a fresh process from the same files:
networkx, one bounded Dijkstra per gate with every point moved to its nearest
node (the OSMnx-tutorial method), and compares both the time and the answers.

Lines for scripts::

    E2E <size> cpu_s=<x> rss_mb=<y>            (default run)
    E2E_FAST <size> cpu_s=<x> rss_mb=<y>       (--no-isochrones --no-robustness)
    RATIO networkx_e2e/lifecircle_e2e <x>        (the whole fast run, files written)
    RATIO networkx_e2e/lifecircle_same_job <x>   (import, load, score, gap grid)

Run ``python benchmarks/bench_end_to_end.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SIZES = {"10k": (10_000, 500), "40k": (40_000, 2_000), "160k": (160_000, 8_000)}
CRS_METRIC = "EPSG:32650"
CITY_ORIGIN_XY = (440_000.0, 4_410_000.0)
SPACING_M = 100.0
JITTER_M = 20.0
DROP_SHARE = 0.03
N_TYPES = 20
BRIDGE_EVERY = 25  # one bridge every 25 columns (2.5 km)
PEER_RADIUS_M = 1000.0


# --------------------------------------------------------------------- the city
def _templates() -> tuple[list[dict[str, str]], list[dict[str, str]], dict[str, str]]:
    """Amap rows of the demo export: one per life-circle type, and rows of no type."""
    import pandas as pd

    from lifecircle.datasets import demo_data
    from lifecircle.loading import load_facilities
    from lifecircle.standards import load_standard

    path = demo_data().pois
    raw = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    typed = load_facilities(path, crs="gcj02").data
    scored = set(load_standard("gb50180-2018").scored_types()) - {"metro_station"}
    first = typed[typed["type"].isin(scored)].drop_duplicates("type")
    first = first.sort_values("type").head(N_TYPES)
    rows = raw.set_index("id").loc[first["id"].to_numpy()].reset_index()
    kinds = dict(zip(first["id"], first["type"], strict=True))
    typed_rows = [
        {"name": r.name, "type": r.type, "typecode": r.typecode, "kind": kinds[r.id]}
        for r in rows.itertuples()
    ]
    others = raw[~raw["id"].isin(typed["id"])].drop_duplicates("typecode")
    other_rows = [
        {"name": r.name, "type": r.type, "typecode": r.typecode, "kind": ""}
        for r in others.itertuples()
    ]
    code_kind = {r["typecode"] + "|" + r["name"]: r["kind"] for r in typed_rows}
    return typed_rows, other_rows, code_kind


def generate_city(
    folder: Path,
    n_nodes: int,
    n_compounds: int,
    n_pois: int,
    seed: int,
    n_other: int | None = None,
) -> dict:
    """Write streets, compounds, gates and POIs of one synthetic city into ``folder``.

    ``n_other`` POIs of no life-circle type are added (default: a tenth of ``n_pois``).
    """
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import shapely

    from lifecircle.coords import wgs84_to_gcj02

    rng = np.random.default_rng([seed, n_nodes])
    side = round(n_nodes**0.5)
    ii, jj = np.meshgrid(np.arange(side), np.arange(side), indexing="xy")
    xy = np.stack([ii.ravel(), jj.ravel()], axis=1) * SPACING_M + CITY_ORIGIN_XY
    xy = xy + rng.uniform(-JITTER_M, JITTER_M, xy.shape)
    node = np.arange(side * side).reshape(side, side)  # node[j, i]
    h_u, h_v = node[:, :-1].ravel(), node[:, 1:].ravel()
    v_u, v_v = node[:-1, :].ravel(), node[1:, :].ravel()
    river_row = side // 2  # the river runs between rows river_row - 1 and river_row
    v_row = np.repeat(np.arange(side - 1), side)
    v_col = np.tile(np.arange(side), side - 1)
    crossing = v_row == river_row - 1
    bridge = crossing & (v_col % BRIDGE_EVERY == BRIDGE_EVERY // 2)
    keep_v = ~crossing | bridge
    u = np.concatenate([h_u, v_u[keep_v]])
    v = np.concatenate([h_v, v_v[keep_v]])
    is_bridge = np.concatenate([np.zeros(h_u.size, bool), bridge[keep_v]])
    drop = (rng.random(u.size) < DROP_SHARE) & ~is_bridge
    u, v, is_bridge = u[~drop], v[~drop], is_bridge[~drop]
    lines = shapely.linestrings(np.stack([xy[u], xy[v]], axis=1))
    main = (np.concatenate([h_u, v_u[keep_v]])[~drop] % 10) == 0
    streets = gpd.GeoDataFrame(
        {
            "way_id": np.arange(1, u.size + 1),
            "highway": np.where(main, "secondary", "residential"),
            "name": [f"示例{k % 500}路" for k in range(u.size)],
            "bridge": np.where(is_bridge, "yes", None),
        },
        geometry=lines,
        crs=CRS_METRIC,
    ).to_crs(4326)
    streets.to_file(folder / "streets.geojson", driver="GeoJSON")

    # compounds: one per chosen block, inset from the streets, never on the river
    blocks_i = np.arange(side - 1)
    block_rows = np.array([r for r in range(side - 1) if r != river_row - 1])
    choice = rng.choice(block_rows.size * blocks_i.size, size=n_compounds, replace=False)
    bi, bj = choice % blocks_i.size, block_rows[choice // blocks_i.size]
    x0 = CITY_ORIGIN_XY[0] + bi * SPACING_M + rng.uniform(22, 30, n_compounds)
    y0 = CITY_ORIGIN_XY[1] + bj * SPACING_M + rng.uniform(22, 30, n_compounds)
    w = rng.uniform(35, 48, n_compounds)
    h = rng.uniform(35, 48, n_compounds)
    polygons = shapely.box(x0, y0, x0 + w, y0 + h)
    ids = [f"C{k + 1:05d}" for k in range(n_compounds)]
    compounds = gpd.GeoDataFrame(
        {
            "community_id": ids,
            "name": [f"示例小区{k + 1}" for k in range(n_compounds)],
            "population": rng.integers(300, 3000, n_compounds),
        },
        geometry=polygons,
        crs=CRS_METRIC,
    ).to_crs(4326)
    compounds.to_file(folder / "compounds.geojson", driver="GeoJSON")
    n_gates = rng.integers(1, 5, n_compounds)
    sides = np.concatenate([rng.permutation(4)[:k] for k in n_gates])
    owner = np.repeat(np.arange(n_compounds), n_gates)
    mid_x, mid_y = x0 + w / 2, y0 + h / 2
    gx = np.select([sides == 0, sides == 1], [x0[owner], x0[owner] + w[owner]], mid_x[owner])
    gy = np.select([sides == 2, sides == 3], [y0[owner], y0[owner] + h[owner]], mid_y[owner])
    gate_pts = gpd.GeoSeries(shapely.points(gx, gy), crs=CRS_METRIC).to_crs(4326)
    pd.DataFrame(
        {
            "gate_id": [f"G{k + 1:06d}" for k in range(owner.size)],
            "community_id": np.asarray(ids)[owner],
            "lng": np.round(gate_pts.x.to_numpy(), 7),
            "lat": np.round(gate_pts.y.to_numpy(), 7),
        }
    ).to_csv(folder / "gates.csv", index=False)

    # POIs: beside random streets, 5-30 m off; typed ones plus 10 % others
    typed, others, _ = _templates()
    n_other = n_pois // 10 if n_other is None else n_other
    kinds = np.concatenate(
        [np.arange(n_pois) % len(typed), -1 - (np.arange(n_other) % len(others))]
    )
    street_xy = np.stack([xy[u], xy[v]], axis=1)
    pick = rng.integers(0, u.size, kinds.size)
    t = rng.random(kinds.size)[:, None]
    foot = street_xy[pick, 0] * (1 - t) + street_xy[pick, 1] * t
    off = rng.uniform(5, 30, kinds.size) * rng.choice([-1, 1], kinds.size)
    direction = street_xy[pick, 1] - street_xy[pick, 0]
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    normal /= np.hypot(*normal.T)[:, None]
    pts = foot + normal * off[:, None]
    lonlat = gpd.GeoSeries(shapely.points(pts), crs=CRS_METRIC).to_crs(4326)
    lon, lat = wgs84_to_gcj02(lonlat.x.to_numpy(), lonlat.y.to_numpy())
    rows = [typed[k] if k >= 0 else others[-1 - k] for k in kinds]
    pd.DataFrame(
        {
            "id": [f"B0SYN{k:07d}" for k in range(kinds.size)],
            "name": [
                f"{r['name']}{k}" if r["kind"] == "" else r["name"] for k, r in enumerate(rows)
            ],
            "type": [r["type"] for r in rows],
            "typecode": [r["typecode"] for r in rows],
            "location": [f"{a:.6f},{b:.6f}" for a, b in zip(lon, lat, strict=True)],
        }
    ).to_csv(folder / "pois.csv", index=False, encoding="utf-8-sig")
    kind_of = [r["kind"] for r in rows]
    pd.DataFrame({"id": [f"B0SYN{k:07d}" for k in range(kinds.size)], "kind": kind_of}).to_csv(
        folder / "poi_kinds.csv", index=False
    )
    return {
        "nodes": side * side,
        "streets": int(u.size),
        "bridges": int(is_bridge.sum()),
        "compounds": n_compounds,
        "gates": int(owner.size),
        "pois": int(kinds.size),
        "typed_pois": n_pois,
    }


# --------------------------------------------------------------------- children
def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_lifecircle(spec: dict[str, Any]) -> None:
    """Run ``lifecircle score`` in this process with a timer around every stage."""
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    import lifecircle.cli as cli
    import lifecircle.maps as maps
    import lifecircle.outputs as outputs
    import lifecircle.report as report
    import lifecircle.robustness as robustness
    import lifecircle.study as study

    stages: dict[str, list[float]] = {}
    active: set[str] = set()

    def timed(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if name in active:
                return func(*args, **kwargs)
            active.add(name)
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                active.discard(name)
                entry = stages.setdefault(name, [0.0, 0.0, 0.0])
                entry[0] += time.process_time() - cpu
                entry[1] += time.perf_counter() - wall
                entry[2] = _peak_rss_mb()  # the peak so far: which stage raised it

        return wrapper

    stages["import"] = [
        time.process_time() - start_cpu,
        time.perf_counter() - start_wall,
        _peak_rss_mb(),
    ]
    from_files = study.Study.from_files.__func__  # type: ignore[attr-defined]
    study.Study.from_files = classmethod(timed("load", from_files))  # type: ignore[method-assign]
    for method, name in [
        ("score", "score"),
        ("isochrones", "isochrones"),
        ("gaps", "gaps"),
        ("summary", "summary"),
    ]:
        setattr(study.Study, method, timed(name, getattr(study.Study, method)))
    study.grid_cells = timed("gaps.grid_cells", study.grid_cells)
    study.score_cells = timed("gaps.score_cells", study.score_cells)
    study.dissolve_gaps = timed("gaps.dissolve_gaps", study.dissolve_gaps)
    robustness.assess_robustness = timed("robustness", robustness.assess_robustness)
    robustness.write_robustness_outputs = timed(
        "write_robustness", robustness.write_robustness_outputs
    )
    outputs.write_outputs = timed("write_outputs", outputs.write_outputs)
    outputs.write_excel = timed("write_outputs.excel", outputs.write_excel)
    maps.read_results = timed("read_results", maps.read_results)
    maps.write_map = timed("render_map", maps.write_map)
    report.write_report = timed("render_report", report.write_report)
    status = 0
    try:
        cli.app(spec["argv"], standalone_mode=False)
    except SystemExit as exc:
        status = int(exc.code or 0)
    except Exception as exc:  # reported, then the parent fails the run
        print(f"lifecircle failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        status = 1
    result = {
        "status": status,
        "stages": stages,
        "cpu_s": time.process_time() - start_cpu,
        "wall_s": time.perf_counter() - start_wall,
        "rss_mb": _peak_rss_mb(),
    }
    Path(spec["report"]).write_text(json.dumps(result))


def child_networkx(spec: dict[str, Any]) -> None:
    """The usual way: networkx, points moved to their nearest node, one search per gate."""
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    import geopandas as gpd
    import networkx as nx
    import numpy as np
    import pandas as pd
    import shapely
    from scipy.spatial import cKDTree

    from lifecircle.coords import gcj02_to_wgs84

    folder = Path(spec["folder"])
    thresholds: dict[str, float] = spec["thresholds"]
    streets = gpd.read_file(folder / "streets.geojson").to_crs(CRS_METRIC)
    coords = streets.geometry.get_coordinates().to_numpy()
    ends = np.stack([coords[0::2], coords[1::2]], axis=1)  # two-point centre-lines
    keys, inverse = np.unique(np.round(ends.reshape(-1, 2), 3), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1, 2)
    graph = nx.Graph()
    lengths = streets.geometry.length.to_numpy()
    graph.add_weighted_edges_from(
        zip(inverse[:, 0].tolist(), inverse[:, 1].tolist(), lengths.tolist(), strict=True),
        weight="length",
    )
    tree = cKDTree(keys)
    pois = pd.read_csv(folder / "pois.csv", dtype=str, encoding="utf-8-sig")
    kinds = pd.read_csv(folder / "poi_kinds.csv", dtype=str).fillna("")
    pois = pois.merge(kinds, on="id")
    pois = pois[pois["kind"].isin(list(thresholds))]
    lon, lat = np.array([s.split(",") for s in pois["location"]], dtype=float).T
    lon, lat = gcj02_to_wgs84(lon, lat)
    poi_xy = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326).to_crs(CRS_METRIC)
    poi_node = tree.query(poi_xy.get_coordinates().to_numpy())[1]
    by_node: dict[int, list[str]] = {}
    for n, kind in zip(poi_node.tolist(), pois["kind"].tolist(), strict=True):
        by_node.setdefault(n, []).append(kind)
    gates = pd.read_csv(folder / "gates.csv")
    gate_xy = gpd.GeoSeries(gpd.points_from_xy(gates["lng"], gates["lat"]), crs=4326)
    gate_node = tree.query(gate_xy.to_crs(CRS_METRIC).get_coordinates().to_numpy())[1]
    cutoff = max(thresholds.values())
    rows = []
    for community, group in pd.Series(gate_node).groupby(gates["community_id"].to_numpy()):
        best: dict[int, float] = {}
        for node in group.tolist():
            reach = nx.single_source_dijkstra_path_length(
                graph, node, cutoff=cutoff, weight="length"
            )
            for n, d in reach.items():
                if d < best.get(n, np.inf):
                    best[n] = d
        nearest = dict.fromkeys(thresholds, np.inf)
        counts = dict.fromkeys(thresholds, 0)
        for n, d in best.items():
            for kind in by_node.get(n, ()):
                nearest[kind] = min(nearest[kind], d)
                counts[kind] += d <= thresholds[kind]
        row: dict[str, Any] = {"community_id": community}
        for kind in thresholds:
            row[f"{kind}_m"] = nearest[kind]
            row[f"{kind}_n"] = counts[kind]
        rows.append(row)
    pd.DataFrame(rows).to_csv(Path(spec["out"]), index=False)
    # the gap grid: 100 m squares over the compounds' 200 m neighbourhoods, one search per cell
    compounds = gpd.read_file(folder / "compounds.geojson").to_crs(CRS_METRIC)
    area = shapely.union_all(compounds.buffer(200.0).to_numpy())
    minx, miny, maxx, maxy = area.bounds
    gx, gy = np.meshgrid(
        np.arange(minx // 100 * 100, maxx, 100), np.arange(miny // 100 * 100, maxy, 100)
    )
    cx, cy = gx.ravel() + 50, gy.ravel() + 50
    inside = shapely.contains_xy(area, cx, cy)
    cell_node = tree.query(np.stack([cx[inside], cy[inside]], axis=1))[1]
    cell_rows = []
    for node in cell_node.tolist():
        reach = nx.single_source_dijkstra_path_length(graph, node, cutoff=cutoff, weight="length")
        nearest = dict.fromkeys(thresholds, np.inf)
        for n, d in reach.items():
            for kind in by_node.get(n, ()):
                nearest[kind] = min(nearest[kind], d)
        cell_rows.append([nearest[k] > thresholds[k] for k in thresholds])
    blind = np.array(cell_rows, dtype=bool).reshape(-1, len(thresholds))
    result = {
        "status": 0,
        "cells": int(blind.shape[0]),
        "blind_cell_items": int(blind.sum()),
        "cpu_s": time.process_time() - start_cpu,
        "wall_s": time.perf_counter() - start_wall,
        "rss_mb": _peak_rss_mb(),
    }
    Path(spec["report"]).write_text(json.dumps(result))


def _run_child(mode: str, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    report = Path(spec["report"])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, mode, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or not report.exists():
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{mode} failed with status {proc.returncode}")
    result = json.loads(report.read_text())
    if result.get("status"):
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{mode} exited with status {result['status']}")
    result["child_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["child_wall_s"] = time.perf_counter() - wall
    return result


# --------------------------------------------------------------------- comparison
def _thresholds() -> dict[str, float]:
    from lifecircle.standards import load_standard

    standard = load_standard("gb50180-2018")
    typed, _, _ = _templates()
    kinds = {r["kind"] for r in typed}
    return {
        t: float(standard.type_threshold_m(t) or PEER_RADIUS_M)
        for t in standard.scored_types()
        if t in kinds
    }


def _compare(out_dir: Path, peer_csv: Path, thresholds: dict[str, float]) -> dict[str, float]:
    """How far the node-snapped answers are from lifecircle's, over compounds x types."""
    import numpy as np
    import pandas as pd

    scores = out_dir / "communities.csv"
    if not scores.exists():
        return {}
    ours = pd.read_csv(scores, encoding="utf-8-sig").set_index("community_id")
    peer = pd.read_csv(peer_csv).set_index("community_id").reindex(ours.index)
    gaps, ours_n, peer_n = [], 0, 0
    for kind in thresholds:
        a = ours[f"{kind}_m"].to_numpy(dtype=float)
        b = peer[f"{kind}_m"].to_numpy(dtype=float)
        both = np.isfinite(a) & np.isfinite(b) & (a <= PEER_RADIUS_M)
        gaps.append(a[both] - b[both])
        ours_n += int(np.nansum(ours[f"{kind}_n"].to_numpy(dtype=float)))
        peer_n += int(peer[f"{kind}_n"].sum())
    diff = np.concatenate(gaps)
    return {
        "mean_closer_m": float(diff.mean()) if diff.size else float("nan"),
        "pairs": int(diff.size),
        "count_excess": (peer_n / ours_n - 1) if ours_n else float("nan"),
    }


# --------------------------------------------------------------------- main
def _print_stages(label: str, result: dict[str, Any]) -> None:
    print(
        f"  {label}: cpu {result['child_cpu_s']:.1f} s, wall {result['child_wall_s']:.1f} s, "
        f"peak RSS {result['rss_mb']:.0f} MB"
    )
    for name, (cpu, wall, peak) in result.get("stages", {}).items():
        indent = "      " if "." in name else "    "
        print(
            f"{indent}{name:<24} cpu {cpu:7.1f} s  wall {wall:7.1f} s  peak so far {peak:6.0f} MB"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k only, peer at 10k")
    parser.add_argument("--sizes", default="10k,40k,160k", help="comma-separated: 10k,40k,160k")
    parser.add_argument("--pois", type=int, default=4500, help="typed POIs (plus 10 %% others)")
    parser.add_argument("--peer-size", default="40k", help="size of the networkx comparison")
    parser.add_argument("--no-peer", action="store_true", help="skip the networkx comparison")
    parser.add_argument("--no-fast", action="store_true", help="skip the fast-mode runs")
    parser.add_argument(
        "--other-pois",
        type=int,
        default=None,
        help="POIs of no life-circle type (default: a tenth of --pois), as in a full export",
    )
    parser.add_argument(
        "--compounds", type=int, default=None, help="compounds (default: the size's own)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600.0, help="per child, seconds")
    parser.add_argument("--keep", type=Path, default=None, help="keep the cities in this folder")
    args = parser.parse_args(argv)
    sizes = ["10k"] if args.quick else [s.strip() for s in args.sizes.split(",") if s.strip()]
    peer_size = "10k" if args.quick else args.peer_size
    thresholds = _thresholds()
    lines = []
    with tempfile.TemporaryDirectory(prefix="lifecircle-e2e-") as tmp:
        root = args.keep or Path(tmp)
        for size in sizes:
            n_nodes, n_compounds = SIZES[size]
            n_compounds = args.compounds or n_compounds
            others = "" if args.other_pois is None else f"-{args.other_pois}"
            folder = root / f"city-{size}-{n_compounds}-{args.pois}{others}"
            folder.mkdir(parents=True, exist_ok=True)
            wall = time.perf_counter()
            meta = generate_city(
                folder, n_nodes, n_compounds, args.pois, args.seed, n_other=args.other_pois
            )
            print(f"{size}: {meta} (generated in {time.perf_counter() - wall:.1f} s)")
            files = [
                "--network", str(folder / "streets.geojson"),
                "--facilities", str(folder / "pois.csv"),
                "--facilities-crs", "gcj02",
                "--communities", str(folder / "compounds.geojson"),
                "--gates", str(folder / "gates.csv"),
                "--standard", "gb50180-2018", "--cell", "100", "--quiet",
            ]  # fmt: skip
            modes = [("E2E", [])]
            if not args.no_fast:
                modes.append(("E2E_FAST", ["--no-isochrones", "--no-robustness"]))
            fast_result = None
            for tag, extra in modes:
                out = folder / f"out-{tag.lower()}"
                spec = {
                    "argv": ["score", *files, "--out", str(out), *extra],
                    "report": str(folder / f"report-{tag.lower()}.json"),
                }
                result = _run_child("--child-lifecircle", spec, args.timeout)
                _print_stages(tag, result)
                lines.append(
                    f"{tag} {size} cpu_s={result['child_cpu_s']:.1f} rss_mb={result['rss_mb']:.0f}"
                )
                if tag == "E2E_FAST" or fast_result is None:
                    fast_result = (result, out)
            if size == peer_size and not args.no_peer and fast_result is not None:
                spec = {
                    "folder": str(folder),
                    "thresholds": thresholds,
                    "out": str(folder / "networkx.csv"),
                    "report": str(folder / "report-networkx.json"),
                }
                peer = _run_child("--child-networkx", spec, args.timeout)
                ours = fast_result[0]["child_cpu_s"]
                print(
                    f"  networkx ({peer['cells']} grid cells): cpu {peer['child_cpu_s']:.1f} s, "
                    f"wall {peer['child_wall_s']:.1f} s, peak RSS {peer['rss_mb']:.0f} MB"
                )
                found = _compare(fast_result[1], Path(spec["out"]), thresholds)
                if found:
                    print(
                        f"  node-snapped networkx vs lifecircle, {found['pairs']} compound x "
                        f"type pairs within {PEER_RADIUS_M:g} m: compounds "
                        f"{found['mean_closer_m']:.1f} m closer on average; "
                        f"{found['count_excess']:+.1%} facilities counted within thresholds"
                    )
                lines.append(f"RATIO networkx_e2e/lifecircle_e2e {peer['child_cpu_s'] / ours:.2f}")
                # the peer only computes: compare with the stages that do the same
                stages = fast_result[0].get("stages", {})
                same = sum(stages.get(k, [0.0])[0] for k in ("import", "load", "score", "gaps"))
                if same > 0:
                    print(
                        f"  lifecircle's import, load, score and gap grid (no files written): "
                        f"cpu {same:.1f} s"
                    )
                    lines.append(
                        f"RATIO networkx_e2e/lifecircle_same_job {peer['child_cpu_s'] / same:.2f}"
                    )
    print()
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child-lifecircle":
        child_lifecircle(json.loads(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--child-networkx":
        child_networkx(json.loads(sys.argv[2]))
    else:
        raise SystemExit(main())
