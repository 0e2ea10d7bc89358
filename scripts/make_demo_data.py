"""Regenerate the synthetic demo study area in data/demo (see data/demo/README.md).

Usage: ``python scripts/make_demo_data.py [--out DIR]``. The output is
deterministic, so the committed files only change when the generator does.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from demo_generator import generate_demo  # beside this script

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Write the demo files and print a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "data" / "demo",
        help="output directory (default: data/demo in the repository)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    demo = generate_demo(args.out)
    size = sum(path.stat().st_size for path in args.out.iterdir() if path.is_file())
    print(f"synthetic demo data written to {demo.streets.parent} ({size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
