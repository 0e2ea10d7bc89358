"""lifecircle: 15-minute life-circle (15分钟生活圈) analysis for Chinese cities.

Load facilities and residential compounds as planners have them, measure
walking distances over the real street network, score every compound against
a planning standard, and find the blind zones.

>>> import lifecircle as lc
>>> sorted(s["id"] for s in lc.list_standards())
['gb50180-2018', 'puxieshi-2021', 'six-kinds-15min', 'tdt1062-2021']
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

# Public names and the modules that define them; imported on first use, so
# that ``import lifecircle`` (and ``lifecircle --help``) stays quick.
_EXPORTS = {
    "from_wgs84": "coords",
    "parse_crs": "coords",
    "to_wgs84": "coords",
    "demo_data": "datasets",
    "ReachEngine": "engine",
    "InputError": "errors",
    "InternalError": "errors",
    "LifecircleError": "errors",
    "MissingDataError": "errors",
    "OutputError": "errors",
    "isochrones": "isochrones",
    "LoadResult": "loading",
    "load_communities": "loading",
    "load_facilities": "loading",
    "load_gates": "loading",
    "WalkNetwork": "network",
    "download_network": "network",
    "load_network": "network",
    "Inputs": "options",
    "Options": "options",
    "RunResult": "pipeline",
    "SitingRequest": "pipeline",
    "run_pipeline": "pipeline",
    "Standard": "standards",
    "list_standards": "standards",
    "load_standard": "standards",
    "Study": "study",
}

if TYPE_CHECKING:
    from .coords import from_wgs84, parse_crs, to_wgs84
    from .datasets import demo_data
    from .engine import ReachEngine
    from .errors import InputError, InternalError, LifecircleError, MissingDataError, OutputError
    from .isochrones import isochrones
    from .loading import LoadResult, load_communities, load_facilities, load_gates
    from .network import WalkNetwork, download_network, load_network
    from .options import Inputs, Options
    from .pipeline import RunResult, SitingRequest, run_pipeline
    from .standards import Standard, list_standards, load_standard
    from .study import Study


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lifecircle' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


try:
    __version__ = version("lifecircle")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "InputError",
    "Inputs",
    "InternalError",
    "LifecircleError",
    "LoadResult",
    "MissingDataError",
    "Options",
    "OutputError",
    "ReachEngine",
    "RunResult",
    "SitingRequest",
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
    "run_pipeline",
    "to_wgs84",
]
