"""lifecircle: 15-minute life-circle (15分钟生活圈) analysis for Chinese cities.

Load facilities and residential compounds as planners have them, measure
walking distances over the real street network, score every compound against
a planning standard, and find the blind zones.

>>> import lifecircle as lc
>>> sorted(s["id"] for s in lc.list_standards())
['gb50180-2018', 'puxieshi-2021', 'tdt1062-2021']
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from .coords import from_wgs84, parse_crs, to_wgs84
from .datasets import demo_data
from .engine import ReachEngine
from .errors import InputError, InternalError, LifecircleError, MissingDataError
from .isochrones import isochrones
from .loading import LoadResult, load_communities, load_facilities, load_gates
from .network import WalkNetwork, download_network, load_network
from .standards import Standard, list_standards, load_standard
from .study import Study

try:
    __version__ = version("lifecircle")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "InputError",
    "InternalError",
    "LifecircleError",
    "LoadResult",
    "MissingDataError",
    "ReachEngine",
    "Standard",
    "Study",
    "WalkNetwork",
    "__version__",
    "demo_data",
    "download_network",
    "from_wgs84",
    "isochrones",
    "list_standards",
    "load_communities",
    "load_facilities",
    "load_gates",
    "load_network",
    "load_standard",
    "parse_crs",
    "to_wgs84",
]
