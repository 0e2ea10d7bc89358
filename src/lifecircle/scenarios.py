"""Scenarios: re-score a study with facilities, streets or gates added or removed.

A planner keeps a scenario as a small YAML file beside the study::

    name: 新建人行桥与养老服务站
    crs: wgs84                      # default for every coordinate below
    add_facilities:
      - {id: new-1, type: elderly_daycare, lon: 120.66, lat: 28.01, name: 新日间照料中心}
    remove_facilities: [B0SYN00012]
    add_links:
      - {name: 新人行桥, coords: [[120.660, 28.010], [120.661, 28.012]]}
    remove_links:
      - {way_id: 17}                # or {name: 示例一路}
      - {within: [[120.650, 28.000], [120.652, 28.000], [120.652, 28.002]]}
      - {crossing: [[120.655, 28.004], [120.655, 28.006]]}
    add_gates:
      - {community_id: C012, lon: 120.657, lat: 28.013}

Every coordinate may carry its own ``crs`` (``wgs84``, ``gcj02``, ``bd09`` or
``EPSG:n``). :func:`load_scenario` checks the file (unknown keys, bad
coordinates, unknown facility types) and :func:`apply_scenario` checks it
against the study (unknown facility or compound ids, streets that select
nothing, link ends far from any street); both raise
:class:`~lifecircle.errors.InputError` naming the file and the key path,
e.g. ``remove_facilities[1]``.

Network edits, in this order:

* ``remove_links`` closes streets: every segment of a way (``way_id``: the
  network's ``way_id`` column, else ``osmid``), every segment of a street
  name, the parts of streets inside a polygon (``within``; segments are cut
  at its edge), or a 1 m cut wherever a line crosses a street (``crossing``).
* ``add_links`` adds walkable lines (a footbridge, a passage through a
  compound). Only their two ends join the network: each end attaches to the
  nearest street (to its node when within 1 m, else splitting the segment),
  and the gap from the end to the street is walked too. Interior vertices
  join nothing, so a bridge crosses the streets below it.

:func:`compare` gives the verdicts that change per compound and item, and
the change in coverage by type, category and tier, in compounds and
residents.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from .config import read_yaml
from .coords import parse_crs, to_wgs84
from .errors import InputError
from .network import WalkNetwork, network_report
from .outputs import refuse_to_overwrite, write_json, write_layers, write_table
from .scoring import summarise
from .standards import FACILITY_TYPE_IDS

if TYPE_CHECKING:
    from .study import Study

logger = logging.getLogger(__name__)

__all__ = [
    "SCENARIO_OUTPUT_NAMES",
    "LinkSelector",
    "NewFacility",
    "NewGate",
    "NewLink",
    "Scenario",
    "ScenarioDiff",
    "apply_scenario",
    "compare",
    "load_scenario",
    "run_scenario",
    "scenario_from_dict",
    "write_scenario_outputs",
]

SCENARIO_OUTPUT_NAMES = (
    "scenario_changes.csv",
    "scenario_coverage.csv",
    "scenario.gpkg",
    "scenario_summary.json",
)
LINK_NODE_SNAP_M = 1.0  # a link end this close to a street node joins that node
CUT_WIDTH_M = 1.0  # the gap a ``crossing`` cut leaves in a street
_SPLIT_PRECISION_M = 0.001

_TOP_KEYS = (
    "name",
    "description",
    "crs",
    "add_facilities",
    "remove_facilities",
    "add_links",
    "remove_links",
    "add_gates",
)
_FACILITY_KEYS = ("id", "type", "lon", "lat", "crs", "name", "capacity")
_LINK_KEYS = ("name", "coords", "crs", "highway")
_SELECTOR_KEYS = ("way_id", "name", "within", "crossing", "crs")
_SELECTORS = ("way_id", "name", "within", "crossing")
_GATE_KEYS = ("community_id", "lon", "lat", "crs", "id")


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class NewFacility:
    """A facility the scenario builds (WGS84 coordinates)."""

    key: str
    id: str
    type: str
    lon: float
    lat: float
    name: str
    capacity: float | None


@dataclass(frozen=True)
class NewLink:
    """A walkable line the scenario opens (WGS84 vertices)."""

    key: str
    name: str
    coords: tuple[tuple[float, float], ...]
    highway: str


@dataclass(frozen=True)
class LinkSelector:
    """Streets the scenario closes: ``by`` is way_id, name, within or crossing."""

    key: str
    by: str
    value: str | tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class NewGate:
    """A compound gate the scenario opens (WGS84 coordinates)."""

    key: str
    community_id: str
    gate_id: str
    lon: float
    lat: float


@dataclass(frozen=True)
class Scenario:
    """A validated scenario; build one with :func:`load_scenario` or :func:`scenario_from_dict`."""

    name: str
    description: str = ""
    add_facilities: tuple[NewFacility, ...] = ()
    remove_facilities: tuple[str, ...] = ()
    add_links: tuple[NewLink, ...] = ()
    remove_links: tuple[LinkSelector, ...] = ()
    add_gates: tuple[NewGate, ...] = ()
    source: str = "<scenario>"

    def fail(self, key: str, message: str) -> InputError:
        """An :class:`InputError` naming this scenario's file and a key path."""
        return InputError(f"{key}: {message}", file=self.source)


