"""Generator of the synthetic demo study area (development only).

Not part of the installed package: the demo files it writes are committed in
the repository's ``data/demo`` and ship inside the wheel (read with
:func:`lifecircle.datasets.demo_data`). ``scripts/make_demo_data.py`` runs it,
and a test checks that the committed files equal its output. The output is
deterministic (fixed seeds): two runs give byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import shapely
from shapely.geometry import LineString, MultiLineString, Point, Polygon, box
from shapely.ops import nearest_points

from lifecircle.coords import wgs84_to_gcj02
from lifecircle.datasets import DEMO_FILES, README_NAME, DemoData
from lifecircle.errors import InternalError

__all__ = ["build_demo_files", "generate_demo"]

logger = logging.getLogger(__name__)


def generate_demo(directory: str | Path) -> DemoData:
    """Generate the synthetic demo files into ``directory``.

    The output is deterministic (fixed seeds): generating twice gives
    byte-identical files. Each file is written to a temporary file in the same
    directory and then moved into place, so readers never see half a file.

    Parameters
    ----------
    directory
        Target directory; created if missing. Existing demo files are replaced.

    Returns
    -------
    DemoData
        Paths of the written files.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    contents = build_demo_files()
    for name, data in contents.items():
        _write_atomic(directory / name, data)
    logger.info("wrote %d synthetic demo files to %s", len(contents), directory)
    return _paths(directory)


def build_demo_files() -> dict[str, bytes]:
    """Build the content of every demo file (file name -> bytes), without writing."""
    area = _build_area()
    files = {
        DEMO_FILES["streets"]: _streets_geojson(area),
        DEMO_FILES["river"]: _river_geojson(area),
        DEMO_FILES["boundary"]: _boundary_geojson(area),
        DEMO_FILES["compounds"]: _compounds_geojson(area),
        DEMO_FILES["gates"]: _gates_csv(area),
        DEMO_FILES["pois"]: _pois_csv(area),
        DEMO_FILES["capacity"]: _capacity_csv(area),
    }
    files[DEMO_FILES["districts"]] = _districts_geojson(files[DEMO_FILES["boundary"]])
    files[README_NAME] = _readme(area).encode("utf-8")
    return files


def _paths(directory: Path) -> DemoData:
    return DemoData(**{key: directory / name for key, name in DEMO_FILES.items()})


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------
# Layout parameters (local metric frame: x east, y north, metres, origin at the
# south-west corner of the study area).
# ---------------------------------------------------------------------------

SEED = 20210615
CENTRE_LONLAT = (120.66, 28.01)
METRIC_CRS = "EPSG:32651"
AREA_W, AREA_H = 2150.0, 1700.0
TARGET_HOUSEHOLDS = 30_000
PERSONS_PER_HOUSEHOLD = 2.62
TARGET_COMPOUNDS = 66
MIN_COMPOUND_AREA = 5_000.0
SMALL_BLOCK_M2 = 30_000.0  # only blocks smaller than this become non-residential
LARGE_COMPOUND_HA = 3.5  # every other compound above this has a single gate
NODE_TOLERANCE = 1e-4  # metres: lines this close are treated as meeting
NODE_CLUSTER = 1e-3  # metres: meeting points this close are one junction

# (x at the south edge, x at the north edge, name, highway, bridge name or None)
NS_ARTERIALS: tuple[tuple[float, float, str, str, str | None], ...] = (
    (0.0, -20.0, "示例一路", "secondary", None),
    (430.0, 455.0, "示例二路", "secondary", None),
    (875.0, 905.0, "示例三路", "primary", "示例一桥"),
    (1320.0, 1300.0, "示例四路", "secondary", None),
    (1745.0, 1775.0, "示例五路", "secondary", "示例二桥"),
    (2150.0, 2135.0, "示例六路", "tertiary", None),
)
# (y at the west edge, y at the east edge, name, highway)
EW_ARTERIALS: tuple[tuple[float, float, str, str], ...] = (
    (0.0, 15.0, "示例南街", "secondary"),
    (425.0, 405.0, "示例大道", "primary"),
    (830.0, 860.0, "示例中街", "secondary"),
    (1700.0, 1690.0, "示例北街", "secondary"),
)
RIVER_NAME = "示例河"
RIVER_CONTROL = ((-300.0, 1060.0), (150.0, 1150.0), (600.0, 1175.0), (1050.0, 1320.0),
                 (1500.0, 1300.0), (1950.0, 1390.0), (2450.0, 1470.0))  # fmt: skip
SOUTH_BANK_ROAD = ("示例滨河路", "tertiary", 20.0)  # name, highway, setback from the water
NORTH_BANK_PATH = ("示例滨河步道", "footway", 12.0)
FOOTBRIDGE = ("示例人行桥", "footway", ((215.0, 900.0), (240.0, 1450.0)))

# Cells (blocks between arterials) with a fixed number of local streets
# (north-south, east-west); the rest are subdivided at ~190-230 m spacing.
CELL_LOCALS: dict[tuple[int, str], tuple[int, int]] = {
    (0, "s0"): (2, 1),
    (0, "s1"): (2, 1),
    (1, "s1"): (2, 1),
    (1, "s0"): (0, 1),  # two large compounds
    (4, "s1"): (0, 1),  # two large compounds
    (3, "n"): (0, 0),  # one large compound across the river
}

# Non-residential blocks, found by a point inside them.
LAND_USE_ANCHORS: dict[str, tuple[float, float]] = {
    "hospital": (1110.0, 620.0),
    "middle_a": (650.0, 640.0),
    "middle_b": (1540.0, 230.0),
    "primary_a": (220.0, 600.0),
    "primary_b": (1960.0, 640.0),
    "primary_n": (560.0, 1500.0),
    "park_central": (1100.0, 210.0),
    "park_river": (1520.0, 1180.0),
    "sports": (1540.0, 640.0),
    "market_a": (330.0, 120.0),
    "market_b": (1540.0, 1000.0),
    "market_c": (220.0, 1000.0),
    "civic": (1100.0, 1050.0),
}

SETBACK_M: dict[str, float] = {
    "primary": 18.0,
    "secondary": 15.0,
    "tertiary": 12.0,
    "residential": 9.0,
    "living_street": 6.0,
    "service": 5.0,
    "footway": 4.0,
    "path": 4.0,
}
GATE_PREFERENCE: dict[str, float] = {
    "primary": 0.3,
    "secondary": 0.6,
    "tertiary": 1.0,
    "residential": 1.3,
    "living_street": 1.2,
    "service": 1.0,
    "footway": 0.3,
    "path": 0.3,
}
ADDRESSABLE_HIGHWAYS = frozenset({"primary", "secondary", "tertiary", "residential"})

ROAD_WORDS: tuple[str, ...] = (
    "桂花", "樟树", "榕树", "杨柳", "梧桐", "紫荆", "茉莉", "海棠", "玉兰", "芙蓉",
    "枫林", "竹园", "松涛", "梅园", "兰亭", "荷塘", "丁香", "银杏", "石榴", "桃源",
    "杏坛", "芦荻", "菱湖", "青桐", "翠柏", "金桂", "丹枫", "绿荫", "清风", "明月",
    "朝阳", "晨曦", "春晖", "秋实", "夏荷", "冬青", "和顺", "安康", "永宁", "嘉禾",
    "瑞丰", "丰乐", "吉祥", "如意", "同心", "育才", "文昌", "学府", "书香", "望江",
    "临河", "听涛", "观澜", "揽月", "云栖", "星河", "霞光", "雨花", "雪松", "溪畔",
)  # fmt: skip
COMPOUND_WORDS: tuple[str, ...] = (
    "桂香", "锦绣", "翠湖", "春晖", "和风", "景秀", "嘉禾", "瑞景", "蓝湾", "金域",
    "银湖", "碧水", "云锦", "紫薇", "荷风", "兰馨", "梅韵", "竹语", "松风", "柳岸",
    "杏林", "桃李", "枫丹", "橘香", "茶韵", "星辰", "月明", "阳光", "晨风", "雅居",
    "安居", "乐居", "宜家", "康乐", "福寿", "长青", "常春", "永安", "泰和", "恒昌",
    "盛世", "鸿运", "聚福", "祥瑞", "东方", "水岸", "河畔", "绿洲", "翠竹", "青松",
    "白鹭", "黄鹂", "金桂", "丹桂", "玉泉", "清泉", "明珠", "锦华", "锦程", "华苑",
    "馨园", "悦府", "澜庭", "君悦", "天韵", "御景", "书香", "文华", "彩虹", "丽景",
)  # fmt: skip
COMPOUND_SUFFIXES = ("苑", "花园", "小区", "新村", "家园", "公寓", "华庭", "名苑", "雅苑", "佳园")

