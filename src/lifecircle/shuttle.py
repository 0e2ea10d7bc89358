"""A free elderly shuttle (老年人免费接驳车): stops, a loop route and its timetable.

The aim is the largest number of residents aged 60 and over who reach a
destination (a hospital, an elderly day-care centre, a market...) within 15
minutes door to door. A trip is the walk to a stop, half the headway (the mean
wait), the ride and the walk from the stop, or the direct walk, whichever is
shorter::

    trip = min(walk(home, dest),
               walk(home, s) + headway / 2 + ride(s, t) + walk(t, dest))

Walks are measured on the study's walk network at the elderly walking speed;
rides on the drivable network (the ways cars may use) at the vehicle speed,
plus a dwell time at every stop passed on the way. The bus runs one loop in one
direction, so ``ride(s, t)`` goes forward along the loop from ``s`` to ``t``.
One-way streets are not modelled: the drivable network is undirected.

Method
------
1. Candidates: points on the main drivable network about every ``spacing_m``
   (:func:`lifecircle.siting.network_candidates`).
2. Destination stops: for every destination, the candidate nearest to it on
   foot. They are always served; a destination with no candidate within
   ``max_access_walk_m`` is unreachable by road and reported.
3. Boarding stops: ``k`` more stops by maximal covering
   (:func:`lifecircle.siting.greedy_cover` or ``exact_cover``) over
   (compound, destination type) pairs weighted by the compound's residents aged
   60+: a candidate covers a pair when walking to it, waiting, riding the
   shortest drive path to a destination stop and walking on fits in the target
   (optimistic: the loop's ride is never shorter). Pairs within the target on
   foot need no stop.
4. Route: the stops in the order of the shortest loop, found by the OR-Tools
   routing solver (guided local search) on drive times.
5. Every trip is then timed exactly along that loop.

:func:`brute_force_plan` finds the exact optimum of the same objective on
small instances (every choice of boarding stops and every loop order), to
check the method on constructed cases.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from .census import group_column, group_populations
from .config import read_yaml_text
from .engine import ReachEngine
from .errors import InputError, MissingDataError
from .network import WalkNetwork, load_network, network_from_lines
from .outputs import refuse_to_overwrite, write_json, write_layers, write_table
from .scoring import ORIGIN_LAYER
from .siting import exact_cover, greedy_cover, network_candidates

if TYPE_CHECKING:
    from .study import Study

logger = logging.getLogger(__name__)

__all__ = [
    "SHUTTLE_OUTPUT_NAMES",
    "ShuttleInstance",
    "ShuttleParams",
    "ShuttlePlan",
    "brute_force_plan",
    "drivable_network",
    "evaluate_lines",
    "evaluate_loop",
    "is_drivable",
    "loop_order",
    "plan_shuttle",
    "ride_times",
    "shuttle_defaults",
    "solve_instance",
    "solve_lines",
    "split_lines",
    "trip_times",
    "write_shuttle_outputs",
]

SHUTTLE_OUTPUT_NAMES = (
    "shuttle.gpkg",
    "shuttle_timetable.csv",
    "shuttle_reach.csv",
    "shuttle.json",
)
STOP_LAYER = "shuttle_stops"
_ACCESS_FORBIDDEN = frozenset({"no", "private"})
_ROUTING_TIME_LIMIT_S = 2
_BRUTE_FORCE_LIMIT = 2_000_000


@cache
def shuttle_defaults() -> dict[str, Any]:
    """The packaged defaults (``data/shuttle.yaml``) with their provenance.

    Examples
    --------
    >>> shuttle_defaults()["elderly_walk_speed"]["m_per_min"]
    50
    """
    text = (resources.files("lifecircle") / "data" / "shuttle.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = read_yaml_text(text, source="shuttle.yaml")
    return data


@dataclass(frozen=True)
class ShuttleParams:
    """Speeds and times of the service (defaults from ``data/shuttle.yaml``)."""

    walk_speed_m_per_min: float = 50.0
    vehicle_speed_kmh: float = 20.0
    headway_min: float = 10.0
    dwell_min: float = 0.5
    target_min: float = 15.0
    max_access_walk_m: float = 300.0

    @classmethod
    def from_defaults(cls, **changes: float | None) -> ShuttleParams:
        """The packaged defaults, with the given values replacing them."""
        d = shuttle_defaults()
        params = cls(
            walk_speed_m_per_min=float(d["elderly_walk_speed"]["m_per_min"]),
            vehicle_speed_kmh=float(d["vehicle_speed_kmh"]["value"]),
            headway_min=float(d["headway_min"]["value"]),
            dwell_min=float(d["dwell_min"]["value"]),
            target_min=float(d["target"]["minutes"]),
            max_access_walk_m=float(d["max_access_walk_m"]["value"]),
        )
        given = {k: float(v) for k, v in changes.items() if v is not None}
        return replace(params, **given).checked()

    def checked(self) -> ShuttleParams:
        """Raise InputError on impossible values."""
        for name in ("walk_speed_m_per_min", "vehicle_speed_kmh", "headway_min", "target_min"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise InputError(f"shuttle {name} must be positive, got {value!r}")
        if self.dwell_min < 0 or self.max_access_walk_m <= 0:
            raise InputError("shuttle dwell_min must be >= 0 and max_access_walk_m > 0")
        if not 10.0 <= self.walk_speed_m_per_min <= 150.0:
            raise InputError(
                f"elderly walking speed {self.walk_speed_m_per_min:g} m/min is outside 10-150 "
                "m/min; give metres per minute"
            )
        return self

    @property
    def vehicle_m_per_min(self) -> float:
        """Vehicle speed in metres per minute."""
        return self.vehicle_speed_kmh * 1000.0 / 60.0


# --------------------------------------------------------------------- drivable network


def is_drivable(ways: pd.DataFrame) -> pd.Series:
    """Which ways a car may use: a drivable ``highway`` and no access ban.

    Frames without a ``highway`` column (a plain road file) are taken as drivable.

    Examples
    --------
    >>> ways = pd.DataFrame({"highway": ["residential", "footway", "service", "primary"],
    ...                      "access": [None, None, "private", None]})
    >>> is_drivable(ways).tolist()
    [True, False, False, True]
    """
    if "highway" not in ways.columns:
        return pd.Series(True, index=ways.index)
    allowed = set(shuttle_defaults()["drivable_highways"])

    def tag(name: str) -> pd.Series:
        if name not in ways.columns:
            return pd.Series("", index=ways.index)
        return ways[name].map(_first_value).fillna("").astype(str).str.lower()

    drivable = tag("highway").isin(allowed)
    drivable &= ~tag("access").isin(_ACCESS_FORBIDDEN)
    drivable &= ~tag("motor_vehicle").isin(_ACCESS_FORBIDDEN)
    drivable &= ~tag("motorcar").isin(_ACCESS_FORBIDDEN)
    return drivable


def _first_value(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)


def drivable_network(source: WalkNetwork | gpd.GeoDataFrame | str | Path) -> WalkNetwork:
    """The network a vehicle may drive on.

    Parameters
    ----------
    source
        The study's :class:`~lifecircle.network.WalkNetwork` (its ways that
        cars may use are kept, by their ``highway`` tag), a GeoDataFrame of
        lines, or a road file (a line file, or an OSM file whose drivable
        ways are kept). Lines without a ``highway`` column are all drivable.

    Returns
    -------
    WalkNetwork
        An undirected segment graph of the drivable ways.

    Raises
    ------
    MissingDataError
        No drivable way in the source.
    """
    if isinstance(source, WalkNetwork):
        lines = _network_lines(source)
        label = "the study's streets"
    elif isinstance(source, gpd.GeoDataFrame):
        lines, label = source, "the road lines"
    else:
        path = Path(source)
        label = str(path)
        if path.name.lower().endswith((".osm", ".osm.bz2", ".xml", ".pbf", ".graphml")):
            lines = _network_lines(load_network(path))
        else:
            try:
                lines = gpd.read_file(path)
            except Exception as exc:  # pyogrio raises several kinds
                raise InputError(f"cannot read the road file: {exc}", file=path) from exc
    keep = is_drivable(pd.DataFrame(lines.drop(columns=lines.geometry.name)))
    kept = lines[keep.to_numpy()]
    if kept.empty:
        found = (
            ", ".join(sorted(map(str, lines["highway"].dropna().unique())))
            if "highway" in lines
            else "none"
        )
        raise MissingDataError(
            f"{label}: no drivable way (highway values found: {found}); give a road file "
            "with --drive FILE"
        )
    crs = kept.crs if kept.crs is not None and kept.crs.is_projected else None
    return network_from_lines(kept, source=f"drivable ways of {label}", crs=crs)


def _network_lines(network: WalkNetwork) -> gpd.GeoDataFrame:
    ways = network.ways.iloc[network.seg_way].reset_index(drop=True)
    return gpd.GeoDataFrame(ways, geometry=network.segment_geometries, crs=network.crs)


# ------------------------------------------------------------------------ trip times


def ride_times(legs_min: NDArray[np.float64], dwell_min: float) -> NDArray[np.float64]:
    """Ride time between every two stops of a one-way loop.

    ``legs_min[j]`` is the drive time from the ``j``-th stop of the loop to
    the next (the last leg returns to the first stop). Riding from stop ``a``
    to stop ``b`` takes the legs between them, forward, and a dwell at every
    stop passed on the way. The diagonal is ``inf`` (no ride).

    Examples
    --------
    >>> ride_times(np.array([2.0, 3.0, 4.0]), 0.5)
    array([[inf, 2. , 5.5],
           [7.5, inf, 3. ],
           [4. , 6.5, inf]])
    """
    legs = np.asarray(legs_min, dtype=float)
    m = legs.shape[0]
    # time from leaving stop 0 to reaching position j of the doubled loop
    reach = np.concatenate([[0.0], np.cumsum(np.tile(legs, 2))]) + dwell_min * np.arange(2 * m + 1)
    a = np.arange(m)[:, None]
    b = np.arange(m)[None, :]
    ahead = np.where(b > a, b, b + m)
    ride = reach[ahead] - reach[a] - dwell_min
    ride[np.arange(m), np.arange(m)] = np.inf
    return ride


def trip_times(
    access_min: NDArray[np.float64],
    ride_min: NDArray[np.float64],
    egress_min: NDArray[np.float64],
    direct_min: NDArray[np.float64],
    wait_min: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Door-to-door minutes for every compound and destination type.

    Parameters
    ----------
    access_min
        ``(compounds, stops)`` walk from home to each stop.
    ride_min
        ``(stops, stops)`` from :func:`ride_times`.
    egress_min
        ``(stops, types)`` walk from each stop to the nearest destination of
        each type.
    direct_min
        ``(compounds, types)`` walk from home to the nearest destination.
    wait_min
        Mean wait (half the headway).

    Returns
    -------
    best, by_shuttle
        ``(compounds, types)``: the shorter of walking and riding, and the
        best trip by the shuttle alone (``inf`` when none).

    Examples
    --------
    Walk 4 min to stop 0, wait 5, ride 2 to stop 1, walk 1: 12 minutes,
    against 20 on foot.

    >>> best, ride = trip_times(np.array([[4.0, 9.0]]), ride_times(np.array([2.0, 2.0]), 0.5),
    ...                         np.array([[9.0], [1.0]]), np.array([[20.0]]), 5.0)
    >>> best.tolist(), ride.tolist()
    ([[12.0]], [[12.0]])
    """
    # best ride-and-walk from each boarding stop to each type: min over alighting stops
    onward = np.min(ride_min[:, :, None] + egress_min[None, :, :], axis=1)  # (stops, types)
    by_shuttle = np.min(access_min[:, :, None] + onward[None, :, :], axis=1) + wait_min
    return np.minimum(direct_min, by_shuttle), by_shuttle