# --------------------------------------------------------------------------- parsing


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file.

    Parameters
    ----------
    path
        The YAML file.

    Returns
    -------
    Scenario

    Raises
    ------
    InputError
        Unreadable file, bad YAML, unknown keys, bad coordinates or facility
        types; the message names the file and the key path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "s.yaml"
    >>> _ = path.write_text("name: 新桥\\nremove_facilities: [F1]\\n", encoding="utf-8")
    >>> load_scenario(path).remove_facilities
    ('F1',)
    """
    file = Path(path)
    if not file.is_file():
        raise InputError("scenario file not found", file=file)
    return scenario_from_dict(read_yaml(file), source=str(file))


def scenario_from_dict(data: Any, *, source: str = "<scenario>") -> Scenario:
    """Validate a scenario given as a mapping (the parsed YAML).

    Examples
    --------
    >>> s = scenario_from_dict({"name": "x", "add_facilities": [
    ...     {"id": "n1", "type": "park", "lon": 120.66, "lat": 28.01}]})
    >>> s.add_facilities[0].type, s.add_facilities[0].key
    ('park', 'add_facilities[0]')
    """
    parser = _Parser(source)
    if not isinstance(data, Mapping):
        raise InputError("a scenario must be a YAML mapping", file=source)
    parser.known_keys(data, _TOP_KEYS, "")
    crs = parser.crs(data.get("crs", "wgs84"), "crs")
    name = data.get("name", Path(source).stem)
    facilities = tuple(
        parser.facility(entry, f"add_facilities[{i}]", crs)
        for i, entry in enumerate(parser.list_of(data, "add_facilities"))
    )
    parser.unique([f.id for f in facilities], "add_facilities", "id")
    removed = tuple(
        parser.identifier(entry, f"remove_facilities[{i}]")
        for i, entry in enumerate(parser.list_of(data, "remove_facilities"))
    )
    links = tuple(
        parser.link(entry, f"add_links[{i}]", crs)
        for i, entry in enumerate(parser.list_of(data, "add_links"))
    )
    selectors = tuple(
        parser.selector(entry, f"remove_links[{i}]", crs)
        for i, entry in enumerate(parser.list_of(data, "remove_links"))
    )
    gates = tuple(
        parser.gate(entry, f"add_gates[{i}]", crs)
        for i, entry in enumerate(parser.list_of(data, "add_gates"))
    )
    return Scenario(
        name=str(name),
        description=str(data.get("description", "") or "").strip(),
        add_facilities=facilities,
        remove_facilities=removed,
        add_links=links,
        remove_links=selectors,
        add_gates=gates,
        source=source,
    )


class _Parser:
    """Checks parts of a scenario, raising errors that name the file and key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> InputError:
        return InputError(f"{key or '(top level)'}: {message}", file=self.source)

    def known_keys(self, entry: Any, allowed: Sequence[str], key: str) -> None:
        if not isinstance(entry, Mapping):
            raise self.fail(key, f"expected a mapping with keys {', '.join(allowed)}")
        for name in entry:
            if name not in allowed:
                where = f"{key}.{name}" if key else str(name)
                raise self.fail(where, f"unknown key (allowed: {', '.join(allowed)})")

    def list_of(self, data: Mapping[str, Any], name: str) -> list[Any]:
        value = data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(name, "expected a list")
        return value

    def crs(self, value: Any, key: str) -> str:
        try:
            return parse_crs(str(value))
        except InputError as exc:
            raise self.fail(key, exc.message) from None

    def identifier(self, value: Any, key: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
            raise self.fail(key, f"expected an id (text or number), got {value!r}")
        return str(value).strip()

    def text(self, entry: Mapping[str, Any], name: str, key: str, default: str = "") -> str:
        value = entry.get(name, default)
        if value is None or isinstance(value, Mapping | list):
            raise self.fail(f"{key}.{name}", f"expected text, got {value!r}")
        return str(value)

    def number(self, value: Any, key: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self.fail(key, f"expected a number, got {value!r}")
        return float(value)

    def points(self, values: list[tuple[Any, Any]], keys: list[str], crs: str) -> NDArray[Any]:
        """Validated coordinates converted to WGS84, shape (n, 2)."""
        xy = np.array(
            [
                [self.number(x, f"{k}[0]"), self.number(y, f"{k}[1]")]
                for (x, y), k in zip(values, keys, strict=True)
            ],
            dtype=float,
        ).reshape(-1, 2)
        if not crs.startswith("EPSG:"):
            for (lon, lat), key in zip(xy, keys, strict=True):
                if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                    raise self.fail(key, f"({lon:g}, {lat:g}) is not a longitude/latitude pair")
        lon, lat = to_wgs84(xy[:, 0], xy[:, 1], crs)
        return np.column_stack([lon, lat])

    def coord_list(self, value: Any, key: str, crs: str, minimum: int) -> NDArray[Any]:
        if not isinstance(value, list) or len(value) < minimum:
            raise self.fail(key, f"expected a list of at least {minimum} [lon, lat] pairs")
        for i, pair in enumerate(value):
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise self.fail(f"{key}[{i}]", f"expected [lon, lat], got {pair!r}")
        return self.points(list(value), [f"{key}[{i}]" for i in range(len(value))], crs)

    def lon_lat(self, entry: Mapping[str, Any], key: str, crs: str) -> tuple[float, float]:
        for name in ("lon", "lat"):
            if name not in entry:
                raise self.fail(f"{key}.{name}", "missing (required)")
        lon = self.number(entry["lon"], f"{key}.lon")
        lat = self.number(entry["lat"], f"{key}.lat")
        xy = self.points([(lon, lat)], [f"{key}.lon/lat"], crs)
        return float(xy[0, 0]), float(xy[0, 1])

    def facility(self, entry: Any, key: str, crs: str) -> NewFacility:
        self.known_keys(entry, _FACILITY_KEYS, key)
        for name in ("id", "type"):
            if name not in entry:
                raise self.fail(f"{key}.{name}", "missing (required)")
        type_id = str(entry["type"])
        if type_id not in FACILITY_TYPE_IDS:
            raise self.fail(
                f"{key}.type",
                f"unknown facility type {type_id!r}; known types: {', '.join(FACILITY_TYPE_IDS)}",
            )
        own_crs = self.crs(entry["crs"], f"{key}.crs") if "crs" in entry else crs
        lon, lat = self.lon_lat(entry, key, own_crs)
        capacity = entry.get("capacity")
        if capacity is not None:
            capacity = self.number(capacity, f"{key}.capacity")
            if capacity < 0:
                raise self.fail(f"{key}.capacity", "must not be negative")
        return NewFacility(
            key=key,
            id=self.identifier(entry["id"], f"{key}.id"),
            type=type_id,
            lon=lon,
            lat=lat,
            name=self.text(entry, "name", key, default=str(entry["id"])),
            capacity=capacity,
        )

    def link(self, entry: Any, key: str, crs: str) -> NewLink:
        self.known_keys(entry, _LINK_KEYS, key)
        if "coords" not in entry:
            raise self.fail(f"{key}.coords", "missing (required)")
        own_crs = self.crs(entry["crs"], f"{key}.crs") if "crs" in entry else crs
        coords = self.coord_list(entry["coords"], f"{key}.coords", own_crs, 2)
        return NewLink(
            key=key,
            name=self.text(entry, "name", key, default=key),
            coords=tuple((float(x), float(y)) for x, y in coords),
            highway=self.text(entry, "highway", key, default="footway"),
        )

    def selector(self, entry: Any, key: str, crs: str) -> LinkSelector:
        self.known_keys(entry, _SELECTOR_KEYS, key)
        given = [name for name in _SELECTORS if name in entry]
        if len(given) != 1:
            raise self.fail(key, "give exactly one of way_id, name, within, crossing")
        by = given[0]
        own_crs = self.crs(entry["crs"], f"{key}.crs") if "crs" in entry else crs
        if by in ("way_id", "name"):
            return LinkSelector(key, by, self.identifier(entry[by], f"{key}.{by}"))
        minimum = 3 if by == "within" else 2
        coords = self.coord_list(entry[by], f"{key}.{by}", own_crs, minimum)
        if by == "within" and not shapely.Polygon(coords).is_valid:
            raise self.fail(f"{key}.within", "the polygon crosses itself")
        return LinkSelector(key, by, tuple((float(x), float(y)) for x, y in coords))

    def gate(self, entry: Any, key: str, crs: str) -> NewGate:
        self.known_keys(entry, _GATE_KEYS, key)
        if "community_id" not in entry:
            raise self.fail(f"{key}.community_id", "missing (required)")
        own_crs = self.crs(entry["crs"], f"{key}.crs") if "crs" in entry else crs
        lon, lat = self.lon_lat(entry, key, own_crs)
        community = self.identifier(entry["community_id"], f"{key}.community_id")
        gate_id = self.identifier(entry.get("id", f"{community}-{key}"), f"{key}.id")
        return NewGate(key, community, gate_id, lon, lat)

    def unique(self, ids: list[str], section: str, name: str) -> None:
        seen: dict[str, int] = {}
        for i, value in enumerate(ids):
            if value in seen:
                raise self.fail(
                    f"{section}[{i}].{name}", f"{value!r} already used by {section}[{seen[value]}]"
                )
            seen[value] = i


# --------------------------------------------------------------------------- network edits


def _rebuild(
    base: WalkNetwork,
    node_xy: NDArray[np.float64],
    u: NDArray[np.int64],
    v: NDArray[np.int64],
    way: NDArray[np.int64],
    ways: pd.DataFrame,
    source: str,
) -> tuple[WalkNetwork, NDArray[np.int64]]:
    """A network from edited arrays; drops unused nodes. Returns it and the node remap."""
    used = np.zeros(node_xy.shape[0], dtype=bool)
    used[u] = used[v] = True
    remap = np.cumsum(used) - 1
    node_xy, u, v = node_xy[used], remap[u], remap[v]
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    net = WalkNetwork(
        crs=base.crs,
        node_xy=node_xy,
        seg_u=lo.astype(np.int64),
        seg_v=hi.astype(np.int64),
        seg_len=np.hypot(*(node_xy[hi] - node_xy[lo]).T),
        seg_way=way.astype(np.int64),
        ways=ways.reset_index(drop=True),
        report=None,  # type: ignore[arg-type]  # filled just below
    )
    net.report = network_report(
        net,
        source,
        len(ways),
        base.report.ways_dropped_not_walkable,
        excluded_by_rule=base.report.excluded_by_rule,
    )
    return net, np.where(used, remap, -1)


def _project(
    net: WalkNetwork, seg: NDArray[np.int64], xy: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Offset along each segment (from ``seg_u``) of the closest point, and the distance."""
    a, b = net.node_xy[net.seg_u[seg]], net.node_xy[net.seg_v[seg]]
    length = net.seg_len[seg]
    direction = (b - a) / length[:, None]
    along = np.clip(np.einsum("ij,ij->i", xy - a, direction), 0.0, length)
    closest = a + direction * along[:, None]
    return along, np.hypot(*(xy - closest).T)


def _split(
    net: WalkNetwork,
    seg: NDArray[np.int64],
    offset: NDArray[np.float64],
    *,
    node_snap_m: float = _SPLIT_PRECISION_M,
) -> tuple[WalkNetwork, NDArray[np.int64]]:
    """Split segments at offsets; return the network and the node at every offset.

    Offsets within ``node_snap_m`` of a segment end use that end's node;
    points at the same place share a node. Pieces keep their segment's way.
    """
    seg = np.asarray(seg, dtype=np.int64)
    offset = np.asarray(offset, dtype=float)
    length = net.seg_len[seg]
    at_u = offset <= node_snap_m
    at_v = ~at_u & (offset >= length - node_snap_m)
    interior = ~at_u & ~at_v
    node = np.where(at_u, net.seg_u[seg], net.seg_v[seg])
    if not interior.any():
        return net, node
    key = np.round(offset[interior] / _SPLIT_PRECISION_M).astype(np.int64)
    pairs, inverse = np.unique(np.stack([seg[interior], key], axis=1), axis=0, return_inverse=True)
    useg, uoff = pairs[:, 0], pairs[:, 1] * _SPLIT_PRECISION_M
    ids = net.n_nodes + np.arange(useg.shape[0])
    a, b = net.seg_u[useg], net.seg_v[useg]
    xy_a, xy_b = net.node_xy[a], net.node_xy[b]
    new_xy = xy_a + (xy_b - xy_a) * (uoff / net.seg_len[useg])[:, None]
    first = np.r_[True, useg[1:] != useg[:-1]]
    last = np.r_[useg[1:] != useg[:-1], True]
    previous = np.where(first, a, np.roll(ids, 1))
    keep = np.ones(net.n_segments, dtype=bool)
    keep[useg] = False
    u = np.concatenate([net.seg_u[keep], previous, ids[last]])
    v = np.concatenate([net.seg_v[keep], ids, b[last]])
    way = np.concatenate([net.seg_way[keep], net.seg_way[useg], net.seg_way[useg][last]])
    node[interior] = ids[inverse.ravel()]
    edited, remap = _rebuild(
        net, np.concatenate([net.node_xy, new_xy]), u, v, way, net.ways, net.report.source
    )
    return edited, remap[node]


def _without(net: WalkNetwork, drop: NDArray[np.bool_]) -> WalkNetwork:
    keep = ~drop
    edited, _ = _rebuild(
        net,
        net.node_xy,
        net.seg_u[keep],
        net.seg_v[keep],
        net.seg_way[keep],
        net.ways,
        net.report.source,
    )
    return edited


def _to_network_xy(net: WalkNetwork, coords: Sequence[tuple[float, float]]) -> NDArray[Any]:
    points = gpd.GeoSeries(shapely.points(np.asarray(coords, dtype=float)), crs=4326)
    return shapely.get_coordinates(points.to_crs(net.crs).to_numpy())


def _select(
    net: WalkNetwork, selector: LinkSelector, scenario: Scenario
) -> tuple[WalkNetwork, NDArray[np.bool_]]:
    """Segments a selector closes (after any cuts it makes)."""
    if selector.by in ("way_id", "name"):
        column = "name" if selector.by == "name" else _way_id_column(net.ways)
        if column is None or column not in net.ways:
            raise scenario.fail(
                f"{selector.key}.{selector.by}",
                f"the network has no {selector.by} column; select streets with within or crossing",
            )
        rows = (net.ways[column].astype(str) == str(selector.value)).to_numpy()
        return net, rows[net.seg_way]
    xy = _to_network_xy(net, selector.value)  # type: ignore[arg-type]
    if selector.by == "within":
        polygon = shapely.Polygon(xy)
        net = _cut_at(net, polygon.boundary, half_width=0.0)
        hit = net.segment_tree.query(polygon, predicate="intersects")
        middle = net.node_xy[net.seg_u[hit]] + net.node_xy[net.seg_v[hit]]
        inside = shapely.contains_xy(polygon, middle[:, 0] / 2, middle[:, 1] / 2)
        drop = np.zeros(net.n_segments, dtype=bool)
        drop[hit[inside]] = True
        return net, drop
    line = shapely.LineString(xy)
    net = _cut_at(net, line, half_width=CUT_WIDTH_M / 2)
    drop = np.zeros(net.n_segments, dtype=bool)
    drop[net.segment_tree.query(line, predicate="intersects")] = True
    return net, drop


def _way_id_column(ways: pd.DataFrame) -> str | None:
    return next((c for c in ("way_id", "osmid") if c in ways.columns), None)


def _cut_at(net: WalkNetwork, cutter: shapely.Geometry, *, half_width: float) -> WalkNetwork:
    """Split the segments a line crosses where it crosses them (± ``half_width``)."""
    hit = net.segment_tree.query(cutter, predicate="intersects")
    if hit.size == 0:
        return net
    crossings = shapely.intersection(net.segment_geometries[hit], cutter)
    xy, which = shapely.get_coordinates(crossings, return_index=True)
    seg = hit[which]
    along, _ = _project(net, seg, xy)
    if half_width > 0:
        seg = np.concatenate([seg, seg])
        along = np.concatenate([along - half_width, along + half_width])
        along = np.clip(along, 0.0, net.seg_len[seg])
    net, _ = _split(net, seg, along)
    return net


def _add_link(
    net: WalkNetwork, link: NewLink, max_snap_m: float, scenario: Scenario
) -> WalkNetwork:
    """Join a line to the network at its two ends (see the module notes)."""
    xy = _to_network_xy(net, link.coords)
    ends = xy[[0, -1]]
    found = net.segment_tree.query_nearest(
        shapely.points(ends), max_distance=max_snap_m, all_matches=False
    )
    seg = np.full(2, -1, dtype=np.int64)
    seg[found[0]] = found[1]
    for index, position in ((0, 0), (1, len(link.coords) - 1)):
        if seg[index] < 0:
            raise scenario.fail(
                f"{link.key}.coords[{position}]",
                f"the link end is more than {max_snap_m:g} m from any street",
            )
    along, _ = _project(net, seg, ends)
    net, attach = _split(net, seg, along, node_snap_m=LINK_NODE_SNAP_M)
    # the link's own vertices, minus ends that coincide with their attachment
    inner = xy.copy()
    drop_first = np.hypot(*(inner[0] - net.node_xy[attach[0]])) <= _SPLIT_PRECISION_M
    drop_last = np.hypot(*(inner[-1] - net.node_xy[attach[1]])) <= _SPLIT_PRECISION_M
    inner = inner[int(drop_first) : inner.shape[0] - int(drop_last)]
    ids = net.n_nodes + np.arange(inner.shape[0])
    path = np.concatenate([[attach[0]], ids, [attach[1]]])
    node_xy = np.concatenate([net.node_xy, inner])
    step = np.hypot(*(node_xy[path[1:]] - node_xy[path[:-1]]).T)
    real = step > _SPLIT_PRECISION_M
    way_row = len(net.ways)
    row = {"name": link.name, "highway": link.highway, "scenario_edit": link.key}
    ways = pd.concat([net.ways, pd.DataFrame([row])], ignore_index=True)
    edited, _ = _rebuild(
        net,
        node_xy,
        np.concatenate([net.seg_u, path[:-1][real]]),
        np.concatenate([net.seg_v, path[1:][real]]),
        np.concatenate([net.seg_way, np.full(int(real.sum()), way_row)]),
        ways,
        net.report.source,
    )
    logger.info("%s: link %s adds %.1f m of walkway", scenario.source, link.name, step.sum())
    return edited


# --------------------------------------------------------------------------- applying


@dataclass
class _Plan:
    network: WalkNetwork
    facilities: gpd.GeoDataFrame
    gates: gpd.GeoDataFrame | None
    edits: gpd.GeoDataFrame


def _edit_row(
    kind: str, key: str, ident: str, name: str, type_id: str, geometry: Any, length: float
) -> dict[str, Any]:
    return {
        "kind": kind,
        "key": key,
        "id": ident,
        "name": name,
        "type": type_id,
        "length_m": round(length, 1),
        "geometry": geometry,
    }


def _plan(study: Study, scenario: Scenario) -> _Plan:
    rows: list[dict[str, Any]] = []
    facilities = _edited_facilities(study, scenario, rows)
    network = _edited_network(study, scenario, rows)
    gates = _edited_gates(study, scenario, rows)
    edits = gpd.GeoDataFrame(
        rows or None,
        columns=["kind", "key", "id", "name", "type", "length_m", "geometry"],
        geometry="geometry",
        crs=4326,
    )
    return _Plan(network, facilities, gates, edits)


def _edited_facilities(
    study: Study, scenario: Scenario, rows: list[dict[str, Any]]
) -> gpd.GeoDataFrame:
    facilities = study.facilities
    ids = facilities["facility_id"].astype(str)
    position = pd.Series(np.arange(len(ids)), index=ids)
    points = facilities.geometry.to_crs(4326)
    names = facilities["name"] if "name" in facilities else pd.Series("", index=facilities.index)
    for i, ident in enumerate(scenario.remove_facilities):
        if ident not in position.index:
            raise scenario.fail(f"remove_facilities[{i}]", f"no facility with id {ident!r}")
        at = int(np.atleast_1d(position[ident])[0])
        name = "" if pd.isna(names.iloc[at]) else str(names.iloc[at])
        kind = str(facilities["type"].iloc[at])
        key = f"remove_facilities[{i}]"
        rows.append(_edit_row("remove_facility", key, ident, name, kind, points.iloc[at], 0))
    removed = ids.isin(scenario.remove_facilities).to_numpy()
    kept = facilities[~removed]
    remaining = set(ids[~removed])
    for new in scenario.add_facilities:
        if new.id in remaining:
            raise scenario.fail(f"{new.key}.id", f"a facility with id {new.id!r} already exists")
    if not scenario.add_facilities:
        return kept.reset_index(drop=True)
    added = gpd.GeoDataFrame(
        {
            "facility_id": [f.id for f in scenario.add_facilities],
            "type": [f.type for f in scenario.add_facilities],
            "name": [f.name for f in scenario.add_facilities],
            "capacity": [
                np.nan if f.capacity is None else f.capacity for f in scenario.add_facilities
            ],
            "source_file": scenario.source,
        },
        geometry=gpd.points_from_xy(
            [f.lon for f in scenario.add_facilities], [f.lat for f in scenario.add_facilities]
        ),
        crs=4326,
    )
    if "category" in facilities.columns:
        from .taxonomy import default_taxonomy

        taxonomy = default_taxonomy()
        added["category"] = [
            taxonomy.category_of(t) if t in taxonomy else None for t in added["type"]
        ]
    for new, point in zip(scenario.add_facilities, added.geometry, strict=True):
        rows.append(_edit_row("add_facility", new.key, new.id, new.name, new.type, point, 0))
    _refuse_far_points(study, added.geometry, [f.key for f in scenario.add_facilities], scenario)
    added = added.to_crs(facilities.crs)
    merged = pd.concat([kept, added], ignore_index=True)
    return gpd.GeoDataFrame(merged, geometry=facilities.geometry.name, crs=facilities.crs)


def _refuse_far_points(
    study: Study, points: gpd.GeoSeries, keys: list[str], scenario: Scenario
) -> None:
    """An added point beyond the snap limit of every street is a typo, not a plan."""
    import shapely

    if not len(points):
        return
    projected = points.to_crs(study.network.crs).to_numpy()
    tree = shapely.STRtree(np.asarray(study.network.segment_geometries))
    (which, _), distances = tree.query_nearest(projected, return_distance=True, all_matches=False)
    nearest = np.full(len(projected), np.inf)
    nearest[which] = distances
    for key, metres in zip(keys, nearest, strict=True):
        if metres > study.max_snap_m:
            raise scenario.fail(
                key,
                f"the point lies {metres / 1000:,.1f} km from the study's nearest street "
                f"(beyond the {study.max_snap_m:g} m snap limit): check lon/lat and the crs",
            )


def _edited_network(study: Study, scenario: Scenario, rows: list[dict[str, Any]]) -> WalkNetwork:
    net = study.network
    for selector in scenario.remove_links:
        net, drop = _select(net, selector, scenario)
        if not drop.any():
            raise scenario.fail(
                f"{selector.key}.{selector.by}", "selects no street segment of the network"
            )
        geometry = shapely.multilinestrings(net.segment_geometries[drop])
        names = net.ways["name"].iloc[net.seg_way[drop]] if "name" in net.ways else pd.Series([])
        label = ";".join(sorted({str(n) for n in names.dropna()}))
        wgs = gpd.GeoSeries([geometry], crs=net.crs).to_crs(4326).iloc[0]
        value = selector.value if isinstance(selector.value, str) else selector.by
        rows.append(
            _edit_row(
                "remove_link", selector.key, value, label, "", wgs, float(net.seg_len[drop].sum())
            )
        )
        net = _without(net, drop)
    for link in scenario.add_links:
        before = net.total_length_m
        net = _add_link(net, link, study.max_snap_m, scenario)
        line = shapely.LineString(link.coords)
        rows.append(
            _edit_row(
                "add_link", link.key, link.key, link.name, "", line, net.total_length_m - before
            )
        )
    if scenario.remove_links or scenario.add_links:
        logger.info("scenario %s: %s", scenario.name, net.report.summary())
    return net


def _edited_gates(
    study: Study, scenario: Scenario, rows: list[dict[str, Any]]
) -> gpd.GeoDataFrame | None:
    if not scenario.add_gates:
        return study.gates
    known = set(study.communities["community_id"].astype(str))
    for gate in scenario.add_gates:
        if gate.community_id not in known:
            raise scenario.fail(
                f"{gate.key}.community_id", f"no compound with id {gate.community_id!r}"
            )
    added = gpd.GeoDataFrame(
        {
            "gate_id": [g.gate_id for g in scenario.add_gates],
            "community_id": [g.community_id for g in scenario.add_gates],
        },
        geometry=gpd.points_from_xy(
            [g.lon for g in scenario.add_gates], [g.lat for g in scenario.add_gates]
        ),
        crs=4326,
    )
    for gate, point in zip(scenario.add_gates, added.geometry, strict=True):
        rows.append(_edit_row("add_gate", gate.key, gate.gate_id, gate.community_id, "", point, 0))
    if study.gates is None:
        return added
    merged = pd.concat([study.gates, added.to_crs(study.gates.crs)], ignore_index=True)
    return gpd.GeoDataFrame(merged, geometry=study.gates.geometry.name, crs=study.gates.crs)


def apply_scenario(study: Study, scenario: Scenario | str | Path) -> Any:
    """A new study with the scenario's changes; the base study is not modified.

    Parameters
    ----------
    study
        The base :class:`~lifecircle.study.Study`.
    scenario
        A :class:`Scenario` or the path of its YAML file.

    Returns
    -------
    Study
        Same compounds, standard, boundary and snap limit; edited facilities,
        network and gates. ``inputs["scenario"]`` names the scenario file.

    Examples
    --------
    >>> from lifecircle import Study
    >>> study = Study.from_demo()
    >>> daycare = scenario_from_dict({"name": "新日间照料中心", "add_facilities": [
    ...     {"id": "new-1", "type": "elderly_daycare", "lon": 120.6581, "lat": 28.0142}]})
    >>> changed = apply_scenario(study, daycare)
    >>> len(changed.facilities) - len(study.facilities)
    1
    """
    from .study import Study

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    plan = _plan(study, scenario)
    changed = Study(
        plan.network,
        plan.facilities,
        study.communities,
        options=study.options,
        standard=study.standard,
        gates=plan.gates,
        boundary=study.boundary,
    )
    changed.inputs = {**study.inputs, "scenario": scenario.source}
    changed.load_reports = list(study.load_reports)
    return changed


# --------------------------------------------------------------------------- comparing


@dataclass
class ScenarioDiff:
    """What a scenario changes.

    Attributes
    ----------
    name
        The scenario's name.
    compounds
        One row per compound and item whose verdict changes: ``community_id``,
        ``name``, ``population``, ``level`` (type, category, tier), ``item``,
        ``ok_before``, ``ok_after``, ``change`` (``gained`` or ``lost``),
        ``nearest_before_m``, ``nearest_after_m``, ``score_before``,
        ``score_after``.
    coverage
        One row per type, category and tier: compounds and residents meeting
        it before and after, and the change.
    scores
        Every compound with ``score_before``, ``score_after``,
        ``score_change``, ``gained`` and ``lost`` (``;``-separated items) and
        its geometry (WGS84), for the map.
    edits
        The scenario's changes as features (WGS84): ``kind``
        (add_facility, remove_facility, add_link, remove_link, add_gate),
        ``key``, ``id``, ``name``, ``type``, ``length_m``.
    summary
        Completeness and mean score before and after, and counts.
    """

    name: str
    compounds: pd.DataFrame
    coverage: pd.DataFrame
    scores: gpd.GeoDataFrame
    edits: gpd.GeoDataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def _verdicts(scores: pd.DataFrame, standard: Any) -> list[tuple[str, str, NDArray[Any], Any]]:
    """(level, item, ok, nearest metres or None) for every type, category and tier."""
    out: list[tuple[str, str, NDArray[Any], Any]] = []
    for type_id in standard.scored_types():
        out.append(
            (
                "type",
                type_id,
                scores[f"{type_id}_ok"].to_numpy(dtype=bool),
                scores[f"{type_id}_m"].to_numpy(dtype=float),
            )
        )
    for category in standard.categories:
        nearest = scores[f"{category.id}_m"].to_numpy(dtype=float)
        out.append(
            ("category", category.id, scores[f"{category.id}_ok"].to_numpy(dtype=bool), nearest)
        )
    for tier in standard.tiers:
        column = f"tier_{tier.id}_pass"
        if column in scores:
            out.append(("tier", tier.id, scores[column].to_numpy(dtype=bool), None))
    return out


def compare(base: Study, changed: Study, *, scenario: Scenario | None = None) -> ScenarioDiff:
    """Verdicts and coverage of ``changed`` against ``base``.

    Parameters
    ----------
    base, changed
        Two studies of the same compounds (``changed`` usually from
        :func:`apply_scenario`).
    scenario
        The scenario applied, to name the result and list its edits.

    Returns
    -------
    ScenarioDiff

    Examples
    --------
    >>> from lifecircle import Study
    >>> study = Study.from_demo()
    >>> daycare = scenario_from_dict({"name": "新日间照料中心", "add_facilities": [
    ...     {"id": "new-1", "type": "elderly_daycare", "lon": 120.6581, "lat": 28.0142}]})
    >>> diff = compare(study, apply_scenario(study, daycare), scenario=daycare)
    >>> int(diff.coverage.set_index("item").loc["elderly_care", "compounds_after"])
    65
    """
    before, after = base.score(), changed.score()
    ids = before["community_id"].astype(str).to_numpy()
    if not np.array_equal(ids, after["community_id"].astype(str).to_numpy()):
        raise InputError("the two studies do not hold the same compounds in the same order")
    population = pd.to_numeric(before["population"], errors="coerce").to_numpy(dtype=float)
    weights = np.nan_to_num(population)
    score_before = before["score"].to_numpy(dtype=float)
    score_after = after["score"].to_numpy(dtype=float)
    names = before["name"].to_numpy() if "name" in before else np.full(len(ids), None)
    change_rows, coverage_rows = [], []
    gained: list[list[str]] = [[] for _ in ids]
    lost: list[list[str]] = [[] for _ in ids]
    for (level, item, ok_a, near_a), (_, _, ok_b, near_b) in zip(
        _verdicts(before, base.standard), _verdicts(after, base.standard), strict=True
    ):
        coverage_rows.append(
            {
                "level": level,
                "item": item,
                "compounds_before": int(ok_a.sum()),
                "compounds_after": int(ok_b.sum()),
                "compounds_change": int(ok_b.sum()) - int(ok_a.sum()),
                "population_before": round(float(weights[ok_a].sum()), 1),
                "population_after": round(float(weights[ok_b].sum()), 1),
                "population_change": round(float(weights[ok_b].sum() - weights[ok_a].sum()), 1),
            }
        )
        flipped = np.flatnonzero(ok_a != ok_b)
        for i in flipped:
            (gained if ok_b[i] else lost)[i].append(item if level != "tier" else f"tier_{item}")
        if flipped.size:
            change_rows.append(
                pd.DataFrame(
                    {
                        "community_id": ids[flipped],
                        "name": names[flipped],
                        "population": population[flipped],
                        "level": level,
                        "item": item,
                        "ok_before": ok_a[flipped],
                        "ok_after": ok_b[flipped],
                        "change": np.where(ok_b[flipped], "gained", "lost"),
                        "nearest_before_m": near_a[flipped] if near_a is not None else np.nan,
                        "nearest_after_m": near_b[flipped] if near_b is not None else np.nan,
                        "score_before": score_before[flipped],
                        "score_after": score_after[flipped],
                    }
                )
            )
    compounds = (
        pd.concat(change_rows, ignore_index=True)
        if change_rows
        else pd.DataFrame(columns=_CHANGE_COLUMNS)
    )
    scores = gpd.GeoDataFrame(
        {
            "community_id": ids,
            "name": names,
            "population": population,
            "score_before": score_before,
            "score_after": score_after,
            "score_change": np.round(score_after - score_before, 1),
            "gained": [";".join(g) for g in gained],
            "lost": [";".join(g) for g in lost],
        },
        geometry=before.geometry.to_crs(4326).to_numpy(),
        crs=4326,
    )
    edits = (
        _plan(base, scenario).edits
        if scenario is not None
        else gpd.GeoDataFrame(columns=["kind", "geometry"], geometry="geometry", crs=4326)
    )
    name = scenario.name if scenario is not None else "scenario"
    summary = _diff_summary(name, before, after, base.standard, scores, compounds)
    logger.info(
        "scenario %s: %d compound(s) change, completeness %.3f -> %.3f",
        name,
        summary["compounds_changed"],
        summary["completeness_before"],
        summary["completeness_after"],
    )
    return ScenarioDiff(name, compounds, pd.DataFrame(coverage_rows), scores, edits, summary)


_CHANGE_COLUMNS = [
    "community_id",
    "name",
    "population",
    "level",
    "item",
    "ok_before",
    "ok_after",
    "change",
    "nearest_before_m",
    "nearest_after_m",
    "score_before",
    "score_after",
]


def _diff_summary(
    name: str,
    before: pd.DataFrame,
    after: pd.DataFrame,
    standard: Any,
    scores: pd.DataFrame,
    compounds: pd.DataFrame,
) -> dict[str, Any]:
    summary_a, summary_b = summarise(before, standard), summarise(after, standard)
    changed = scores[(scores["gained"] != "") | (scores["lost"] != "")]
    return {
        "name": name,
        "compounds_changed": len(changed),
        "population_changed": round(float(np.nansum(changed["population"])), 1),
        "items_gained": int((compounds["change"] == "gained").sum()) if len(compounds) else 0,
        "items_lost": int((compounds["change"] == "lost").sum()) if len(compounds) else 0,
        "completeness_before": summary_a["completeness"],
        "completeness_after": summary_b["completeness"],
        "mean_score_before": summary_a["mean_score"],
        "mean_score_after": summary_b["mean_score"],
    }


def run_scenario(study: Study, scenario: Scenario | str | Path) -> ScenarioDiff:
    """Load (if needed), apply and compare a scenario in one call.

    Examples
    --------
    >>> from lifecircle import Study
    >>> study = Study.from_demo()
    >>> daycare = scenario_from_dict({"name": "新日间照料中心", "add_facilities": [
    ...     {"id": "new-1", "type": "elderly_daycare", "lon": 120.6581, "lat": 28.0142}]})
    >>> run_scenario(study, daycare).summary["compounds_changed"]
    4
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return compare(study, apply_scenario(study, scenario), scenario=scenario)


def write_scenario_outputs(
    diff: ScenarioDiff, out_dir: str | Path, *, inputs: Iterable[str | Path] = ()
) -> list[Path]:
    """Write the scenario's changes, coverage, map layers and summary into ``out_dir``.

    Files: ``scenario_changes.csv`` and ``scenario_coverage.csv`` (UTF-8 with
    BOM for Excel), ``scenario.gpkg`` (layers ``compounds``, and
    ``edited_points`` / ``edited_lines`` when the scenario has edits) and
    ``scenario_summary.json``; each written atomically.

    Examples
    --------
    >>> import tempfile
    >>> from lifecircle import Study
    >>> study = Study.from_demo()
    >>> daycare = scenario_from_dict({"name": "新日间照料中心", "add_facilities": [
    ...     {"id": "new-1", "type": "elderly_daycare", "lon": 120.6581, "lat": 28.0142}]})
    >>> written = write_scenario_outputs(run_scenario(study, daycare), tempfile.mkdtemp())
    >>> [p.name for p in written][:2]
    ['scenario_changes.csv', 'scenario_coverage.csv']
    """
    out = Path(out_dir)
    targets = [out / name for name in SCENARIO_OUTPUT_NAMES]
    refuse_to_overwrite(targets, inputs)
    out.mkdir(parents=True, exist_ok=True)
    write_table(diff.compounds, targets[0])
    write_table(diff.coverage, targets[1])
    layers: dict[str, gpd.GeoDataFrame] = {"compounds": diff.scores}
    if len(diff.edits):
        is_point = (diff.edits.geom_type == "Point").to_numpy()
        if is_point.any():
            layers["edited_points"] = diff.edits[is_point]
        if (~is_point).any():
            lines = diff.edits[~is_point].copy()
            lines["geometry"] = lines.geometry.map(
                lambda g: g if g.geom_type == "MultiLineString" else shapely.multilinestrings([g])
            )
            layers["edited_lines"] = lines
    write_layers(layers, targets[2])
    write_json(diff.summary, targets[3])
    return targets