Coord = tuple[float, float]


# ---------------------------------------------------------------------------
# Geometry helpers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Street:
    """One street centre-line in the local metric frame."""

    geom: LineString
    highway: str
    name: str | None
    bridge: bool = False


def _line_cross(a: tuple[Coord, Coord], b: tuple[Coord, Coord]) -> Coord:
    """Intersection of the infinite lines through segments ``a`` and ``b``."""
    (x1, y1), (x2, y2) = a
    (x3, y3), (x4, y4) = b
    den = (x1 - x2) * (y3 - y4) - (y1 - y2) * (x3 - x4)
    if abs(den) < 1e-12:
        raise InternalError("parallel arterials in the demo layout")
    t = ((x1 - x3) * (y3 - y4) - (y1 - y3) * (x3 - x4)) / den
    return (x1 + t * (x2 - x1), y1 + t * (y2 - y1))


def _parts(geom: shapely.Geometry) -> list[Any]:
    """Flatten a geometry into its simple parts, dropping empties."""
    if geom.is_empty:
        return []
    if hasattr(geom, "geoms"):
        return [part for g in geom.geoms for part in _parts(g)]
    return [geom]


def _line_parts(geom: shapely.Geometry, min_length: float = 1.0) -> list[LineString]:
    return [p for p in _parts(geom) if p.geom_type == "LineString" and p.length >= min_length]


def _chaikin(points: np.ndarray, iterations: int) -> np.ndarray:
    """Smooth a polyline by corner cutting, keeping both end points."""
    for _ in range(iterations):
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        middle = np.empty((2 * len(q), 2))
        middle[0::2], middle[1::2] = q, r
        points = np.vstack([points[:1], middle, points[-1:]])
    return points


