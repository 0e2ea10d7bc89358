"""Shared fixtures: small built networks and the paths of shared real data."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from hypothesis import settings
from shapely.geometry import LineString

# No deadlines anywhere: the machine is shared and timings are not what is tested.
settings.register_profile("lifecircle", deadline=None)
settings.load_profile("lifecircle")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
BEIJING_OSM = SHARED / "data" / "osm" / "beijing_wudaokou.osm"
METRIC_CRS = "EPSG:32650"


def run_main(args: list[object]) -> int:
    """Run the ``lifecircle`` command line in this process; its exit code."""
    import sys

    from lifecircle.cli import main

    old = sys.argv
    sys.argv = ["lifecircle", *[str(a) for a in args]]
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = old
    return 0


def grid_lines(
    nx_: int = 6,
    ny: int = 5,
    spacing: float = 100.0,
    *,
    jitter: float = 0.0,
    drop: float = 0.0,
    seed: int = 0,
    crs: str = METRIC_CRS,
) -> gpd.GeoSeries:
    """A street grid as two-point lines, optionally jittered and with streets removed."""
    rng = np.random.default_rng(seed)
    xs, ys = np.meshgrid(np.arange(nx_) * spacing, np.arange(ny) * spacing, indexing="ij")
    xy = np.stack([xs, ys], axis=-1) + rng.uniform(-jitter, jitter, (nx_, ny, 2))
    lines = []
    for i in range(nx_):
        for j in range(ny):
            if i + 1 < nx_:
                lines.append(LineString([xy[i, j], xy[i + 1, j]]))
            if j + 1 < ny:
                lines.append(LineString([xy[i, j], xy[i, j + 1]]))
    keep = rng.uniform(size=len(lines)) >= drop
    return gpd.GeoSeries([g for g, k in zip(lines, keep, strict=True) if k], crs=crs)


@pytest.fixture(scope="session")
def beijing_osm() -> Path:
    """The real Beijing OSM extract from the shared folder (skips when absent)."""
    if not BEIJING_OSM.exists():
        pytest.skip(f"real OSM extract not found at {BEIJING_OSM}")
    return BEIJING_OSM


@pytest.fixture(scope="session")
def demo_outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run of ``lifecircle demo`` (in process), shared by every test that reads it.

    Tests that change files work on a copy (``shutil.copytree``).
    """
    from lifecircle.options import DEMO_STANDARD, Options
    from lifecircle.pipeline import ShuttleRequest, SitingRequest, run_pipeline
    from lifecircle.study import Study

    out = tmp_path_factory.mktemp("demo-outputs")
    options = Options(standard=DEMO_STANDARD, progress=False)
    run_pipeline(
        Study.from_demo(options=options),
        out,
        options,
        siting=SitingRequest(k=3),
        shuttle=ShuttleRequest(),
    )
    return out
