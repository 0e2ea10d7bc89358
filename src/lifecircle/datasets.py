"""The synthetic demo study area shipped with lifecircle.

The demo is an invented, dense Chinese urban subdistrict of about 3.6 km² near
lon 120.66, lat 28.01 (so the GCJ-02 shift of Amap coordinates is real, about
540 m). It is **not a real place**: every road, compound and facility name is
made up and starts with 示例 ("example"). The files were generated from fixed
seeds by ``scripts/make_demo_data.py`` (development only) and ship inside the
package.

What it contains (all in WGS84 except the POI table, which is an Amap export in
GCJ-02):

* ``synthetic_streets.geojson`` - street centre-lines split at every junction
  (``way_id``, ``highway``, ``name``, ``bridge``). A river crosses the area and
  only three bridges cross it.
* ``synthetic_river.geojson``, ``synthetic_boundary.geojson`` - polygons.
* ``synthetic_compounds.geojson`` - gated residential compounds (小区) with
  ``community_id``, ``name``, ``households``, ``built_year``.
* ``synthetic_gates.csv`` - compound gates (``gate_id``, ``community_id``,
  ``lng``, ``lat``).
* ``synthetic_pois_amap_gcj02.csv`` - an Amap (高德) POI export, UTF-8 with BOM.
* ``synthetic_capacity.csv`` - kindergarten seats and nursing-home beds.
* ``synthetic_districts.geojson`` - six 社区 (residents' committee areas) for
  the facility one-map.

Examples
--------
>>> demo = demo_data()
>>> demo.crs_pois, demo.pois.name
('gcj02', 'synthetic_pois_amap_gcj02.csv')
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import MissingDataError

__all__ = ["DEMO_FILES", "DemoData", "demo_data"]

DEMO_PACKAGE = "lifecircle.demo"
DEMO_DESCRIPTION = (
    "Synthetic demo study area (not a real place): an invented dense urban subdistrict "
    "of about 3.6 km² near lon 120.66, lat 28.01 in the style of a Wenzhou subdistrict "
    "plan, with a street network crossed by a river with three bridges, 66 gated "
    "residential compounds (about 30,000 households), their gates, and an Amap-style POI "
    "export in GCJ-02 with deliberate service gaps. All names are invented and start "
    "with 示例; generated deterministically by scripts/make_demo_data.py; CC0."
)


@dataclass(frozen=True)
class DemoData:
    """Paths of the synthetic demo files.

    Attributes
    ----------
    streets, pois, compounds, gates, boundary, river, capacity, districts
        Paths of the GeoJSON and CSV files (see the module docstring).
    crs_pois
        Coordinate system of the POI table (Amap exports are GCJ-02).
    description
        One paragraph saying what the demo is; it is synthetic.
    """

    streets: Path
    pois: Path
    compounds: Path
    gates: Path
    boundary: Path
    river: Path
    capacity: Path
    districts: Path
    crs_pois: str = "gcj02"
    description: str = DEMO_DESCRIPTION


DEMO_FILES: dict[str, str] = {
    "streets": "synthetic_streets.geojson",
    "pois": "synthetic_pois_amap_gcj02.csv",
    "compounds": "synthetic_compounds.geojson",
    "gates": "synthetic_gates.csv",
    "boundary": "synthetic_boundary.geojson",
    "river": "synthetic_river.geojson",
    "capacity": "synthetic_capacity.csv",
    "districts": "synthetic_districts.geojson",
}
README_NAME = "README.md"


def demo_data() -> DemoData:
    """Return the paths of the demo files shipped inside the package.

    The files live in the repository's ``data/demo`` and are installed as the
    package ``lifecircle.demo``; they are read in place, and nothing is
    written anywhere.

    Returns
    -------
    DemoData
        Paths of the seven files.
    """
    try:
        root = resources.files(DEMO_PACKAGE)
    except ModuleNotFoundError:
        raise MissingDataError(
            "the demo files are not installed (package lifecircle.demo); reinstall lifecircle"
        ) from None
    paths = {key: Path(str(root.joinpath(name))) for key, name in DEMO_FILES.items()}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        raise MissingDataError(
            f"demo files missing from the installed package: {', '.join(missing)}; "
            "reinstall lifecircle"
        )
    return DemoData(
        streets=paths["streets"],
        pois=paths["pois"],
        compounds=paths["compounds"],
        gates=paths["gates"],
        boundary=paths["boundary"],
        river=paths["river"],
        capacity=paths["capacity"],
        districts=paths["districts"],
    )
