"""A compound typed 1,300 km away: named as an outlier, and the run stays small."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import shapely

from lifecircle.datasets import demo_data

DEMO = demo_data()

# run in a child with its address space capped, so that a grid spanning the
# outlier would fail the test instead of filling the machine
_CHILD = """
import resource, sys
limit = 3 * 1024**3
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from lifecircle.cli import main
sys.argv = ["lifecircle", *sys.argv[1:]]
main()
"""


def test_an_outlier_compound_is_named_and_costs_no_memory(tmp_path: Path) -> None:
    compounds = gpd.read_file(DEMO.compounds)
    # C005 typed with the longitude of 13 degrees further west: about 1,300 km away
    moved = compounds["community_id"] == "C005"
    compounds.loc[moved, "geometry"] = compounds.loc[moved, "geometry"].map(
        lambda g: shapely.affinity.translate(g, xoff=-13.0)
    )
    path = tmp_path / "compounds.geojson"
    compounds.to_file(path)
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            "score",
            "--network",
            str(DEMO.streets),
            "--facilities",
            str(DEMO.pois),
            "--facilities-crs",
            "gcj02",
            "--communities",
            str(path),
            "--out",
            str(out),
            "--no-isochrones",
            "--no-robustness",
            "--no-maps",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    warning = next(w for w in summary["warnings"] if "from the street network" in w)
    assert "C005" in warning and "km" in warning and "check their lon/lat" in warning
    cells = gpd.read_file(out / "gaps.gpkg", layer="cells")
    assert len(cells) < 600  # the compounds' neighbourhoods, not a 1,300 km hull
