"""A study: one area, its network, facilities, compounds and a standard.

:class:`Study` is the small public workflow behind the command line and the
notebooks. It takes loaded GeoDataFrames (or loads files with
:meth:`Study.from_files`), snaps everything to the walk network once, and
answers the questions of a life-circle study, each as a GeoDataFrame:

>>> from lifecircle import Study, demo_data
>>> d = demo_data()
>>> study = Study.from_files(d.streets, d.pois, d.compounds, gates=d.gates,
...                          facilities_crs="gcj02", standard="puxieshi-2021", progress=False)
>>> scores = study.score()
>>> len(scores), bool(scores["tier_15min_pass"].any())
(66, True)
>>> cells, gaps = study.gaps(cell_m=100)
>>> gaps.groupby("item")["population"].sum().idxmax()  # the largest blind zone
'elderly_care'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .access import two_step_fca
from .engine import ReachEngine
from .errors import InputError, MissingDataError
from .gaps import dissolve_gaps, grid_cells, score_cells, study_area
from .isochrones import DEFAULT_BUFFER_M, DEFAULT_MINUTES, isochrones
from .loading import LoadReport
from .network import WalkNetwork, load_network
from .options import DEMO_STANDARD, Inputs, Options
from .scoring import (
    FACILITY_LAYER,
    ORIGIN_LAYER,
    missing_items,
    score_communities,
    score_items,
    summarise,
)
from .standards import Standard, load_standard

logger = logging.getLogger(__name__)

# a compound this many snap limits from any street is taken for a coordinate error
OUTLIER_FACTOR = 10

__all__ = ["Study", "resolve_target"]


class Study:
    """A life-circle study of one area.

    Parameters
    ----------
    network
        A :class:`~lifecircle.network.WalkNetwork`, or a path for
        :func:`~lifecircle.network.load_network`.
    facilities
        Facilities with ``facility_id``, ``type`` and point geometries.
    communities
        Compounds with ``community_id``, ``name``, ``population`` and point or
        polygon geometries.
    options
        The study's :class:`~lifecircle.options.Options` (defaults when
        omitted). The keyword arguments below override single options.
    standard
        A :class:`~lifecircle.standards.Standard` or the name/path of a
        profile (default: ``options.standard``, ``gb50180-2018``).
    gates
        Optional compound gates (``community_id`` and points). Compounds
        without gates walk from their inside point.
    boundary
        Optional study-area polygon(s), for the gap grid.
    walk_speed
        Metres per minute; overrides the standard's.
    threshold_rule
        ``"metres"`` or ``"minutes"``: which of a threshold's figures rules
        when a standard gives both; overrides the standard's.
    max_snap_m
        Points farther than this from a walkable street are not routed.
    progress
        Show progress bars on long steps.
    districts
        Optional 社区 (residents' committee) polygons, for the one-map.
    census_shares
        Age-group shares of the district (default: the 2020 census bulletin).
    """

    def __init__(
        self,
        network: WalkNetwork | str | Path,
        facilities: gpd.GeoDataFrame,
        communities: gpd.GeoDataFrame,
        *,
        options: Options | None = None,
        standard: Standard | str | Path | None = None,
        gates: gpd.GeoDataFrame | None = None,
        boundary: gpd.GeoDataFrame | None = None,
        walk_speed: float | None = None,
        threshold_rule: str | None = None,
        max_snap_m: float | None = None,
        progress: bool | None = None,
        districts: gpd.GeoDataFrame | None = None,
        census_shares: Any = None,
    ) -> None:
        self.network = network if isinstance(network, WalkNetwork) else load_network(network)
        options = (options or Options()).replace(
            standard=None if isinstance(standard, Standard) else standard,
            walk_speed=walk_speed,
            threshold_rule=threshold_rule,
            max_snap_m=max_snap_m,
            progress=progress,
        )
        if not isinstance(standard, Standard):
            standard = load_standard(options.standard)
        else:
            options = options.replace(standard=standard.id)
        if options.walk_speed or options.threshold_rule:
            standard = standard.with_overrides(
                walk_speed=options.walk_speed, threshold_rule=options.threshold_rule
            )
        self.options = options
        self.standard = standard
        _require_columns(facilities, ("facility_id", "type"), "facilities")
        _require_columns(communities, ("community_id",), "communities")
        if communities.empty:
            raise MissingDataError("no residential compounds to score")
        self.facilities = _one_row_per_type(facilities)
        self.communities = communities.reset_index(drop=True)
        if "population" not in self.communities:
            self.communities["population"] = np.nan
        if gates is not None:
            _require_columns(gates, ("community_id",), "gates")
            gates = gates.reset_index(drop=True)
        self.gates = gates
        self.boundary = boundary
        self.max_snap_m = options.max_snap_m
        self.progress = options.progress
        self.districts = districts
        self.census_shares = census_shares
        # water polygons, drawn as map context when no basemap tiles load
        self.water: gpd.GeoDataFrame | None = None
        self.load_reports: list[LoadReport] = []
        self.warnings: list[str] = []
        self.inputs: dict[str, str] = {}

    # ------------------------------------------------------------ loading
    @classmethod
    def from_demo(
        cls,
        standard: Standard | str | Path | None = None,
        *,
        options: Options | None = None,
        progress: bool | None = None,
    ) -> Study:
        """The study of the embedded SYNTHETIC demo area (not a real place).

        Streets, Amap-style POIs in GCJ-02 with capacities, compounds with
        their gates, and the boundary: the inputs ``lifecircle demo`` uses.

        Examples
        --------
        >>> study = Study.from_demo()
        >>> len(study.communities), study.standard.id
        (66, 'puxieshi-2021')
        """
        from .datasets import demo_data

        data = demo_data()
        options = (options or Options(standard=DEMO_STANDARD, progress=False)).replace(
            facilities_crs=data.crs_pois, progress=progress
        )
        study = cls.from_files(
            data.streets,
            data.pois,
            data.compounds,
            gates=data.gates,
            boundary=data.boundary,
            capacity=data.capacity,
            districts=data.districts,
            options=options,
            standard=standard,
        )
        study.water = gpd.read_file(data.river)
        return study

    @classmethod
    def from_inputs(cls, inputs: Inputs, options: Options | None = None) -> Study:
        """Load the files of :class:`~lifecircle.options.Inputs` with ``options``."""
        return cls.from_files(
            inputs.network,
            list(inputs.facilities),
            inputs.communities,
            gates=inputs.gates,
            boundary=inputs.boundary,
            capacity=inputs.capacity,
            districts=inputs.districts,
            options=options,
            taxonomy=_taxonomy_with(inputs.taxonomy_overrides),
        )

    @classmethod
    def from_files(
        cls,
        network: str | Path,
        facilities: str | Path | Sequence[str | Path],
        communities: str | Path,
        *,
        gates: str | Path | None = None,
        boundary: str | Path | None = None,
        capacity: str | Path | None = None,
        districts: str | Path | None = None,
        options: Options | None = None,
        crs: str | None = None,
        facilities_crs: str | None = None,
        communities_crs: str | None = None,
        gates_crs: str | None = None,
        standard: Standard | str | Path | None = None,
        walk_speed: float | None = None,
        threshold_rule: str | None = None,
        max_snap_m: float | None = None,
        progress: bool | None = None,
        taxonomy: Any = None,
    ) -> Study:
        """Load every input file and build a study.

        ``crs`` is the coordinate system of the facility, compound and gate
        files (``wgs84``, ``gcj02``, ``bd09``, ``EPSG:n`` or ``auto``);
        ``facilities_crs``, ``communities_crs`` and ``gates_crs`` override it
        per file. Every layer is checked against the streets under each
        reading (see :func:`lifecircle.loading.load_layers`): ``auto`` picks
        the best fit, and a declared system that another clearly beats gives
        a warning in :attr:`warnings` naming the option to pass.
        """
        from .loading import load_layers

        options = (options or Options()).replace(
            crs=crs,
            facilities_crs=facilities_crs,
            communities_crs=communities_crs,
            gates_crs=gates_crs,
            standard=None if isinstance(standard, Standard) else standard,
            walk_speed=walk_speed,
            threshold_rule=threshold_rule,
            max_snap_m=max_snap_m,
            progress=progress,
        )
        if not isinstance(standard, Standard):
            standard = load_standard(options.standard)  # a bad profile fails before any reading
        layers = load_layers(
            network,
            facilities,
            communities,
            gates=gates,
            boundary=boundary,
            capacity=capacity,
            districts=districts,
            options=options,
            taxonomy=taxonomy,
        )
        study = cls(
            layers.network,
            layers.facilities,
            layers.communities,
            options=options,
            standard=standard,
            gates=layers.gates,
            boundary=layers.boundary,
            districts=layers.districts,
        )
        study.load_reports = layers.reports
        study.inputs = layers.inputs
        study.warnings += layers.warnings
        study.__dict__["_datum_fits"] = layers.datum_fits
        return study

    def map(self, **options: Any) -> Any:
        """The interactive map, self-contained, shown inline in Jupyter.

        Keyword arguments go to :func:`lifecircle.maps.notebook_map`
        (``height``, ``max_isochrone_compounds``...); the language and the
        basemap default to the study's options.
        """
        from .maps import notebook_map

        options.setdefault("lang", self.options.lang)
        options.setdefault("basemap", self.options.basemap)
        return notebook_map(self, **options)

    def resolve_target(self, name: str) -> str:
        """A type or category id from its id or its Chinese or English name."""
        return resolve_target(self.standard, name)

    # ------------------------------------------------------------ routing
    @cached_property
    def origins(self) -> gpd.GeoDataFrame:
        """Where residents start walking: gates, or a compound's inside point.

        Columns ``community_id``, ``origin`` (``gate`` or ``inside_point``),
        ``group`` (position of the compound) and the point.
        """
        position = pd.Series(
            np.arange(len(self.communities)), index=self.communities["community_id"].astype(str)
        )
        parts = []
        with_gates: set[str] = set()
        if self.gates is not None and len(self.gates):
            gate_ids = self.gates["community_id"].astype(str)
            known = gate_ids.isin(position.index)
            gates = self.gates[known.to_numpy()]
            with_gates = set(gate_ids[known])
            parts.append(
                gpd.GeoDataFrame(
                    {
                        "community_id": gate_ids[known].to_numpy(),
                        "origin": "gate",
                        "group": position[gate_ids[known]].to_numpy(),
                    },
                    geometry=gates.geometry.to_numpy(),
                    crs=self.gates.crs,
                )
            )
        ids = self.communities["community_id"].astype(str)
        no_gate = ~ids.isin(with_gates)
        inside = self.communities.geometry[no_gate.to_numpy()].representative_point()
        parts.append(
            gpd.GeoDataFrame(
                {
                    "community_id": ids[no_gate].to_numpy(),
                    "origin": "inside_point",
                    "group": position[ids[no_gate]].to_numpy(),
                },
                geometry=inside.to_numpy(),
                crs=self.communities.crs,
            )
        )
        parts = [p.to_crs(4326) for p in parts]
        return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=4326)

    @cached_property
    def engine(self) -> ReachEngine:
        """The reach engine with facilities and origins snapped."""
        engine = ReachEngine(self.network, max_snap_m=self.max_snap_m)
        engine.add_layer(FACILITY_LAYER, self.facilities)
        engine.add_layer(ORIGIN_LAYER, self.origins)
        _ = engine.graph
        return engine

    @property
    def _groups(self) -> np.ndarray:
        return self.origins["group"].to_numpy(dtype=np.int64)

    def facility_snaps(self) -> pd.DataFrame:
        """Facilities with ``lon``/``lat`` (WGS84), ``snap_status`` and ``snap_m``."""
        snaps = self.engine.snaps(FACILITY_LAYER).to_frame(self.facilities.index)
        columns = [
            c
            for c in ("facility_id", "name", "type", "category", "capacity", "address")
            if c in self.facilities
        ]
        points = self.facilities.geometry.to_crs(4326)
        coords = pd.DataFrame(
            {"lon": points.x.round(7), "lat": points.y.round(7)}, index=self.facilities.index
        )
        return pd.concat([self.facilities[columns], coords, snaps], axis=1)

    def _origin_status(self) -> pd.DataFrame:
        snaps = self.engine.snaps(ORIGIN_LAYER)
        frame = pd.DataFrame(
            {
                "group": self._groups,
                "ok": snaps.ok,
                "status": snaps.status,
                "origin": self.origins["origin"].to_numpy(),
            }
        )
        agg = frame.groupby("group").agg(
            n_origins=("ok", "size"),
            n_routed=("ok", "sum"),
            origin=("origin", "first"),
            statuses=("status", lambda s: ";".join(sorted(set(s)))),
        )
        agg = agg.reindex(range(len(self.communities)))
        status = np.where(agg["n_routed"] > 0, "ok", agg["statuses"])
        return pd.DataFrame(
            {
                "origin": agg["origin"].to_numpy(),
                "n_gates": np.where(agg["origin"] == "gate", agg["n_origins"], 0),
                "n_routed": agg["n_routed"].fillna(0).astype(int).to_numpy(),
                "route_status": status,
            }
        )

    # ------------------------------------------------------------ answers
    def score(self) -> gpd.GeoDataFrame:
        """Score every compound; see :mod:`lifecircle.scoring` for the columns."""
        if "_scores" not in self.__dict__:
            scores = score_communities(
                self.engine,
                self.facilities,
                self.communities,
                self._groups,
                self.standard,
                score_basis=self.options.score_basis,
            )
            status = self._origin_status()
            for column in status:
                scores[column] = status[column].to_numpy()
            supply = self.supply_demand()
            for column in supply:
                scores[column] = supply[column].to_numpy()
            groups = self.group_populations()
            for column in groups.columns:
                scores[column] = groups[column].to_numpy()
            for message in self._unrouted_warnings(status["route_status"]):
                logger.warning(message)
                self.warnings.append(message)
            self.__dict__["_scores"] = scores.to_crs(4326)
        return self.__dict__["_scores"]

    def _unrouted_warnings(self, route_status: pd.Series) -> list[str]:
        """One true warning per layer with points that could not be routed, by reason."""
        reasons = {
            "too_far": f"no walkable street within {self.max_snap_m:g} m",
            "island": (
                f"only a small street piece cut off from the main network within "
                f"{self.max_snap_m:g} m"
            ),
        }
        out = self._outlier_warnings()
        bad = route_status[route_status != "ok"].astype(str)
        if len(bad):
            counts = bad.str.split(";").explode().value_counts()
            text = "; ".join(f"{n} with {reasons.get(k, k)}" for k, n in counts.items())
            out.append(
                f"{len(bad)} compound(s) could not be routed ({text}); they score as missing "
                "everything and are flagged in route_status"
            )
        facility = pd.Series(self.engine.snaps(FACILITY_LAYER).status)
        counts = facility[facility != "ok"].value_counts()
        if len(counts):
            text = "; ".join(f"{n} with {reasons.get(k, k)}" for k, n in counts.items())
            out.append(
                f"{int(counts.sum())} facilities could not be routed ({text}); they count for no "
                "compound and are listed with their snap_status in facilities.csv"
            )
        return out

    def _outlier_warnings(self) -> list[str]:
        """Compounds far beyond the streets: almost always a typing error in lon/lat.

        They stay in the tables (unrouted, scoring as missing everything) but are
        named here; the gap grid covers only the neighbourhoods of compounds, so
        they cost no memory.
        """
        far_m = OUTLIER_FACTOR * self.max_snap_m
        distance = pd.Series(self.engine.snaps(ORIGIN_LAYER).main_m).groupby(self._groups).min()
        far = distance[distance > far_m]
        if far.empty:
            return []
        names = self.communities.get("name", None)
        listed = [
            f"{self.communities['community_id'].iloc[g]}"
            + (f" {names.iloc[g]}" if names is not None and pd.notna(names.iloc[g]) else "")
            + f" ({metres / 1000:,.1f} km)"
            for g, metres in far.sort_values(ascending=False).head(5).items()
        ]
        more = f" and {len(far) - 5} more" if len(far) > 5 else ""
        return [
            f"{len(far)} compound(s) lie more than {far_m / 1000:g} km from the street network, "
            f"almost always a typing error in their coordinates: {', '.join(listed)}{more}; "
            "they are not routed and score as missing everything: check their lon/lat and crs"
        ]

    def supply_demand(self) -> pd.DataFrame:
        """Capacity-aware 2SFCA supply per compound; demand counts each item's age group."""
        population = self.communities["population"].to_numpy(dtype=float)
        return two_step_fca(
            self.engine,
            self.facilities,
            population,
            self._groups,
            self.standard,
            group_pops=self.group_populations(),
        )

    def group_populations(self) -> pd.DataFrame:
        """Residents of every age group per compound (whole people).

        From the compounds' own age columns where given (``pop_60plus``,
        ``60岁及以上``...), else from the district shares (default: China's
        2020 census bulletin; see :mod:`lifecircle.census`).
        """
        if "_groups_pop" not in self.__dict__:
            from .census import group_populations

            self.__dict__["_groups_pop"] = group_populations(self.communities, self.census_shares)
        return self.__dict__["_groups_pop"]

    def coverage_by_group(self) -> dict[str, Any]:
        """Coverage of each item weighted by the residents it serves (e.g. 60+ for elderly care)."""
        from .census import coverage_by_group_summary

        return coverage_by_group_summary(
            self.score(), self.standard, self.group_populations(), self.census_shares
        )

    def onemap(self) -> Any:
        """The facility one-map (一张图): every facility by category and type, per 社区."""
        if "_onemap" not in self.__dict__:
            from .onemap import onemap

            self.__dict__["_onemap"] = onemap(
                self.facilities,
                self.score(),
                self.standard,
                self.districts,
                column=self.options.district_column,
                groups=self.group_populations(),
                shares=self.census_shares,
            )
        return self.__dict__["_onemap"]

    def missing(self) -> pd.DataFrame:
        """Unmet items per compound, with clause and source."""
        return missing_items(self.score(), self.standard)

    def summary(self) -> dict[str, Any]:
        """Coverage, worst-served compounds, completeness, parameters and provenance."""
        scores = self.score()
        facilities = self.facility_snaps()
        results = summarise(scores, self.standard)
        checks = self.data_checks()
        return {
            "title": "lifecircle study summary",
            "standard": {
                "id": self.standard.id,
                "title": self.standard.title,
                "title_zh": self.standard.title_zh,
                "version": self.standard.version,
            },
            "parameters": {
                "walk_speed_m_per_min": self.standard.walk_speed_m_per_min,
                "walk_speed_status": self.standard.walk_speed_status,
                "threshold_rule": self.standard.threshold_rule,
                "max_snap_m": self.max_snap_m,
            },
            "inputs": self.inputs,
            "network": self.network.report.to_dict(),
            "loading": [r.to_dict() for r in self.load_reports],
            "facilities_by_type": facilities["type"].value_counts().sort_index().to_dict(),
            "facilities_not_routed": int((facilities["snap_status"] != "ok").sum()),
            "compounds_not_routed": int((scores["route_status"] != "ok").sum()),
            "results": results,
            "data_checks": checks,
            "options": self.options.to_dict(),
            "provenance": self.standard.to_dict(),
            "warnings": [*self.warnings, *checks["warnings"]],
            "attribution": self.attribution(),
        }

    def data_checks(self) -> dict[str, Any]:
        """What the data can and cannot tell, to show beside every verdict.

        ``types_without_data``: types the standard scores of which the inputs
        hold no facility at all (their items are ``no_data``, not missing);
        ``scarce_types``: types with implausibly few facilities for the area
        (fewer than an eighth of what it takes to cover it at the type's
        threshold), which may be a gap in the data too; ``unrouted``: points
        that could not be routed, by layer and reason; ``datum``: how each
        layer fits the streets under each coordinate reading (when checked);
        ``street_filter``: the ways the walkable filter excluded, by rule.
        """
        if "_data_checks" in self.__dict__:
            return self.__dict__["_data_checks"]
        types = self.facilities["type"].astype(str)
        counts = types.value_counts()
        scored = list(self.standard.scored_types())
        without = [t for t in scored if counts.get(t, 0) == 0]
        area_m2 = float(shapely.area(self.study_area()))
        scarce = []
        for type_id in scored:
            have = int(counts.get(type_id, 0))
            radius = self.standard.type_threshold_m(type_id)
            if not have or not radius:
                continue
            # facilities needed to cover the area if each served a full disc of its radius
            needed = area_m2 / (np.pi * float(radius) ** 2)
            if have < needed / 8:
                scarce.append(
                    {"type": type_id, "facilities": have, "needed_at_least": round(needed, 1)}
                )
        warnings = []
        no_data = [i for i in str(self.score()["no_data"].iloc[0] or "").split(";") if i]
        if no_data:
            warnings.append(
                f"{len(no_data)} item(s) of the standard have no facility at all in the data "
                f"({', '.join(no_data)}): they are no_data, not gaps; check the inputs, or add "
                "the facilities if they exist"
            )
        for entry in scarce:
            warnings.append(
                f"only {entry['facilities']} {entry['type']} in the data for an area that needs "
                f"at least {entry['needed_at_least']:g} to be covered at the type's radius: "
                "check that the inputs hold them all"
            )
        # an absent type whose category has other members with data leaves no item
        # without data: the category is judged on those members, and it is shown here
        judged_on_others = [t for t in without if t not in no_data]
        checks = {
            "types_without_data": without,
            "absent_types_in_categories_with_data": judged_on_others,
            "scarce_types": scarce,
            "unrouted": self.unrouted_summary(),
            "datum": [fit for fit in self.__dict__.get("_datum_fits", [])],
            "street_filter": dict(getattr(self.network.report, "excluded_by_rule", {}) or {}),
            "warnings": warnings,
        }
        self.__dict__["_data_checks"] = checks
        return checks

    def unrouted_summary(self) -> dict[str, dict[str, int]]:
        """Points that could not be routed, counted by layer and reason."""
        out: dict[str, dict[str, int]] = {}
        for layer, name in ((FACILITY_LAYER, "facilities"), (ORIGIN_LAYER, "origins")):
            status = pd.Series(self.engine.snaps(layer).status)
            bad = status[status != "ok"].value_counts()
            out[name] = {str(k): int(v) for k, v in bad.items()}
        return out

    def attribution(self) -> list[str]:
        """Licence notes for the data used (OpenStreetMap data is ODbL)."""
        notes = []
        sources = " ".join(self.inputs.values()).lower()
        if any(s in sources for s in (".osm", ".pbf", ".graphml")):
            notes.append("Street and/or POI data © OpenStreetMap contributors, ODbL 1.0")
        if "synthetic" in sources:
            notes.append("Synthetic demo data generated by lifecircle (CC0); not a real place")
        return notes

    def isochrones(
        self,
        minutes: Sequence[float] = DEFAULT_MINUTES,
        *,
        buffer_m: float = DEFAULT_BUFFER_M,
    ) -> gpd.GeoDataFrame:
        """Walking isochrones of every compound (from its gates)."""
        if "_isochrones" not in self.__dict__ or self.__dict__["_iso_args"] != (
            tuple(minutes),
            buffer_m,
        ):
            self.__dict__["_isochrones"] = isochrones(
                self.engine,
                ORIGIN_LAYER,
                self.origins["community_id"].to_numpy(),
                minutes=minutes,
                walk_speed=self.standard.walk_speed_m_per_min,
                buffer_m=buffer_m,
                progress=self.progress,
            )
            self.__dict__["_iso_args"] = (tuple(minutes), buffer_m)
        return self.__dict__["_isochrones"]

    def study_area(self) -> shapely.Geometry:
        """The study area in the network's CRS (see :func:`lifecircle.gaps.study_area`).

        Worked out once: the union of a city's compound neighbourhoods takes
        most of a second, and the checks, the gaps and the outputs all ask.
        """
        if "_area" not in self.__dict__:
            self.__dict__["_area"] = study_area(self.communities, self.boundary, self.network.crs)
        return self.__dict__["_area"]

    def area_frame(self) -> gpd.GeoDataFrame:
        """The study area (the boundary, or the compounds' 200 m neighbourhood), WGS84."""
        area = self.study_area()
        source = "boundary" if self.boundary is not None else "compounds + 200 m"
        frame = gpd.GeoDataFrame({"source": [source]}, geometry=[area], crs=self.network.crs)
        return frame.to_crs(4326)

    def gaps(
        self, *, cell_m: float = 100.0, kind: str = "square"
    ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
        """Blind-zone cells and dissolved gap polygons (both in WGS84)."""
        key = (cell_m, kind)
        if self.__dict__.get("_gaps_key") != key:
            crs = self.network.crs
            cells = grid_cells(self.study_area(), crs, cell_m=cell_m, kind=kind)
            items = score_items(self.standard)
            cells = score_cells(
                self.engine,
                cells,
                self.communities,
                self.facilities["type"].to_numpy(),
                items,
                self.standard.walk_speed_m_per_min,
            )
            gaps = dissolve_gaps(cells, items)
            self.__dict__["_gaps"] = (cells.to_crs(4326), gaps.to_crs(4326))
            self.__dict__["_gaps_key"] = key
        return self.__dict__["_gaps"]


def resolve_target(standard: Standard, name: str) -> str:
    """A type or category id from its id or its Chinese or English name.

    ``养老院`` and ``nursing_home`` both give ``nursing_home``; an unknown
    name raises :class:`~lifecircle.errors.InputError` listing the choices.

    Examples
    --------
    >>> from lifecircle.standards import load_standard
    >>> resolve_target(load_standard("gb50180-2018"), "养老院")
    'nursing_home'
    """
    from .taxonomy import default_taxonomy

    text = name.strip()
    names: dict[str, str] = {}
    for category in standard.categories:
        for label in (category.id, category.name_zh, getattr(category, "name_en", "")):
            if label:
                names[str(label).lower()] = category.id
    for ftype in default_taxonomy().types.values():
        for label in (ftype.id, ftype.name_zh, ftype.name_en):
            if label:
                names.setdefault(str(label).lower(), ftype.id)
    if text.lower() in names:
        return names[text.lower()]
    choices = sorted(set(names.values()))
    raise InputError(
        f"unknown facility type or category {name!r}; choose one of " + ", ".join(choices)
    )


def _taxonomy_with(overrides: Path | None) -> Any:
    """The packaged taxonomy, with a planner's overrides when given."""
    if overrides is None:
        return None
    from .taxonomy import default_taxonomy

    return default_taxonomy().with_overrides(overrides)


def _one_row_per_type(facilities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A facility that serves several types (a nine-year school) counts for each of them."""
    if "types" not in facilities.columns:
        return facilities.reset_index(drop=True)
    several = facilities["types"].astype(str).str.contains(";", regex=False)
    if not several.any():
        return facilities.reset_index(drop=True)
    from .taxonomy import explode_types

    exploded = explode_types(facilities.reset_index(drop=True))
    return gpd.GeoDataFrame(exploded, geometry=facilities.geometry.name, crs=facilities.crs)


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{what} lack the column(s) {', '.join(missing)}", column=missing[0])