@dataclass
class ShuttleInstance:
    """A shuttle problem as matrices (metres); rows and columns by position.

    ``access_m`` (compounds x candidates), ``egress_m`` (candidates x types),
    ``drive_m`` (candidates x candidates), ``direct_m`` (compounds x types),
    ``weights`` (residents aged 60+ per compound) and ``fixed`` (candidates
    that are always stops: those at the destinations).
    """

    access_m: NDArray[np.float64]
    egress_m: NDArray[np.float64]
    drive_m: NDArray[np.float64]
    direct_m: NDArray[np.float64]
    weights: NDArray[np.float64]
    fixed: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def n_candidates(self) -> int:
        """Number of candidate stops."""
        return int(self.drive_m.shape[0])


def evaluate_loop(
    instance: ShuttleInstance, loop: Sequence[int], params: ShuttleParams
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """Residents aged 60+ reaching each type within the target, with a given loop.

    Returns
    -------
    value, best, by_shuttle
        ``value`` is the sum over destination types of the residents aged 60+
        whose trip fits in the target; ``best`` and ``by_shuttle`` are
        :func:`trip_times` (minutes) for the loop.
    """
    stops = np.asarray(loop, dtype=np.int64)
    walk = params.walk_speed_m_per_min
    direct = instance.direct_m / walk
    if stops.size < 2:
        by_shuttle = np.full(direct.shape, np.inf)
        best = direct
    else:
        legs = instance.drive_m[stops, np.roll(stops, -1)] / params.vehicle_m_per_min
        ride = ride_times(legs, params.dwell_min)
        best, by_shuttle = trip_times(
            instance.access_m[:, stops] / walk,
            ride,
            instance.egress_m[stops] / walk,
            direct,
            params.headway_min / 2.0,
        )
    reached = best <= params.target_min + 1e-9
    value = float((instance.weights[:, None] * reached).sum())
    return value, best, by_shuttle


def loop_order(
    drive: NDArray[np.float64], *, time_limit_s: int = _ROUTING_TIME_LIMIT_S
) -> list[int]:
    """The order of the shortest loop through all stops (OR-Tools routing solver).

    ``drive`` is the (stops x stops) drive distance or time. The loop starts at
    stop 0. Up to 8 stops every order is tried; beyond, OR-Tools' guided local
    search runs for ``time_limit_s`` seconds.

    Examples
    --------
    >>> d = np.array([[0, 1, 5, 1], [1, 0, 1, 5], [5, 1, 0, 1], [1, 5, 1, 0]], dtype=float)
    >>> loop_order(d)
    [0, 1, 2, 3]
    """
    m = int(drive.shape[0])
    if m <= 3:
        return list(range(m))
    if m <= 8:
        return _shortest_loop_by_enumeration(drive)
    return _shortest_loop_ortools(drive, time_limit_s)


def _loop_length(drive: NDArray[np.float64], order: Sequence[int]) -> float:
    index = np.asarray(order, dtype=np.int64)
    return float(drive[index, np.roll(index, -1)].sum())


def _shortest_loop_by_enumeration(drive: NDArray[np.float64]) -> list[int]:
    m = drive.shape[0]
    best, best_order = np.inf, list(range(m))
    for rest in itertools.permutations(range(1, m)):
        order = [0, *rest]
        length = _loop_length(drive, order)
        if length < best - 1e-9:
            best, best_order = length, order
    return best_order


def _search_parameters(time_limit_s: float) -> Any:
    """OR-Tools routing search: cheapest arc first, then guided local search."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    search = pywrapcp.DefaultRoutingSearchParameters()
    search.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    search.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    search.time_limit.seconds = int(time_limit_s)
    return search


def _shortest_loop_ortools(drive: NDArray[np.float64], time_limit_s: int) -> list[int]:
    from ortools.constraint_solver import pywrapcp

    m = int(drive.shape[0])
    scale = 10.0  # decimetres: OR-Tools needs integer costs
    costs = np.round(np.where(np.isfinite(drive), drive, 1e9) * scale).astype(np.int64)
    manager = pywrapcp.RoutingIndexManager(m, 1, 0)
    routing = pywrapcp.RoutingModel(manager)

    def cost(i: int, j: int) -> int:
        return int(costs[manager.IndexToNode(i), manager.IndexToNode(j)])

    callback = routing.RegisterTransitCallback(cost)
    routing.SetArcCostEvaluatorOfAllVehicles(callback)
    solution = routing.SolveWithParameters(_search_parameters(time_limit_s))
    if solution is None:
        logger.warning("OR-Tools found no loop; keeping the stops in the order given")
        return list(range(m))
    order, index = [], routing.Start(0)
    while not routing.IsEnd(index):
        order.append(manager.IndexToNode(index))
        index = solution.Value(routing.NextVar(index))
    return order


def _pair_coverage(
    instance: ShuttleInstance, params: ShuttleParams, fixed: NDArray[np.int64]
) -> tuple[sparse.csr_matrix, NDArray[np.float64], NDArray[np.int64]]:
    """Which candidate lets which (compound, type) pair arrive in time.

    Columns are (compound, destination type) pairs, weighted by the compound's
    residents aged 60+. A candidate covers a pair when boarding there and
    riding the shortest drive path to a destination stop fits in the target:
    the loop's ride is never shorter, so this is optimistic, and the plan is
    timed exactly along the loop afterwards. Pairs already within the target
    on foot need nothing.
    """
    walk, target = params.walk_speed_m_per_min, params.target_min + 1e-9
    n, n_types = instance.direct_m.shape
    if fixed.size:
        onward = np.min(
            instance.drive_m[:, fixed, None] / params.vehicle_m_per_min
            + instance.egress_m[fixed][None, :, :] / walk,
            axis=1,
        )  # (candidates, types)
    else:
        onward = np.full((instance.n_candidates, n_types), np.inf)
    trip = (
        instance.access_m.T[:, :, None] / walk + params.headway_min / 2.0 + onward[:, None, :]
    )  # (candidates, compounds, types)
    covers = sparse.csr_matrix((trip <= target).reshape(instance.n_candidates, n * n_types))
    weights = np.repeat(instance.weights, n_types)
    need = (instance.direct_m / walk > target).reshape(-1).astype(np.int64)
    return covers, weights, need


def solve_instance(
    instance: ShuttleInstance, k: int, params: ShuttleParams, *, method: str = "greedy"
) -> tuple[list[int], float]:
    """Choose ``k`` boarding stops by maximal covering, then order the loop.

    Returns
    -------
    loop, value
        Candidate positions in loop order (fixed stops included) and the
        objective of :func:`evaluate_loop`.
    """
    n_free = instance.n_candidates - len(set(instance.fixed.tolist()))
    if k < 0 or k > n_free:
        raise InputError(
            f"k = {k} boarding stops, but only {n_free} candidate stops are left besides the "
            f"{len(set(instance.fixed.tolist()))} at the destinations; choose k <= {n_free} or "
            "a smaller candidate spacing"
        )
    fixed = np.unique(instance.fixed)
    matrix, weights, need = _pair_coverage(instance, params, fixed)
    free = np.setdiff1d(np.arange(instance.n_candidates), fixed)
    matrix = matrix[free]
    if method == "exact":
        picked, _ = exact_cover(matrix, weights, k, need=need)
    elif method == "greedy":
        picked, _ = greedy_cover(matrix, weights, k, need=need, stop_without_gain=False)
    else:
        raise InputError(f"unknown stop-siting method {method!r}; use greedy or exact")
    stops = np.concatenate([fixed, free[picked]]).astype(np.int64)
    if stops.size == 0:
        return [], 0.0
    order = loop_order(instance.drive_m[np.ix_(stops, stops)])
    loop = [int(stops[i]) for i in order]
    value, _, _ = evaluate_loop(instance, loop, params)
    return loop, value


def evaluate_lines(
    instance: ShuttleInstance, lines: Sequence[Sequence[int]], params: ShuttleParams
) -> tuple[float, NDArray[np.float64]]:
    """:func:`evaluate_loop` for several loops: each trip rides one line (no transfers).

    Returns
    -------
    value, best
        Residents aged 60+ reaching each type in time, summed over types, and
        the best door-to-door minutes over all lines (and walking).
    """
    best = instance.direct_m / params.walk_speed_m_per_min
    for line in lines:
        best = np.minimum(best, evaluate_loop(instance, line, params)[1])
    reached = best <= params.target_min + 1e-9
    return float((instance.weights[:, None] * reached).sum()), best


def split_lines(
    drive: NDArray[np.float64], n_lines: int, *, time_limit_s: int = _ROUTING_TIME_LIMIT_S
) -> list[list[int]]:
    """Share the stops among ``n_lines`` loops from stop 0 (OR-Tools vehicle routing).

    Every stop but 0 is on exactly one line; all lines start and end at stop 0,
    where they meet. The longest line is kept short (a span cost), so that the
    lines are balanced. Empty lines are dropped.

    Examples
    --------
    >>> x = np.array([0.0, -100.0, -200.0, 100.0, 200.0])
    >>> sorted(sorted(line) for line in split_lines(np.abs(x[:, None] - x[None, :]), 2))
    [[0, 1, 2], [0, 3, 4]]
    """
    from ortools.constraint_solver import pywrapcp

    m = int(drive.shape[0])
    if n_lines < 1:
        raise InputError(f"the number of lines must be at least 1, got {n_lines}")
    if m <= 2 or n_lines == 1:
        return [list(range(m))]
    costs = np.round(np.where(np.isfinite(drive), drive, 1e9) * 10.0).astype(np.int64)
    manager = pywrapcp.RoutingIndexManager(m, int(n_lines), 0)
    routing = pywrapcp.RoutingModel(manager)

    def cost(i: int, j: int) -> int:
        return int(costs[manager.IndexToNode(i), manager.IndexToNode(j)])

    callback = routing.RegisterTransitCallback(cost)
    routing.SetArcCostEvaluatorOfAllVehicles(callback)
    routing.AddDimension(callback, 0, int(costs.sum()) + 1, True, "length")
    routing.GetDimensionOrDie("length").SetGlobalSpanCostCoefficient(100)
    solution = routing.SolveWithParameters(_search_parameters(time_limit_s))
    if solution is None:
        logger.warning("OR-Tools found no split into lines; running one loop")
        return [loop_order(drive)]
    lines = []
    for vehicle in range(int(n_lines)):
        index, line = routing.Start(vehicle), []
        while not routing.IsEnd(index):
            line.append(manager.IndexToNode(index))
            index = solution.Value(routing.NextVar(index))
        if len(line) > 1:
            lines.append(line)
    return lines or [list(range(m))]


def solve_lines(
    instance: ShuttleInstance,
    k: int,
    params: ShuttleParams,
    n_lines: int,
    *,
    method: str = "greedy",
) -> tuple[list[list[int]], float]:
    """:func:`solve_instance`, then the stops shared among ``n_lines`` loops.

    The lines meet at the first stop of the single loop (a destination stop
    when there is one). Returns the lines (candidate positions, each starting
    at the shared stop) and the objective of :func:`evaluate_lines`.
    """
    loop, value = solve_instance(instance, k, params, method=method)
    if n_lines == 1 or len(loop) <= 2:
        return [loop], value
    stops = np.asarray(loop, dtype=np.int64)
    parts = split_lines(instance.drive_m[np.ix_(stops, stops)], n_lines)
    lines = [[int(stops[i]) for i in part] for part in parts]
    return lines, evaluate_lines(instance, lines, params)[0]


def brute_force_plan(
    instance: ShuttleInstance, k: int, params: ShuttleParams
) -> tuple[list[int], float]:
    """The exact optimum: every choice of ``k`` boarding stops, every loop order.

    For checking the method on small constructed cases only.

    Raises
    ------
    InputError
        When the instance is too large to enumerate.
    """
    fixed = [int(i) for i in np.unique(instance.fixed)]
    free = [i for i in range(instance.n_candidates) if i not in fixed]
    m = len(fixed) + k
    size = math.comb(len(free), k) * math.factorial(max(m - 1, 0))
    if size > _BRUTE_FORCE_LIMIT:
        raise InputError(f"brute force would try {size:,} plans; use a smaller case")
    best_loop: list[int] = []
    best = -1.0
    for chosen in itertools.combinations(free, k):
        stops = fixed + list(chosen)
        if len(stops) < 2:
            value = evaluate_loop(instance, stops, params)[0]
            if value > best:
                best, best_loop = value, stops
            continue
        for rest in itertools.permutations(stops[1:]):
            loop = [stops[0], *rest]
            value = evaluate_loop(instance, loop, params)[0]
            if value > best + 1e-9:
                best, best_loop = value, loop
    return best_loop, best


# --------------------------------------------------------------------------- the plan


@dataclass
class ShuttlePlan:
    """A shuttle plan and what it achieves.

    Attributes
    ----------
    stops
        One row per stop of each line: ``line``, ``stop_id`` (S01... in loop
        order; a stop shared by lines keeps its id), ``seq``, ``kind`` (``destination``
        or ``boarding``), ``near`` (destination types within the access walk),
        ``residents_60plus_in_walk`` (within ``max_access_walk_m``), ``arrive_min``
        (minutes after the loop leaves S01) and points (WGS84).
    route
        One row per leg: ``line``, ``leg``, ``from_stop``, ``to_stop``, ``length_m``,
        ``drive_min`` and the driven line (WGS84).
    timetable
        ``line``, ``trip``, ``seq``, ``stop_id``, ``arrive``, ``depart`` (HH:MM) over the
        service hours.
    reach
        Per destination type: ``type``, ``residents_60plus``, ``walk_only``,
        ``with_shuttle``, ``walk_only_share``, ``with_shuttle_share``.
    compounds
        Per compound: ``community_id``, ``name``, ``pop_age_60plus`` and per
        type ``<type>_walk_min``, ``<type>_trip_min`` (with the shuttle) and
        ``<type>_reached``.
    """

    stops: gpd.GeoDataFrame
    route: gpd.GeoDataFrame
    timetable: pd.DataFrame
    reach: pd.DataFrame
    compounds: pd.DataFrame
    params: ShuttleParams
    destination_types: list[str]
    k: int
    cycle_min: float
    vehicles: int
    method: str
    notes: list[str] = field(default_factory=list)
    lines: int = 1

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (``summary.json`` key ``shuttle``)."""
        defaults = shuttle_defaults()
        return {
            "k_boarding_stops": self.k,
            "stops": int(self.stops["stop_id"].nunique()),
            "lines": self.lines,
            "destination_types": list(self.destination_types),
            "loop_km": round(float(self.route["length_m"].sum()) / 1000.0, 3),
            "cycle_min": round(self.cycle_min, 1),  # the longest line
            "vehicles_needed": self.vehicles,
            "method": self.method,
            "parameters": {
                "elderly_walk_speed_m_per_min": self.params.walk_speed_m_per_min,
                "elderly_walk_speed_status": defaults["elderly_walk_speed"]["status"],
                "vehicle_speed_kmh": self.params.vehicle_speed_kmh,
                "headway_min": self.params.headway_min,
                "dwell_min": self.params.dwell_min,
                "target_min": self.params.target_min,
                "target_source": defaults["target"]["quote"],
                "max_access_walk_m": self.params.max_access_walk_m,
            },
            "reach": {
                str(r["type"]): {k: _plain(v) for k, v in r.items() if k != "type"}
                for r in self.reach.to_dict("records")
            },
            "notes": list(self.notes),
        }


def plan_shuttle(
    study: Study,
    k: int,
    *,
    destinations: Sequence[str] | gpd.GeoDataFrame | None = None,
    drive: WalkNetwork | gpd.GeoDataFrame | str | Path | None = None,
    params: ShuttleParams | None = None,
    groups: pd.DataFrame | None = None,
    spacing_m: float = 100.0,
    method: str = "greedy",
    lines: int = 1,
    service_hours: tuple[str, str] = ("07:00", "19:00"),
) -> ShuttlePlan:
    """Plan stops and a loop route (or ``lines`` loops) for a free elderly shuttle.

    Parameters
    ----------
    study
        A :class:`~lifecircle.study.Study` (compounds, gates, facilities,
        walk network).
    k
        Number of boarding stops, besides one stop at each destination.
    destinations
        Facility types of the study (default ``hospital``, ``elderly_daycare``,
        ``fresh_market``), or a GeoDataFrame of points with a ``type`` column.
    drive
        The drivable network (default: the study's streets that cars may use),
        a road file or lines; see :func:`drivable_network`.
    params
        Speeds and times (default :meth:`ShuttleParams.from_defaults`).
    groups
        :func:`lifecircle.census.group_populations` of the compounds (default
        from their population and the census shares).
    spacing_m
        Spacing of candidate stops along the drivable streets.
    method
        ``greedy`` or ``exact`` maximal covering for the boarding stops.
    lines
        Number of loop lines sharing the stops (default one loop); lines meet
        at one stop, and trips ride one line (no transfers).
    service_hours
        First and last departure of the timetable (``HH:MM``).

    Raises
    ------
    InputError
        ``k`` larger than the candidates, unknown destination types, no
        destination of a type, bad parameters.
    MissingDataError
        No drivable way; destinations unreachable by road.

    Examples
    --------
    >>> from lifecircle import Study
    >>> plan = plan_shuttle(Study.from_demo(), 2)
    >>> len(plan.stops), list(plan.reach["type"])
    (10, ['hospital', 'elderly_daycare', 'fresh_market'])
    """
    params = (params or ShuttleParams.from_defaults()).checked()
    drive_net = drivable_network(drive if drive is not None else study.network)
    candidates = network_candidates(drive_net, spacing_m=spacing_m)
    dest_frame, dest_types = _destinations(study, destinations)
    instance, notes, engine = _build_instance(
        study, drive_net, candidates, dest_frame, dest_types, groups, params
    )
    loops, _ = solve_lines(instance, int(k), params, int(lines), method=method)
    _, best = evaluate_lines(instance, loops, params)
    plan = _assemble(
        study, drive_net, engine, candidates, instance, loops, dest_types,
        best, params, int(k), method, service_hours,
    )  # fmt: skip
    plan.notes = notes + plan.notes
    return plan


def _destinations(
    study: Study, destinations: Sequence[str] | gpd.GeoDataFrame | None
) -> tuple[gpd.GeoDataFrame, list[str]]:
    if isinstance(destinations, gpd.GeoDataFrame):
        if "type" not in destinations:
            raise InputError("destination points need a 'type' column")
        frame = destinations.reset_index(drop=True)
        types = list(dict.fromkeys(frame["type"].astype(str)))
        return frame, types
    types = list(destinations or shuttle_defaults()["destination_types"]["types"])
    present = study.facilities["type"].astype(str)
    absent = [t for t in types if not (present == t).any()]
    if absent:
        raise InputError(
            f"no destination of type {', '.join(absent)} among the study's facilities "
            f"(types present: {', '.join(sorted(present.unique()))}); choose other types or "
            "give a destinations file"
        )
    frame = study.facilities[present.isin(types).to_numpy()].reset_index(drop=True)
    return frame, types


def _build_instance(
    study: Study,
    drive_net: WalkNetwork,
    candidates: gpd.GeoDataFrame,
    dest_frame: gpd.GeoDataFrame,
    dest_types: list[str],
    groups: pd.DataFrame | None,
    params: ShuttleParams,
) -> tuple[ShuttleInstance, list[str], ReachEngine]:
    walk_engine: ReachEngine = study.engine
    origin_groups = study.origins["group"].to_numpy(dtype=np.int64)
    n = len(study.communities)
    walk_engine.add_layer(STOP_LAYER, candidates)
    walk_engine.add_layer("shuttle_destinations", dest_frame)
    dest_type = dest_frame["type"].astype(str).to_numpy()
    # walking: home -> candidate, candidate -> nearest destination of each type, home -> type
    # no walk longer than the whole target can be part of a trip
    reach_m = params.target_min * params.walk_speed_m_per_min
    access = np.full((n, len(candidates)), np.inf)
    pairs = walk_engine.within(STOP_LAYER, ORIGIN_LAYER, reach_m, groups=origin_groups)
    access[pairs["target"].to_numpy(), pairs["source"].to_numpy()] = pairs["distance_m"].to_numpy()
    egress = np.column_stack(
        [
            walk_engine.nearest(
                "shuttle_destinations", STOP_LAYER, source_index=np.flatnonzero(dest_type == t)
            )
            for t in dest_types
        ]
    )
    direct = np.column_stack(
        [
            walk_engine.nearest(
                "shuttle_destinations",
                ORIGIN_LAYER,
                source_index=np.flatnonzero(dest_type == t),
                groups=origin_groups,
                n_groups=n,
            )
            for t in dest_types
        ]
    )
    # the stop at each destination: the candidate nearest to it on foot
    to_dest = walk_engine.within("shuttle_destinations", STOP_LAYER, reach_m)
    nearest = to_dest.sort_values("distance_m").drop_duplicates("source")
    dest_stop = np.full(len(dest_frame), -1, dtype=np.int64)
    dest_stop[nearest["source"].to_numpy()] = nearest["target"].to_numpy()
    # driving between candidates
    drive_engine = ReachEngine(drive_net, max_snap_m=study.max_snap_m)
    snaps = drive_engine.add_layer(STOP_LAYER, candidates)
    nodes = drive_engine.nodes(STOP_LAYER)
    drive = np.full((len(candidates), len(candidates)), np.inf)
    routed = np.flatnonzero(nodes >= 0)
    if routed.size:
        dist = dijkstra(drive_engine.graph.csr, directed=True, indices=nodes[routed])
        drive[np.ix_(routed, routed)] = dist[:, nodes[routed]]
    del snaps
    pops = groups if groups is not None else group_populations(study.communities)
    weights = np.asarray(
        pops[group_column("age_60plus")].astype("Float64").fillna(0), dtype=np.float64
    )
    notes = _unreachable_destinations(dest_frame, dest_types, dest_stop, egress, params)
    usable = dest_stop >= 0
    instance = ShuttleInstance(
        access_m=access,
        egress_m=egress,
        drive_m=drive,
        direct_m=direct,
        weights=weights,
        fixed=np.unique(dest_stop[usable]),
    )
    return instance, notes, drive_engine


def _unreachable_destinations(
    dest_frame: gpd.GeoDataFrame,
    dest_types: list[str],
    dest_stop: NDArray[np.int64],
    egress: NDArray[np.float64],
    params: ShuttleParams,
) -> list[str]:
    """Notes on destinations no stop reaches; raise when no type is reachable at all."""
    types = dest_frame["type"].astype(str).to_numpy()
    names = (
        dest_frame["name"].astype(str).to_numpy()
        if "name" in dest_frame
        else dest_frame.index.astype(str).to_numpy()
    )
    notes = []
    lost = [names[i] for i in np.flatnonzero(dest_stop < 0)]
    if lost:
        notes.append(
            f"{len(lost)} destination(s) unreachable by road (not on the main walking network "
            f"or no drivable street within {params.target_min:g} minutes' walk): " + ", ".join(lost)
        )
    dead = [
        t
        for c, t in enumerate(dest_types)
        if not np.isfinite(egress[:, c]).any() or not (dest_stop[types == t] >= 0).any()
    ]
    if dead == dest_types:
        raise MissingDataError(
            "destinations unreachable by road: no stop on a drivable street within "
            f"{params.target_min:g} minutes' walk of any destination ({', '.join(dest_types)})"
        )
    for type_id in dead:
        notes.append(f"no {type_id} is reachable by road: the shuttle cannot serve it")
    for note in notes:
        logger.warning(note)
    return notes


def _minutes_clock(start: str) -> float:
    try:
        hours, minutes = start.split(":")
        return int(hours) * 60 + int(minutes)
    except ValueError:
        raise InputError(f"service hours must be HH:MM, not {start!r}") from None


def _clock(minutes: float) -> str:
    total = round(minutes)
    return f"{total // 60 % 24:02d}:{total % 60:02d}"


def _assemble(
    study: Study,
    drive_net: WalkNetwork,
    drive_engine: ReachEngine,
    candidates: gpd.GeoDataFrame,
    instance: ShuttleInstance,
    loops: list[list[int]],
    dest_types: list[str],
    best: NDArray[np.float64],
    params: ShuttleParams,
    k: int,
    method: str,
    service_hours: tuple[str, str],
) -> ShuttlePlan:
    order = list(dict.fromkeys(s for loop in loops for s in loop))
    stop_id = {s: f"S{i + 1:02d}" for i, s in enumerate(order)}
    stop_frames, routes, tables, cycles, vehicles = [], [], [], [], 0
    for number, loop in enumerate(loops, start=1):
        stops = np.asarray(loop, dtype=np.int64)
        m = stops.size
        legs_m = instance.drive_m[stops, np.roll(stops, -1)] if m >= 2 else np.zeros(m)
        legs_min = legs_m / params.vehicle_m_per_min
        # arrival at each stop after leaving the first: legs plus dwells at the stops between
        arrive = (
            np.concatenate([[0.0], np.cumsum(legs_min)[:-1] + params.dwell_min * np.arange(m - 1)])
            if m
            else np.zeros(0)
        )
        cycle = float(legs_min.sum() + params.dwell_min * m)  # back at the first stop
        ids = [stop_id[int(s)] for s in stops]
        frame = _stops_frame(instance, candidates, stops, ids, arrive, dest_types, params)
        frame.insert(0, "line", number)
        stop_frames.append(frame)
        route = _route_legs(drive_engine, stops, ids, legs_m, legs_min, drive_net)
        route.insert(0, "line", number)
        routes.append(route)
        table = _timetable(ids, arrive, cycle, params, service_hours)
        table.insert(0, "line", number)
        tables.append(table)
        cycles.append(cycle)
        vehicles += max(1, math.ceil(cycle / params.headway_min)) if m >= 2 else 0
    reach, compounds = _reach_tables(study, instance, best, dest_types, params)
    notes = [
        f"{vehicles} vehicle(s) keep a {params.headway_min:g}-minute headway on "
        + ", ".join(f"a {c:.1f}-minute loop" for c in cycles),
        "one-way streets are not modelled; check the route against turning rules",
    ]
    all_stops = np.asarray(order, dtype=np.int64)
    unrouted = int(np.isinf(instance.drive_m[np.ix_(all_stops, all_stops)]).sum()) if order else 0
    if unrouted:
        notes.append(f"{unrouted} stop pair(s) are not connected by drivable streets")
    return ShuttlePlan(
        stops=gpd.GeoDataFrame(pd.concat(stop_frames, ignore_index=True), crs=4326),
        route=gpd.GeoDataFrame(pd.concat(routes, ignore_index=True), crs=4326),
        timetable=pd.concat(tables, ignore_index=True),
        reach=reach,
        compounds=compounds,
        params=params,
        destination_types=dest_types,
        k=k,
        cycle_min=max(cycles) if cycles else 0.0,
        vehicles=vehicles,
        method=method,
        notes=notes,
        lines=len(loops),
    )


def _stops_frame(
    instance: ShuttleInstance,
    candidates: gpd.GeoDataFrame,
    stops: NDArray[np.int64],
    ids: list[str],
    arrive: NDArray[np.float64],
    dest_types: list[str],
    params: ShuttleParams,
) -> gpd.GeoDataFrame:
    fixed = set(instance.fixed.tolist())
    walk = params.max_access_walk_m
    near = [
        ";".join(t for c, t in enumerate(dest_types) if instance.egress_m[s, c] <= walk)
        for s in stops
    ]
    in_walk = [float(instance.weights[instance.access_m[:, s] <= walk].sum()) for s in stops]
    return gpd.GeoDataFrame(
        {
            "stop_id": ids,
            "seq": np.arange(1, stops.size + 1),
            "kind": ["destination" if s in fixed else "boarding" for s in stops],
            "near": near,
            "residents_60plus_in_walk": np.round(in_walk, 0),
            "arrive_min": np.round(arrive, 1),
        },
        geometry=candidates.geometry.to_numpy()[stops] if stops.size else [],
        crs=candidates.crs,
    ).to_crs(4326)


def _route_legs(
    engine: ReachEngine,
    stops: NDArray[np.int64],
    stop_ids: list[str],
    legs_m: NDArray[np.float64],
    legs_min: NDArray[np.float64],
    drive_net: WalkNetwork,
) -> gpd.GeoDataFrame:
    m = stops.size
    nodes = engine.nodes(STOP_LAYER)[stops]
    graph = engine.graph
    lines = []
    if m >= 2:
        _, pred = dijkstra(graph.csr, directed=True, indices=nodes, return_predecessors=True)
        for j in range(m):
            lines.append(_path_line(pred[j], nodes[j], nodes[(j + 1) % m], graph.node_xy))
    frame = gpd.GeoDataFrame(
        {
            "leg": np.arange(1, len(lines) + 1),
            "from_stop": stop_ids[: len(lines)],
            "to_stop": [stop_ids[(j + 1) % m] for j in range(len(lines))],
            "length_m": np.round(legs_m[: len(lines)], 1),
            "drive_min": np.round(legs_min[: len(lines)], 2),
        },
        geometry=lines,
        crs=drive_net.crs,
    )
    return frame.to_crs(4326)


def _path_line(
    pred: NDArray[np.int32], start: int, end: int, node_xy: NDArray[np.float64]
) -> shapely.LineString:
    path = [int(end)]
    while path[-1] != start and pred[path[-1]] >= 0:
        path.append(int(pred[path[-1]]))
    path.reverse()
    coords = node_xy[path]
    if coords.shape[0] < 2:
        coords = np.vstack([coords, coords])
    return shapely.LineString(coords)


def _timetable(
    stop_ids: list[str],
    arrive: NDArray[np.float64],
    cycle: float,
    params: ShuttleParams,
    service_hours: tuple[str, str],
) -> pd.DataFrame:
    first, last = (_minutes_clock(t) for t in service_hours)
    if last < first:
        raise InputError(f"service hours end before they start: {service_hours}")
    departures = np.arange(first, last + 1e-9, params.headway_min)
    rows = [
        {
            "trip": trip + 1,
            "seq": seq + 1,
            "stop_id": stop_id,
            "arrive": _clock(start + arrive[seq]),
            "depart": _clock(start + arrive[seq] + (params.dwell_min if seq else 0.0)),
        }
        for trip, start in enumerate(departures)
        for seq, stop_id in enumerate(stop_ids)
    ]
    if stop_ids:  # the loop closes at its first stop
        for trip, start in enumerate(departures):
            rows.append(
                {
                    "trip": trip + 1,
                    "seq": len(stop_ids) + 1,
                    "stop_id": stop_ids[0],
                    "arrive": _clock(start + cycle - params.dwell_min),
                    "depart": "",
                }
            )
    frame = pd.DataFrame(rows, columns=["trip", "seq", "stop_id", "arrive", "depart"])
    return frame.sort_values(["trip", "seq"], ignore_index=True)


def _reach_tables(
    study: Study,
    instance: ShuttleInstance,
    best: NDArray[np.float64],
    dest_types: list[str],
    params: ShuttleParams,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    walk_min = instance.direct_m / params.walk_speed_m_per_min
    target = params.target_min + 1e-9
    weights = instance.weights
    total = float(weights.sum())
    rows = []
    compounds = pd.DataFrame(
        {
            "community_id": study.communities["community_id"].astype(str).to_numpy(),
            "name": study.communities["name"].to_numpy() if "name" in study.communities else None,
            group_column("age_60plus"): weights,
        }
    )
    for column, type_id in enumerate(dest_types):
        walked = walk_min[:, column] <= target
        reached = best[:, column] <= target
        rows.append(
            {
                "type": type_id,
                "residents_60plus": round(total),
                "walk_only": round(float(weights[walked].sum())),
                "with_shuttle": round(float(weights[reached].sum())),
                "walk_only_share": round(float(weights[walked].sum()) / total, 4)
                if total
                else None,
                "with_shuttle_share": round(float(weights[reached].sum()) / total, 4)
                if total
                else None,
            }
        )
        compounds[f"{type_id}_walk_min"] = np.round(
            np.where(np.isfinite(walk_min[:, column]), walk_min[:, column], np.nan), 1
        )
        compounds[f"{type_id}_trip_min"] = np.round(
            np.where(np.isfinite(best[:, column]), best[:, column], np.nan), 1
        )
        compounds[f"{type_id}_reached"] = reached
    return pd.DataFrame(rows), compounds


def write_shuttle_outputs(
    plan: ShuttlePlan, out_dir: str | Path, *, inputs: Sequence[str | Path] = ()
) -> list[Path]:
    """Write ``shuttle.gpkg`` (layers ``stops``, ``route``), the timetable CSV,
    the reach CSV and ``shuttle.json``, each atomically.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    out = Path(out_dir)
    targets = [out / name for name in SHUTTLE_OUTPUT_NAMES]
    refuse_to_overwrite(targets, inputs)
    out.mkdir(parents=True, exist_ok=True)
    write_layers({"stops": plan.stops, "route": plan.route}, targets[0])
    write_table(plan.timetable, targets[1])
    write_table(plan.reach, targets[2])
    write_json(plan.summary(), targets[3])
    return targets


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value