def _offset_polyline(xy: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Offset each vertex along the left normal (north of an eastward line)."""
    tangent = np.gradient(xy, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])
    return xy + normal * offsets[:, None]


def _unit_normal(line: LineString, distance: float) -> tuple[Coord, Coord]:
    """Point at ``distance`` along ``line`` and the unit left normal there."""
    length = line.length
    a = line.interpolate(max(0.0, distance - 1.0))
    b = line.interpolate(min(length, distance + 1.0))
    dx, dy = b.x - a.x, b.y - a.y
    norm = math.hypot(dx, dy) or 1.0
    p = line.interpolate(distance)
    return (p.x, p.y), (-dy / norm, dx / norm)


# ---------------------------------------------------------------------------
# Noding: split lines at every junction, with exactly shared junction points
# ---------------------------------------------------------------------------


class _NodeRegistry:
    """Canonical junction points: points closer than ``cluster`` become one."""

    def __init__(self, cluster: float) -> None:
        self.cluster = cluster
        self._cells: dict[tuple[int, int], list[Coord]] = {}

    def add(self, xy: Coord) -> Coord:
        ix, iy = math.floor(xy[0] / self.cluster), math.floor(xy[1] / self.cluster)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for node in self._cells.get((ix + dx, iy + dy), []):
                    if math.dist(node, xy) <= self.cluster:
                        return node
        self._cells.setdefault((ix, iy), []).append(xy)
        return xy


def _meeting_points(a: LineString, b: LineString) -> list[Coord]:
    inter = a.intersection(b)
    if inter.is_empty:
        # An end point lying on the other line up to rounding error.
        pa, pb = nearest_points(a, b)
        return [((pa.x + pb.x) / 2.0, (pa.y + pb.y) / 2.0)]
    points = []
    for part in _parts(inter):
        if part.geom_type != "Point":
            raise InternalError("demo streets overlap instead of crossing")
        points.append((part.x, part.y))
    return points


def _split_at(line: LineString, nodes: Sequence[Coord]) -> list[LineString]:
    """Split ``line`` at ``nodes``, using the node coordinates exactly."""
    coords = [tuple(c) for c in line.coords]
    cumulative = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(np.array(coords), axis=0).T))])
    events: list[tuple[float, int, Coord]] = []
    for node in nodes:
        events.append((line.project(Point(node)), 0, node))
    for dist, coord in zip(cumulative, coords, strict=True):
        if all(math.dist(coord, node) > NODE_CLUSTER for node in nodes):
            events.append((float(dist), 1, coord))
    events.sort()
    junctions = set(nodes)
    pieces: list[list[Coord]] = [[]]
    for _, _, coord in events:
        current = pieces[-1]
        if current and current[-1] == coord:
            continue
        current.append(coord)
        if coord in junctions and len(current) > 1:
            pieces.append([coord])
    return [LineString(p) for p in pieces if len(p) >= 2 and LineString(p).length > NODE_CLUSTER]


def node_streets(streets: Sequence[Street]) -> list[Street]:
    """Split every street at every junction so that lines meet at shared end points."""
    lines = [s.geom for s in streets]
    tree = shapely.STRtree(lines)
    left, right = tree.query(lines, predicate="dwithin", distance=NODE_TOLERANCE)
    registry = _NodeRegistry(NODE_CLUSTER)
    junctions: list[list[Coord]] = [[] for _ in lines]
    for i, j in sorted(zip(left.tolist(), right.tolist(), strict=True)):
        if i >= j:
            continue
        for xy in _meeting_points(lines[i], lines[j]):
            node = registry.add(xy)
            for k in (i, j):
                if node not in junctions[k]:
                    junctions[k].append(node)
    pieces = []
    for street, nodes in zip(streets, junctions, strict=True):
        pieces.extend(replace(street, geom=g) for g in _split_at(street.geom, nodes))
    return pieces


def _faces(streets: Sequence[Street], water: Polygon) -> list[Polygon]:
    """Blocks enclosed by streets, excluding those on the water, in a fixed order."""
    faces = [
        f
        for f in _parts(shapely.polygonize([s.geom for s in streets]))
        if f.intersection(water).area < 1.0
    ]
    return sorted(faces, key=lambda f: (round(f.centroid.y, 3), round(f.centroid.x, 3)))


# ---------------------------------------------------------------------------
# The area
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class River:
    """The river: its centre-line, water polygon and the strip between the bank lines."""

    centre: np.ndarray
    water: Polygon
    corridor: Polygon  # between the bank road and the bank path
    south_road: LineString
    north_path: LineString

    def centre_y(self, x: float) -> float:
        """Northing of the river centre-line at easting ``x`` (points north of it are across)."""
        return float(np.interp(x, self.centre[:, 0], self.centre[:, 1]))


@dataclass
class Compound:
    """A gated residential compound (小区) and its gates, in the local frame."""

    community_id: str
    name: str
    polygon: Polygon
    households: int
    built_year: int
    gates: list[Coord] = field(default_factory=list)


@dataclass
class Poi:
    """One row of the POI export, located in the local frame."""

    kind: str | None  # life-circle facility type, None for other POIs
    name: str
    amap_type: str
    typecode: str
    point: Coord
    address: str
    tel: str
    capacity: tuple[int, str] | None = None
    poi_id: str = ""


@dataclass
class Area:
    """Everything generated, in the local frame, with the conversion to WGS84."""

    boundary: Polygon
    river: River
    streets: list[Street]
    isolated: list[Street]
    land_use: dict[str, Polygon]
    compounds: list[Compound]
    pois: list[Poi]
    to_wgs84: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _rng(stage: int) -> np.random.Generator:
    # One stream per stage, so that changing one stage leaves the others as they were.
    return np.random.default_rng([SEED, stage])


def _build_area() -> Area:
    """Lay out the area: arterials and river, local streets, alleys, land use, compounds, POIs."""
    river = _river()
    boundary, framework = _framework(river)
    cells = _faces(node_streets(framework), river.water)
    locals_ = _local_streets(cells, river, _rng(1))
    blocks = _faces(node_streets(framework + locals_), river.water)
    extras = _alleys_and_dead_ends(blocks, _rng(2))
    streets = node_streets(framework + locals_ + extras)
    blocks = _faces(streets, river.water)
    land_use = _designate_land_use(blocks)
    isolated = _isolated_service_road(land_use["hospital"])
    compounds = _compounds(blocks, land_use, streets, river, _rng(3))
    area = Area(boundary, river, streets, isolated, land_use, compounds, [], _to_wgs84_factory())
    area.pois = _pois(area, _rng(4))
    return area


def _river() -> River:
    centre = _chaikin(np.array(RIVER_CONTROL), 4)
    steps = np.hypot(*np.diff(centre, axis=0).T)
    t = np.concatenate([[0.0], np.cumsum(steps)]) / steps.sum()
    width = 92.0 + 24.0 * np.sin(2.0 * np.pi * (1.3 * t + 0.15))
    south_water = _offset_polyline(centre, -width / 2.0)
    north_water = _offset_polyline(centre, width / 2.0)
    south_road = _offset_polyline(centre, -(width / 2.0 + SOUTH_BANK_ROAD[2]))
    north_path = _offset_polyline(centre, width / 2.0 + NORTH_BANK_PATH[2])
    water = Polygon(np.vstack([south_water, north_water[::-1]]))
    corridor = Polygon(np.vstack([south_road, north_path[::-1]]))
    return River(centre, water, corridor, LineString(south_road), LineString(north_path))


def _framework(river: River) -> tuple[Polygon, list[Street]]:
    """Arterials, the two bank lines and the bridges."""
    ns = [((xs, 0.0), (xn, AREA_H)) for xs, xn, *_ in NS_ARTERIALS]
    ew = [((0.0, yw), (AREA_W, ye)) for yw, ye, *_ in EW_ARTERIALS]
    corner = [[_line_cross(v, h) for h in ew] for v in ns]
    boundary = Polygon([corner[0][0], corner[-1][0], corner[-1][-1], corner[0][-1]])
    streets: list[Street] = []
    for i, (_, _, name, highway, bridge_name) in enumerate(NS_ARTERIALS):
        full = LineString([corner[i][0], corner[i][-1]])
        streets += [Street(p, highway, name) for p in _line_parts(full.difference(river.corridor))]
        if bridge_name is not None:
            crossing = _line_parts(full.intersection(river.corridor))
            streets += [Street(p, highway, bridge_name, bridge=True) for p in crossing]
    for j, (_, _, name, highway) in enumerate(EW_ARTERIALS):
        full = LineString([corner[0][j], corner[-1][j]])
        if full.intersects(river.corridor):
            raise InternalError("an east-west arterial runs into the river")
        streets.append(Street(full, highway, name))
    for line, (name, highway, _) in (
        (river.south_road, SOUTH_BANK_ROAD),
        (river.north_path, NORTH_BANK_PATH),
    ):
        streets += [Street(p, highway, name) for p in _line_parts(line.intersection(boundary))]
    name, highway, ends = FOOTBRIDGE
    crossing = _line_parts(LineString(ends).intersection(river.corridor))
    streets += [Street(p, highway, name, bridge=True) for p in crossing]
    return boundary, streets


class _Namer:
    """Hands out invented words from a pool in shuffled order.

    Street names must be unique, so by default running out is an error; POI
    names may repeat (``cycle=True`` reshuffles the pool).
    """

    def __init__(self, words: Sequence[str], rng: np.random.Generator, cycle: bool = False) -> None:
        self._pool = list(words)
        self._rng = rng
        self._cycle = cycle
        self._words: list[str] = []
        self._reshuffle()

    def _reshuffle(self) -> None:
        self._words = [self._pool[i] for i in self._rng.permutation(len(self._pool))]

    def word(self) -> str:
        if not self._words:
            if not self._cycle:
                raise InternalError("demo name pool exhausted")
            self._reshuffle()
        return self._words.pop()


def _cell_key(cell: Polygon, river: River) -> tuple[int, str]:
    c = cell.representative_point()
    mids = [(xs + xn) / 2.0 for xs, xn, *_ in NS_ARTERIALS]
    col = int(np.searchsorted(mids, c.x)) - 1
    if c.y > river.centre_y(c.x):
        return col, "n"
    rows = [(yw + ye) / 2.0 for yw, ye, *_ in EW_ARTERIALS]
    return col, "s0" if c.y < rows[1] else "s1" if c.y < rows[2] else "s2"


def _extent_through(cell: Polygon, x: float | None = None, y: float | None = None) -> Coord:
    """Extent of ``cell`` along a vertical (``x`` given) or horizontal (``y`` given) line."""
    minx, miny, maxx, maxy = cell.bounds
    if x is not None:
        _, lo, _, hi = LineString([(x, miny - 1), (x, maxy + 1)]).intersection(cell).bounds
    else:
        lo, _, hi, _ = LineString([(minx - 1, y), (maxx + 1, y)]).intersection(cell).bounds
    return lo, hi


def _local_streets(
    cells: Sequence[Polygon], river: River, rng: np.random.Generator
) -> list[Street]:
    """Local streets inside each cell between arterials, at ~190-230 m spacing."""
    namer = _Namer(ROAD_WORDS, rng)
    streets: list[Street] = []
    for cell in cells:
        key = _cell_key(cell, river)
        c = cell.representative_point()
        x0, x1 = _extent_through(cell, y=c.y)
        y0, y1 = _extent_through(cell, x=c.x)
        n_ns, n_ew = CELL_LOCALS.get(
            key,
            (
                max(0, round((x1 - x0) / rng.uniform(165, 225)) - 1),
                max(0, round((y1 - y0) / rng.uniform(160, 215)) - 1),
            ),
        )
        for k in range(n_ns):
            xb = x0 + (x1 - x0) * ((k + 1) / (n_ns + 1) + rng.uniform(-0.08, 0.08))
            line = LineString([(xb, y0 - 400), (xb + rng.uniform(-35, 35), y1 + 400)])
            streets += _clipped_street(line, cell, f"示例{namer.word()}路", rng)
        for k in range(n_ew):
            yb = y0 + (y1 - y0) * ((k + 1) / (n_ew + 1) + rng.uniform(-0.08, 0.08))
            line = LineString([(x0 - 400, yb), (x1 + 400, yb + rng.uniform(-30, 30))])
            streets += _clipped_street(line, cell, f"示例{namer.word()}街", rng)
    return streets


def _clipped_street(
    line: LineString, cell: Polygon, name: str, rng: np.random.Generator
) -> list[Street]:
    highway = "tertiary" if rng.random() < 0.25 else "residential"
    return [Street(p, highway, name) for p in _line_parts(line.intersection(cell), 40.0)]


def _alleys_and_dead_ends(blocks: Sequence[Polygon], rng: np.random.Generator) -> list[Street]:
    """Alleys and footpaths splitting some big blocks, and a few cul-de-sacs."""
    namer = _Namer(ROAD_WORDS[::-1], rng)
    anchors = [Point(xy) for xy in LAND_USE_ANCHORS.values()]
    extras: list[Street] = []
    for block in blocks:
        designated = any(block.contains(a) for a in anchors)
        roll = rng.random()
        if block.area > 42_000 and not designated and roll < 0.45:
            extras += _alley(block, namer, rng)
        elif block.area > 12_000 and not designated and roll > 0.86:
            extras += _dead_end(block, namer, rng)
    return extras


def _alley(block: Polygon, namer: _Namer, rng: np.random.Generator) -> list[Street]:
    minx, miny, maxx, maxy = block.bounds
    c = block.centroid
    shift = rng.uniform(-0.1, 0.1)
    if maxx - minx > maxy - miny:
        x = c.x + shift * (maxx - minx)
        line = LineString([(x, miny - 50), (x + rng.uniform(-6, 6), maxy + 50)])
    else:
        y = c.y + shift * (maxy - miny)
        line = LineString([(minx - 50, y), (maxx + 50, y + rng.uniform(-6, 6))])
    if rng.random() < 0.6:
        highway, name = "living_street", f"示例{namer.word()}巷"
    else:
        highway, name = str(rng.choice(["footway", "path"])), None
    return [Street(p, highway, name) for p in _line_parts(line.intersection(block), 40.0)]


def _dead_end(block: Polygon, namer: _Namer, rng: np.random.Generator) -> list[Street]:
    """A cul-de-sac from the middle of one block side, half-way into the block."""
    minx, miny, maxx, maxy = block.bounds
    c = block.centroid
    side = int(rng.integers(4))
    if side in (0, 1):  # from the south or north side
        start_y = miny - 50 if side == 0 else maxy + 50
        line = LineString([(c.x, start_y), (c.x, c.y)])
    else:
        start_x = minx - 50 if side == 2 else maxx + 50
        line = LineString([(start_x, c.y), (c.x, c.y)])
    inside = _line_parts(line.intersection(block), 20.0)
    if not inside:
        return []
    piece = inside[0]
    length = piece.length * rng.uniform(0.55, 0.8)
    stub = LineString([piece.coords[0], piece.interpolate(length).coords[0]])
    kind = int(rng.integers(3))
    highway, name = [
        ("service", None),
        ("residential", f"示例{namer.word()}里"),
        ("living_street", f"示例{namer.word()}弄"),
    ][kind]
    return [Street(stub, highway, name)]


def _designate_land_use(blocks: Sequence[Polygon]) -> dict[str, Polygon]:
    land_use: dict[str, Polygon] = {}
    for use, xy in LAND_USE_ANCHORS.items():
        hits = [b for b in blocks if b.contains(Point(xy))]
        if len(hits) != 1:
            raise InternalError(f"demo land-use anchor {use} is not inside one block")
        if any(hits[0].equals(other) for other in land_use.values()):
            raise InternalError(f"demo land-use anchor {use} shares a block")
        land_use[use] = hits[0]
    return land_use


def _isolated_service_road(site: Polygon) -> list[Street]:
    """A service road inside the hospital grounds that joins no public street.

    Real extracts contain such pieces; a network builder must cope with them.
    """
    minx, miny, maxx, maxy = site.buffer(-45.0).bounds
    u = LineString([(minx, maxy), (minx, miny), (maxx, miny), (maxx, maxy - 20.0)])
    pieces = _line_parts(u.intersection(site.buffer(-30.0)), 20.0)
    if len(pieces) != 1:
        raise InternalError("the hospital site is too small for its service road")
    return [Street(pieces[0], "service", None)]


# ---------------------------------------------------------------------------
# Compounds and gates
# ---------------------------------------------------------------------------


def _street_buffer(streets: Sequence[Street]) -> shapely.Geometry:
    return shapely.union_all(
        [
            s.geom.buffer(SETBACK_M[s.highway], cap_style="square", join_style="mitre")
            for s in streets
        ]
    )


def _compounds(
    blocks: Sequence[Polygon],
    land_use: dict[str, Polygon],
    streets: Sequence[Street],
    river: River,
    rng: np.random.Generator,
) -> list[Compound]:
    taken = list(land_use.values())
    occupied = _street_buffer(streets)
    candidates: list[Polygon] = []
    for block in blocks:
        if any(block.equals(t) for t in taken):
            continue
        shape = _compound_shape(block, occupied, rng)
        if shape is not None:
            candidates.append(shape)
    keep = _choose_residential(candidates, rng)
    shapes = sorted(
        (candidates[i] for i in keep), key=lambda p: (-round(p.centroid.y / 200), p.centroid.x)
    )
    tree = shapely.STRtree([s.geom for s in streets])
    names = _compound_names(len(shapes), rng)
    compounds = []
    for k, shape in enumerate(shapes):
        compounds.append(
            Compound(
                community_id=f"C{k + 1:03d}",
                name=names[k],
                polygon=shape,
                households=0,
                built_year=_built_year(shape, river, rng),
            )
        )
    _assign_households(compounds, rng)
    # Every other large compound has a single gate on one side only.
    large = [c for c in compounds if c.polygon.area / 10_000.0 > LARGE_COMPOUND_HA]
    single_gate = {c.community_id for c in large[::2]}
    for compound in compounds:
        compound.gates = _gates(compound, compound.community_id in single_gate, streets, tree, rng)
    return compounds


def _compound_shape(
    block: Polygon, occupied: shapely.Geometry, rng: np.random.Generator
) -> Polygon | None:
    """The gated part of a block: the block minus street space, minus a small inset."""
    pieces = _parts(block.difference(occupied))
    if not pieces:
        return None
    shape = max(pieces, key=lambda p: p.area)
    shape = shape.buffer(-rng.uniform(0.0, 5.0), join_style="mitre").simplify(0.5)
    shapes = [p for p in _parts(shape) if p.geom_type == "Polygon"]
    if not shapes:
        return None
    shape = max(shapes, key=lambda p: p.area)
    return shape if shape.area >= MIN_COMPOUND_AREA else None


def _choose_residential(candidates: Sequence[Polygon], rng: np.random.Generator) -> list[int]:
    """Keep TARGET_COMPOUNDS blocks as compounds; some smaller ones become shops and offices."""
    surplus = len(candidates) - TARGET_COMPOUNDS
    droppable = [i for i, c in enumerate(candidates) if c.area < SMALL_BLOCK_M2]
    if surplus < 0 or surplus > len(droppable):
        raise InternalError(f"demo layout has {len(candidates)} residential blocks")
    dropped = set(rng.choice(droppable, size=surplus, replace=False).tolist())
    return [i for i in range(len(candidates)) if i not in dropped]


def _compound_names(count: int, rng: np.random.Generator) -> list[str]:
    words = [COMPOUND_WORDS[i] for i in rng.permutation(len(COMPOUND_WORDS))[:count]]
    return [
        f"示例·{w}{COMPOUND_SUFFIXES[int(rng.integers(len(COMPOUND_SUFFIXES)))]}" for w in words
    ]


def _built_year(shape: Polygon, river: River, rng: np.random.Generator) -> int:
    """Older compounds in the south-west, newer to the east and across the river."""
    c = shape.centroid
    year = 1990.0 + 16.0 * c.x / AREA_W + rng.normal(0.0, 4.0)
    if c.y > river.centre_y(c.x):
        year += 7.0
    return int(np.clip(round(year), 1986, 2020))


def _assign_households(compounds: Sequence[Compound], rng: np.random.Generator) -> None:
    """Households from area and an era-dependent density, scaled to the target total."""
    raw = []
    for compound in compounds:
        hectares = compound.polygon.area / 10_000.0
        per_ha = (
            190.0 if compound.built_year < 2000 else 145.0 if compound.built_year < 2010 else 170.0
        )
        raw.append(hectares * per_ha * rng.uniform(0.8, 1.2))
    scale = TARGET_HOUSEHOLDS / sum(raw)
    households = [max(40, round(r * scale)) for r in raw]
    households[int(np.argmax(households))] += TARGET_HOUSEHOLDS - sum(households)
    for compound, count in zip(compounds, households, strict=True):
        compound.households = count


def _gate_count(compound: Compound, single_gate: bool, rng: np.random.Generator) -> int:
    hectares = compound.polygon.area / 10_000.0
    if single_gate:
        return 1
    if hectares > LARGE_COMPOUND_HA:
        return int(rng.integers(3, 5))
    if hectares > 1.8:
        return int(rng.integers(2, 4))
    return int(rng.integers(1, 3))


def _gates(
    compound: Compound,
    single_gate: bool,
    streets: Sequence[Street],
    tree: shapely.STRtree,
    rng: np.random.Generator,
) -> list[Coord]:
    """Gates on the compound boundary, each facing a street on a different side."""
    polygon = compound.polygon
    centre = polygon.centroid
    by_side: dict[int, list[tuple[float, LineString]]] = {}
    for idx in tree.query(polygon, predicate="dwithin", distance=26.0).tolist():
        street = streets[int(idx)]
        if street.bridge:
            continue
        frontage = street.geom.intersection(polygon.buffer(26.0))
        for part in _line_parts(frontage, 25.0):
            side = _side_of(centre, part.interpolate(0.5, normalized=True))
            weight = part.length * GATE_PREFERENCE[street.highway]
            by_side.setdefault(side, []).append((weight, part))
    sides = sorted(by_side)
    weights = np.array([max(w for w, _ in by_side[s]) for s in sides])
    count = min(_gate_count(compound, single_gate, rng), len(sides))
    chosen = rng.choice(len(sides), size=count, replace=False, p=weights / weights.sum())
    gates = []
    for k in sorted(chosen.tolist()):
        _, frontage = max(by_side[sides[k]], key=lambda item: item[0])
        gate = _gate_on(polygon, frontage, rng)
        if gate is not None:
            gates.append(gate)
    if not gates:
        raise InternalError(f"no gate fits compound {compound.community_id}")
    return gates


def _side_of(centre: Point, point: Point) -> int:
    """Which side of ``centre`` a point lies on: 0 east, 1 north, 2 west, 3 south."""
    bearing = math.degrees(math.atan2(point.y - centre.y, point.x - centre.x))
    return int(((bearing + 45.0) % 360.0) // 90.0)


def _gate_on(polygon: Polygon, frontage: LineString, rng: np.random.Generator) -> Coord | None:
    """The point of the compound boundary nearest to a spot in the middle of the frontage."""
    for _ in range(20):
        on_street = frontage.interpolate(rng.uniform(0.25, 0.75), normalized=True)
        gate = polygon.exterior.interpolate(polygon.exterior.project(on_street))
        if 4.0 <= gate.distance(frontage) <= 25.0:
            return (gate.x, gate.y)
    return None


# ---------------------------------------------------------------------------
# POIs
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PoiSpec:
    """How many POIs of one kind to place, where, and how Amap labels them."""

    kind: str | None
    count: int
    zone: str  # "any", "south", "north", "west", "east", joined by "&"; or "face:<use>"
    amap_type: str
    typecode: str
    names: tuple[str, ...]  # templates with {w} (invented word) and {road}


T_KINDERGARTEN = ("科教文化服务;学校;幼儿园", "141204")
T_GENERIC_LIFE = ("生活服务;生活服务场所;生活服务场所", "070000")
T_GENERIC_SPORT = ("体育休闲服务;体育休闲服务场所;体育休闲服务场所", "080000")
T_CLINIC = ("医疗保健服务;诊所;诊所", "090300")
T_GOVERNMENT = ("政府机构及社会团体;政府机关;政府机关", "130100")

FACILITY_PLAN: tuple[PoiSpec, ...] = (
    PoiSpec("kindergarten", 7, "south&west", *T_KINDERGARTEN, ("示例{w}幼儿园",)),
    PoiSpec("kindergarten", 1, "north&west", *T_KINDERGARTEN, ("示例{w}幼儿园",)),
    PoiSpec("nursery", 3, "south", *T_GENERIC_LIFE, ("示例{w}托育中心",)),
    PoiSpec("primary_school", 1, "face:primary_a", "科教文化服务;学校;小学", "141203",
            ("示例实验小学",)),
    PoiSpec("primary_school", 1, "face:primary_b", "科教文化服务;学校;小学", "141203",
            ("示例第一小学",)),
    PoiSpec("primary_school", 1, "face:primary_n", "科教文化服务;学校;小学", "141203",
            ("示例滨河小学",)),
    PoiSpec("middle_school", 1, "face:middle_a", "科教文化服务;学校;中学", "141202",
            ("示例第二中学",)),
    PoiSpec("middle_school", 1, "face:middle_b", "科教文化服务;学校;中学", "141202",
            ("示例实验中学",)),
    PoiSpec("health_centre", 1, "face:civic", "医疗保健服务;综合医院;卫生院", "090102",
            ("示例街道社区卫生服务中心",)),
    PoiSpec("health_station", 3, "south", *T_CLINIC, ("示例{w}社区卫生服务站",)),
    PoiSpec("health_station", 1, "north", *T_CLINIC, ("示例{w}社区卫生服务站",)),
    PoiSpec("clinic", 6, "any", *T_CLINIC, ("示例{w}诊所", "示例{w}口腔诊所", "示例{w}中医诊所")),
    PoiSpec("hospital", 1, "face:hospital", "医疗保健服务;综合医院;综合医院", "090100",
            ("示例中心医院",)),
    PoiSpec("pharmacy", 10, "any", "医疗保健服务;医药保健销售店;药房", "090601",
            ("示例康民大药房({road}店)", "示例仁心大药房({road}店)", "示例百草堂药店")),
    PoiSpec("fresh_market", 1, "face:market_a", "购物服务;综合市场;农副产品市场", "060703",
            ("示例{w}菜市场",)),
    PoiSpec("fresh_market", 1, "face:market_b", "购物服务;综合市场;农副产品市场", "060703",
            ("示例{w}农贸市场",)),
    PoiSpec("fresh_market", 1, "face:market_c", "购物服务;综合市场;农副产品市场", "060703",
            ("示例{w}菜市场",)),
    PoiSpec("supermarket", 3, "south", "购物服务;超级市场;超市", "060400",
            ("示例佳惠超市({road}店)", "示例家家福超市({road}店)")),
    PoiSpec("supermarket", 1, "north", "购物服务;超级市场;超市", "060400",
            ("示例百汇生活超市({road}店)",)),
    PoiSpec("supermarket", 2, "face:market_b", "购物服务;超级市场;超市", "060400",
            ("示例佳惠超市({road}店)",)),
    PoiSpec("convenience_store", 25, "any", "购物服务;便民商店/便利店;便民商店/便利店", "060200",
            ("示例好邻便利店({road}店)", "示例邻家便利店({road}店)", "示例{w}便利店")),
    PoiSpec("parcel_point", 8, "any", *T_GENERIC_LIFE, ("菜鸟驿站(示例{w}店)",)),
    PoiSpec("parcel_point", 2, "south", *T_GENERIC_LIFE, ("示例{w}快递驿站",)),
    PoiSpec("park", 1, "face:park_central", "风景名胜;公园广场;公园", "110101",
            ("示例中心公园",)),
    PoiSpec("park", 1, "face:park_river", "风景名胜;公园广场;公园", "110101",
            ("示例滨河公园",)),
    PoiSpec("park", 1, "north", "风景名胜;公园广场;公园", "110101", ("示例口袋公园",)),
    PoiSpec("sports", 2, "face:sports", "体育休闲服务;运动场馆;综合体育馆", "080100",
            ("示例体育馆", "示例游泳馆")),
    PoiSpec("fitness", 6, "south", *T_GENERIC_SPORT, ("示例{w}健身广场",)),
    PoiSpec("fitness", 2, "north", *T_GENERIC_SPORT, ("示例{w}健身广场",)),
    PoiSpec("culture_centre", 1, "face:civic", "科教文化服务;文化宫;文化宫", "140800",
            ("示例街道文化活动中心",)),
    PoiSpec("culture_station", 4, "south", *T_GENERIC_LIFE, ("示例{w}社区文化活动站",)),
    PoiSpec("culture_station", 1, "north", *T_GENERIC_LIFE, ("示例{w}社区文化活动站",)),
    PoiSpec("library", 1, "face:civic", "科教文化服务;图书馆;图书馆", "140500",
            ("示例街道图书馆",)),
    PoiSpec("library", 1, "north", "科教文化服务;图书馆;图书馆", "140500", ("示例城市书房",)),
    PoiSpec("elderly_daycare", 5, "south", *T_GENERIC_LIFE, ("示例{w}社区日间照料中心",)),
    PoiSpec("nursing_home", 2, "south", *T_GENERIC_LIFE, ("示例颐康养老院", "示例福寿养老院")),
    PoiSpec("community_canteen", 4, "south", *T_GENERIC_LIFE,
            ("示例{w}长者食堂", "示例{w}社区食堂")),
    PoiSpec("community_service", 1, "face:civic", *T_GOVERNMENT, ("示例街道社区服务中心",)),
    PoiSpec("community_service", 5, "south", *T_GOVERNMENT, ("示例{w}社区居民委员会",)),
    PoiSpec("community_service", 2, "north", *T_GOVERNMENT, ("示例{w}社区居民委员会",)),
    PoiSpec("public_toilet", 8, "any", "公共设施;公共厕所;公共厕所", "200300",
            ("公共厕所({road})",)),
)  # fmt: skip

OTHER_PLAN: tuple[PoiSpec, ...] = (
    PoiSpec(None, 40, "any", "餐饮服务;中餐厅;中餐厅", "050100",
            ("示例{w}面馆", "示例{w}小吃店", "示例{w}海鲜楼", "示例{w}酒家")),
    PoiSpec(None, 15, "any", "餐饮服务;快餐厅;快餐厅", "050300", ("示例{w}快餐",)),
    PoiSpec(None, 8, "any", "餐饮服务;咖啡厅;咖啡厅", "050500", ("示例{w}咖啡",)),
    PoiSpec(None, 6, "any", "餐饮服务;茶艺馆;茶艺馆", "050600", ("示例{w}茶楼",)),
    PoiSpec(None, 6, "any", "餐饮服务;糕饼店;糕饼店", "050800", ("示例{w}面包房",)),
    PoiSpec(None, 8, "any", "金融保险服务;银行;银行", "160100",
            ("示例商业银行({road}支行)", "示例农商银行({road}分理处)")),
    PoiSpec(None, 8, "any", "住宿服务;宾馆酒店;宾馆酒店", "100100",
            ("示例{w}大酒店", "示例{w}宾馆")),
    PoiSpec(None, 18, "any", "生活服务;美容美发店;美容美发店", "071100", ("示例{w}美发",)),
    PoiSpec(None, 6, "any", "商务住宅;楼宇;商务写字楼", "120201", ("示例{w}大厦",)),
    PoiSpec(None, 3, "any", "体育休闲服务;娱乐场所;KTV", "080302", ("示例{w}KTV",)),
    PoiSpec(None, 8, "any", "科教文化服务;培训机构;培训机构", "141400",
            ("示例{w}培训学校", "示例{w}教育")),
    # Name says kindergarten, type says car park: a trap for name-only matching.
    PoiSpec(None, 2, "south&west", "交通设施服务;停车场;停车场相关", "150900",
            ("示例{w}幼儿园停车场",)),
)  # fmt: skip

WEST_EAST_SPLIT_X = 1280.0  # just west of 示例四路
BUS_ROADS = ("示例大道", "示例中街", "示例三路", "示例五路", "示例二路", "示例北街", "示例滨河路")
BUS_SPACING_M = 480.0
RESIDENTIAL_POI_TYPE = ("商务住宅;住宅区;住宅小区", "120302")
RESIDENTIAL_POI_SHARE = 0.6
KINDERGARTEN_SEATS = (180, 240, 270, 300, 360)
NURSING_HOME_BEDS = (120, 200)


class _PoiPlacer:
    """Places POIs a few metres off named streets and writes their addresses."""

    def __init__(self, area: Area, rng: np.random.Generator) -> None:
        self.area = area
        self.rng = rng
        self.words = _Namer(ROAD_WORDS + COMPOUND_WORDS, rng, cycle=True)
        self.pieces = [
            s for s in area.streets if s.name and not s.bridge and s.highway in ADDRESSABLE_HIGHWAYS
        ]
        self.all_lines = shapely.STRtree([s.geom for s in area.streets])
        merged: dict[str, list[LineString]] = {}
        for s in self.pieces:
            merged.setdefault(str(s.name), []).append(s.geom)
        self.roads = {name: MultiLineString(lines) for name, lines in merged.items()}
        self.search_area = area.boundary.buffer(45.0)

    def in_zone(self, zone: str, xy: Coord) -> bool:
        north = xy[1] > self.area.river.centre_y(xy[0])
        west = xy[0] < WEST_EAST_SPLIT_X
        tests = {"any": True, "north": north, "south": not north, "west": west, "east": not west}
        return all(tests[part] for part in zone.split("&"))

    def candidates(self, zone: str) -> list[Street]:
        if zone.startswith("face:"):
            site = self.area.land_use[zone[5:]]
            return [s for s in self.pieces if s.geom.distance(site) < 1.0]
        return [
            s
            for s in self.pieces
            if self.in_zone(zone, s.geom.coords[0]) and self.in_zone(zone, s.geom.coords[-1])
        ]

    def place(self, zone: str, offset: tuple[float, float] = (6.0, 38.0)) -> tuple[Coord, str, str]:
        """A point near a street in ``zone``, the street's name and the address."""
        pieces = self.candidates(zone)
        site = self.area.land_use[zone[5:]] if zone.startswith("face:") else None
        lengths = np.array([p.geom.length for p in pieces])
        for _ in range(200):
            street = pieces[int(self.rng.choice(len(pieces), p=lengths / lengths.sum()))]
            along = self.rng.uniform(0.15, 0.85) * street.geom.length
            (fx, fy), (nx, ny) = _unit_normal(street.geom, along)
            side = 1.0 if self.rng.random() < 0.5 else -1.0
            dist = self.rng.uniform(*offset)
            xy = (fx + side * dist * nx, fy + side * dist * ny)
            if self._acceptable(xy, site) and self._in_place(zone, xy, site):
                road = str(street.name)
                return xy, road, self.address(road, (fx, fy), side)
        raise InternalError(f"cannot place a demo POI in zone {zone}")

    def _in_place(self, zone: str, xy: Coord, site: Polygon | None) -> bool:
        """Zoned POIs stay inside the study area; only "any" POIs spill over its edge."""
        if site is not None or zone == "any":
            return True
        return self.in_zone(zone, xy) and self.area.boundary.contains(Point(xy))

    def _acceptable(self, xy: Coord, site: Polygon | None) -> bool:
        p = Point(xy)
        if site is not None and not site.contains(p):
            return False
        if self.area.river.corridor.buffer(3.0).contains(p) or not self.search_area.contains(p):
            return False
        nearest = self.all_lines.query_nearest(p, return_distance=True)[1]
        return 4.0 <= float(nearest[0]) <= 40.0

    def address(self, road: str, foot: Coord, side: float) -> str:
        along = self.roads[road].project(Point(foot))
        number = 2 * (int(along // 14.0) + 1) - (1 if side > 0 else 0)
        return f"{road}{number}号"

    def nearest_road(self, xy: Coord) -> tuple[str, Coord, float]:
        best = min(self.roads.items(), key=lambda item: item[1].distance(Point(xy)))
        foot = nearest_points(best[1], Point(xy))[0]
        return best[0], (foot.x, foot.y), 1.0

    def tel(self) -> str:
        # Numbers starting 0577-0 do not exist, so no real line is listed.
        if self.rng.random() < 0.35:
            return ""
        return f"0577-0{int(self.rng.integers(0, 10**7)):07d}"

    def name(self, template: str, road: str) -> str:
        word = self.words.word() if "{w}" in template else ""
        return template.format(w=word, road=road)


def _pois(area: Area, rng: np.random.Generator) -> list[Poi]:
    placer = _PoiPlacer(area, rng)
    pois: list[Poi] = []
    for spec in FACILITY_PLAN + OTHER_PLAN:
        for k in range(spec.count):
            xy, road, address = placer.place(spec.zone)
            name = placer.name(spec.names[k % len(spec.names)], road)
            pois.append(
                Poi(spec.kind, name, spec.amap_type, spec.typecode, xy, address, placer.tel())
            )
    pois += _bus_stops(area, placer)
    pois += _metro_station(placer)
    pois += _residential_pois(area, placer)
    _add_capacity(pois, rng)
    for k, poi in enumerate(pois):
        poi.poi_id = f"B0SYN{k + 1:05d}"
    return pois


def _bus_stops(area: Area, placer: _PoiPlacer) -> list[Poi]:
    """Pairs of stops on both sides of the main roads, every ~480 m."""
    stops = []
    route_numbers = list(range(1, 40))
    for road in BUS_ROADS:
        for part in _line_parts(shapely.line_merge(placer.roads[road]), 300.0):
            n = max(1, int(part.length // BUS_SPACING_M))
            for k in range(n):
                along = part.length * (k + 0.5) / n
                (fx, fy), (nx, ny) = _unit_normal(part, along)
                name = _stop_name(area, road, Point(fx, fy))
                routes = placer.rng.choice(route_numbers, size=int(placer.rng.integers(1, 4)))
                address = ";".join(f"示例公交{r}路" for r in sorted(set(routes.tolist())))
                for side in (1.0, -1.0):
                    dist = float(placer.rng.uniform(8.0, 13.0))
                    xy = (fx + side * dist * nx, fy + side * dist * ny)
                    if not placer.search_area.contains(Point(xy)):
                        continue
                    stops.append(
                        Poi(
                            "bus_stop",
                            f"{name}(公交站)",
                            "交通设施服务;公交车站;公交车站相关",
                            "150700",
                            xy,
                            address,
                            "",
                        )
                    )
    return stops


def _stop_name(area: Area, road: str, foot: Point) -> str:
    """Stops are named after the nearest cross street, as bus companies do."""
    others = [
        s
        for s in area.streets
        if s.name and s.name != road and not s.bridge and s.highway != "footway"
    ]
    nearest = min(others, key=lambda s: s.geom.distance(foot))
    if nearest.geom.distance(foot) < 150.0:
        return f"{nearest.name}口"
    return f"{road}中段"


def _metro_station(placer: _PoiPlacer) -> list[Poi]:
    """One metro station at the east edge, on 示例六路 near 示例大道."""
    target = Point(AREA_W, 330.0)
    line = min(placer.roads[NS_ARTERIALS[-1][2]].geoms, key=lambda g: g.distance(target))
    (fx, fy), (nx, ny) = _unit_normal(line, line.project(target))
    inward = 1.0 if nx < 0 else -1.0  # towards the west, into the study area
    xy = (fx + inward * 22.0 * nx, fy + inward * 22.0 * ny)
    return [
        Poi(
            "metro_station",
            "示例东站(地铁站)",
            "交通设施服务;地铁站;地铁站",
            "150500",
            xy,
            "示例轨道1号线",
            "",
        )
    ]


def _residential_pois(area: Area, placer: _PoiPlacer) -> list[Poi]:
    """Amap lists compounds too (住宅小区), located at their main gate."""
    pois = []
    for compound in area.compounds:
        if placer.rng.random() > RESIDENTIAL_POI_SHARE:
            continue
        gate = compound.gates[0]
        road, foot, side = placer.nearest_road(gate)
        pois.append(
            Poi(
                None,
                compound.name,
                *RESIDENTIAL_POI_TYPE,
                gate,
                placer.address(road, foot, side),
                "",
            )
        )
    return pois


def _add_capacity(pois: Iterable[Poi], rng: np.random.Generator) -> None:
    beds = iter(NURSING_HOME_BEDS)
    for poi in pois:
        if poi.kind == "kindergarten":
            poi.capacity = (int(rng.choice(KINDERGARTEN_SEATS)), "seats")
        elif poi.kind == "nursing_home":
            poi.capacity = (next(beds), "beds")


# ---------------------------------------------------------------------------
# Serialisation
# ---------------------------------------------------------------------------


def _to_wgs84_factory() -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Local frame -> WGS84: a shift to UTM 51N so the area centre is CENTRE_LONLAT."""
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    to_geo = pyproj.Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)
    cx, cy = to_utm.transform(*CENTRE_LONLAT)
    east0, north0 = round(cx - AREA_W / 2.0), round(cy - AREA_H / 2.0)

    def convert(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = to_geo.transform(np.asarray(x) + east0, np.asarray(y) + north0)
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)

    return convert


def _lonlat(area: Area, coords: Iterable[Sequence[float]]) -> list[list[float]]:
    xy = np.asarray(list(coords), dtype=float).reshape(-1, 2)
    lon, lat = area.to_wgs84(xy[:, 0], xy[:, 1])
    return [[round(float(a), 7), round(float(b), 7)] for a, b in zip(lon, lat, strict=True)]


def _polygon_coords(area: Area, polygon: Polygon) -> list[list[list[float]]]:
    polygon = shapely.geometry.polygon.orient(polygon, sign=1.0)  # RFC 7946: counter-clockwise
    rings = [polygon.exterior, *polygon.interiors]
    return [_lonlat(area, ring.coords) for ring in rings]


def _feature_collection(name: str, description: str, features: Iterable[dict[str, Any]]) -> bytes:
    """GeoJSON with one feature per line; foreign members mark the data synthetic."""
    head = {
        "type": "FeatureCollection",
        "name": name,
        "synthetic": True,
        "license": "CC0-1.0",
        "generator": "scripts/make_demo_data.py",
        "description": description,
    }
    header = json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features]
    return (header + ',"features":[\n' + ",\n".join(lines) + "\n]}\n").encode("utf-8")


def _feature(properties: dict[str, Any], geom_type: str, coordinates: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": properties,
        "geometry": {"type": geom_type, "coordinates": coordinates},
    }


def _streets_geojson(area: Area) -> bytes:
    features = [
        _feature(
            {
                "way_id": k + 1,
                "highway": s.highway,
                "name": s.name,
                "bridge": "yes" if s.bridge else None,
            },
            "LineString",
            _lonlat(area, s.geom.coords),
        )
        for k, s in enumerate(area.streets + area.isolated)
    ]
    return _feature_collection(
        "synthetic_streets",
        "SYNTHETIC street centre-lines of an invented study area (not a real place); "
        "split at every junction; WGS84.",
        features,
    )


def _river_geojson(area: Area) -> bytes:
    minx, miny, maxx, maxy = area.boundary.bounds
    water = area.river.water.intersection(box(minx - 100, miny - 100, maxx + 100, maxy + 100))
    feature = _feature(
        {"name": RIVER_NAME, "waterway": "river", "synthetic": True},
        "Polygon",
        _polygon_coords(area, water),
    )
    return _feature_collection(
        "synthetic_river", "SYNTHETIC river polygon (not a real place); WGS84.", [feature]
    )


def _boundary_geojson(area: Area) -> bytes:
    feature = _feature(
        {"name": "示例街道", "synthetic": True, "area_km2": round(area.boundary.area / 1e6, 3)},
        "Polygon",
        _polygon_coords(area, area.boundary),
    )
    return _feature_collection(
        "synthetic_boundary", "SYNTHETIC study boundary (not a real place); WGS84.", [feature]
    )


def _districts_geojson(boundary_geojson: bytes) -> bytes:
    """Six SYNTHETIC 社区 (residents' committees): the boundary cut in a 3 x 2 grid."""
    import geopandas as gpd

    from lifecircle.onemap import demo_districts

    boundary = gpd.read_file(io.BytesIO(boundary_geojson))
    districts = demo_districts(boundary)
    features = []
    for row in districts.itertuples(index=False):
        geometry = shapely.geometry.mapping(shapely.geometry.polygon.orient(row.geometry, 1.0))
        rings = [[[round(x, 7), round(y, 7)] for x, y in ring] for ring in geometry["coordinates"]]
        features.append(
            _feature(
                {
                    "district_id": row.district_id,
                    "district_name": row.district_name,
                    "synthetic": True,
                },
                "Polygon",
                rings,
            )
        )
    return _feature_collection(
        "synthetic_districts",
        "SYNTHETIC 社区 (residents' committee areas; not real places); WGS84.",
        features,
    )


def _compounds_geojson(area: Area) -> bytes:
    features = [
        _feature(
            {
                "community_id": c.community_id,
                "name": c.name,
                "households": c.households,
                "built_year": c.built_year,
            },
            "Polygon",
            _polygon_coords(area, c.polygon),
        )
        for c in area.compounds
    ]
    return _feature_collection(
        "synthetic_compounds",
        "SYNTHETIC gated residential compounds (not real places); WGS84.",
        features,
    )


def _csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]], bom: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig" if bom else "utf-8")


def _gates_csv(area: Area) -> bytes:
    rows = []
    number = 0
    for compound in area.compounds:
        lonlat = _lonlat(area, compound.gates)
        for lon, lat in lonlat:
            number += 1
            rows.append([f"G{number:03d}", compound.community_id, f"{lon:.7f}", f"{lat:.7f}"])
    return _csv_bytes(["gate_id", "community_id", "lng", "lat"], rows)


def _pois_csv(area: Area) -> bytes:
    lonlat = np.array(_lonlat(area, [p.point for p in area.pois]))
    glon, glat = wgs84_to_gcj02(lonlat[:, 0], lonlat[:, 1])
    rows = [
        [
            p.poi_id,
            p.name,
            p.amap_type,
            p.typecode,
            p.address,
            f"{lon:.6f},{lat:.6f}",
            "浙江省",
            "温州市",
            "示例区",
            p.tel,
        ]
        for p, lon, lat in zip(area.pois, glon, glat, strict=True)
    ]
    header = ["id", "name", "type", "typecode", "address", "location", "pname", "cityname",
              "adname", "tel"]  # fmt: skip
    return _csv_bytes(header, rows, bom=True)


def _capacity_csv(area: Area) -> bytes:
    rows = [[p.poi_id, p.capacity[0], p.capacity[1]] for p in area.pois if p.capacity]
    return _csv_bytes(["id", "capacity", "unit"], rows)


def _network_degrees(area: Area) -> dict[Coord, int]:
    degree: dict[Coord, int] = {}
    for street in area.streets + area.isolated:
        for end in (street.geom.coords[0], street.geom.coords[-1]):
            degree[end] = degree.get(end, 0) + 1
    return degree


def _readme(area: Area) -> str:
    """data/demo/README.md, with the numbers of the generated area."""
    degree = _network_degrees(area)
    bridges = [s.name for s in area.streets if s.bridge]
    households = sum(c.households for c in area.compounds)
    gates = sum(len(c.gates) for c in area.compounds)
    single = [c.community_id for c in area.compounds if len(c.gates) == 1 and
              c.polygon.area / 10_000.0 > LARGE_COMPOUND_HA]  # fmt: skip
    north = [c for c in area.compounds if c.polygon.centroid.y > area.river.centre_y(
        c.polygon.centroid.x)]  # fmt: skip
    kinds: dict[str, int] = {}
    for kind in _iter_kinds(area.pois):
        kinds[kind] = kinds.get(kind, 0) + 1
    highways: dict[str, int] = {}
    for street in area.streets + area.isolated:
        highways[street.highway] = highways.get(street.highway, 0) + 1
    isolated_ids = [str(len(area.streets) + k + 1) for k in range(len(area.isolated))]
    kind_rows = "\n".join(
        f"| {kind} | {count} |" for kind, count in sorted(kinds.items()) if kind != "(other)"
    )
    highway_text = ", ".join(f"{hw} {n}" for hw, n in sorted(highways.items()))
    return README_TEMPLATE.format(
        area_km2=area.boundary.area / 1e6,
        lines=len(area.streets) + len(area.isolated),
        nodes=len(degree),
        junctions=sum(1 for d in degree.values() if d >= 3),
        dead_ends=sum(1 for d in degree.values() if d == 1),
        length_km=sum(s.geom.length for s in area.streets) / 1000.0,
        highways=highway_text,
        bridges="、".join(str(b) for b in bridges),
        n_bridges=len(bridges),
        isolated_ids=", ".join(isolated_ids),
        compounds=len(area.compounds),
        households=households,
        population=round(households * PERSONS_PER_HOUSEHOLD),
        gates=gates,
        single_gate=", ".join(single),
        north_compounds=len(north),
        north_households=sum(c.households for c in north),
        pois=len(area.pois),
        facilities=sum(n for k, n in kinds.items() if k != "(other)"),
        others=kinds.get("(other)", 0),
        kind_rows=kind_rows,
        capacity_rows=sum(1 for p in area.pois if p.capacity),
        pph=PERSONS_PER_HOUSEHOLD,
    )


def _iter_kinds(pois: Iterable[Poi]) -> Iterator[str]:
    for p in pois:
        yield p.kind or "(other)"


README_TEMPLATE = """\
# Synthetic demo study area (示例街道)

**This is not a real place.** Everything in this folder is invented by
`scripts/make_demo_data.py` (with `scripts/demo_generator.py`)
with fixed seeds. All names start with 示例 ("example"); the district name
示例区 in the POI table is made up too. The area is only *modelled on* the kind
of dense subdistrict described in a Wenzhou subdistrict's 2021 plan and is
placed near lon 120.66, lat 28.01 so that the GCJ-02 shift of Amap
coordinates (about 540 m there) is real.

Licence: [CC0 1.0](https://creativecommons.org/publicdomain/zero/1.0/) (public
domain). Do not edit these files by hand: regenerate them with
`make data` (or `python scripts/make_demo_data.py`). The tests check that the
committed files are byte-identical to the generator's output.

## Files

| file | contents | coordinates |
| --- | --- | --- |
| `synthetic_boundary.geojson` | the study boundary (one polygon) | WGS84 |
| `synthetic_streets.geojson` | street centre-lines `way_id`, `highway`, `name`, `bridge` | WGS84 |
| `synthetic_river.geojson` | the river 示例河 (one polygon) | WGS84 |
| `synthetic_compounds.geojson` | gated compounds (小区) with households and built year | WGS84 |
| `synthetic_gates.csv` | compound gates `gate_id`, `community_id`, `lng`, `lat` | WGS84 |
| `synthetic_pois_amap_gcj02.csv` | an Amap (高德) POI export, UTF-8 with BOM | **GCJ-02** |
| `synthetic_capacity.csv` | kindergarten seats and nursing-home beds by POI id | - |
| `synthetic_districts.geojson` | six 社区 (residents' committees), a 3 x 2 grid | WGS84 |

The GeoJSON files carry `"synthetic": true` and `"license": "CC0-1.0"` as
foreign members. The POI table has the columns of an Amap export (`id`,
`name`, `type`, `typecode`, `address`, `location` as `"lng,lat"` in GCJ-02,
`pname`, `cityname`, `adname`, `tel`); convert it with
`lifecircle.coords.gcj02_to_wgs84` before use.

## The area

* {area_km2:.2f} km², about 2.15 km x 1.7 km; arterials 400-450 m apart at slight
  angles, local streets, alleys and footpaths between them.
* Streets: {lines} lines, {length_km:.1f} km, split at every junction, so lines meet
  only at shared end points: {nodes} nodes, of which {junctions} junctions and
  {dead_ends} dead ends. By `highway`: {highways}.
* A river 60-120 m wide crosses the area from west-south-west to east-north-east.
  Streets stop at the banks (a bank road on the south side, a riverside footpath
  on the north side); only {n_bridges} lines cross it, all with `bridge=yes`:
  {bridges}.
* {compounds} gated compounds (C001...) with {households:,} households, i.e.
  {population:,} residents at {pph} persons per household; {gates} gates
  (1-4 per compound, 5-25 m from a street centre-line).
* {pois} POIs: {facilities} life-circle facilities and {others} other rows
  (restaurants, banks, hotels, salons, offices, training schools, car parks and
  住宅小区 rows for some compounds) that match no facility type.

| facility type | POIs |
| --- | --- |
{kind_rows}

## Deliberate features and gaps

* **Across the river** ({north_compounds} compounds, {north_households:,} households)
  there is no elderly day-care centre, fresh market, nursery, nursing home,
  community canteen or middle school; residents must cross one of the bridges.
* **Kindergartens** cover only part of the area: none east of 示例四路.
* **One metro station** (示例东站) at the east edge.
* **Single-gate large compounds** ({single_gate}): gate placement decides their
  walking distances.
* **Dead ends**: a few cul-de-sacs (service, 里 and 弄 lanes) end inside blocks.
* **One disconnected piece**: a service road inside the hospital grounds
  (`way_id` {isolated_ids}) touches no other street; everything else is one
  connected network.
* **Edge effects**: POIs line both sides of the boundary roads, so some lie just
  outside the boundary.
* **Amap quirks**: bus stop rows list their routes in `address`; some facilities
  have only a generic type (生活服务场所 070000 or 体育休闲服务场所 080000) and
  are recognisable only by name (托育中心, 菜鸟驿站/快递驿站, 健身广场,
  文化活动站, 日间照料中心, 养老院, 长者食堂/社区食堂); two car parks are named
  after kindergartens (幼儿园停车场) to catch name-only matching. Telephone
  numbers start with 0577-0, which no real line does.
* `synthetic_capacity.csv` has {capacity_rows} rows: seats for every kindergarten,
  beds for the nursing homes.
"""
