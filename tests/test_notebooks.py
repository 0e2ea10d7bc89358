"""The notebooks run top to bottom, offline, and are stored without outputs."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import BEIJING_OSM, REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_the_three_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_your_own_data", "03_what_to_build"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path: Path):
    book = nbformat.read(path, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if path.stem == "02_your_own_data":
        if not BEIJING_OSM.exists():
            pytest.skip(f"real OSM extract not found at {BEIJING_OSM}")
        monkeypatch.setenv("LIFECIRCLE_EXAMPLE_OSM", str(BEIJING_OSM))
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(
        book,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env={**os.environ})
    errors = [
        output
        for cell in book.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.outputs]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= (1 if path.stem == "03_what_to_build" else 2)  # inline plots
    frames = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    inline_maps = [f for f in frames if f.startswith("<iframe srcdoc=")]
    assert len(inline_maps) == 1  # the map, self-contained, inline
    assert "self-contained" in inline_maps[0] and "cdn.jsdelivr" not in inline_maps[0]
    assert book.cells[-1].cell_type == "markdown"
    assert book.cells[-1].source.startswith("## What a planner takes away")
    assert (tmp_path / "outputs").is_dir()
    assert any((tmp_path / "outputs").rglob("map.html"))
