"""Tests of the one pipeline (lifecircle.pipeline): staged outputs and the manifest."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lifecircle import pipeline
from lifecircle.errors import InputError, OutputError
from lifecircle.options import Options
from lifecircle.pipeline import read_manifest, run_pipeline
from lifecircle.study import Study


@pytest.fixture(scope="module")
def quick_study() -> Study:
    return Study.from_demo(options=Options(standard="puxieshi-2021", progress=False))


QUICK = Options(
    standard="puxieshi-2021", isochrones=False, robustness=False, maps=False, progress=False
)


def test_manifest_lists_exactly_the_files_of_the_run(demo_outputs: Path) -> None:
    manifest = read_manifest(demo_outputs)
    assert manifest is not None and manifest["complete"] is True
    on_disk = {p.name for p in demo_outputs.iterdir() if p.name != "manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert {"map.html", "report.html", "sites.csv", "robustness_summary.json"} <= on_disk
    assert manifest["options"]["standard"] == "puxieshi-2021"


def test_a_failed_run_leaves_the_previous_complete_set(
    quick_study: Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    run_pipeline(quick_study, out, QUICK)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("lifecircle.outputs.write_outputs", broken)
    with pytest.raises(OutputError, match="No space left on device"):
        run_pipeline(quick_study, out, QUICK)
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_files_of_an_earlier_run_that_this_run_does_not_write_are_removed(
    quick_study: Study, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_pipeline(quick_study, out, QUICK.replace(isochrones=True))
    assert (out / "isochrones.gpkg").exists()
    (out / "my_notes.txt").write_text("kept")
    run_pipeline(quick_study, out, QUICK)
    assert not (out / "isochrones.gpkg").exists()  # would be stale beside the new results
    assert (out / "my_notes.txt").read_text() == "kept"  # not ours: never touched


def test_output_folder_checks(quick_study: Study, tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(InputError, match="must be a folder"):
        run_pipeline(quick_study, a_file, QUICK)
    with pytest.raises(InputError, match="under a file"):
        run_pipeline(quick_study, a_file / "sub", QUICK)
    with pytest.raises(InputError, match="must be a folder"):
        pipeline.check_output_folder(Path("/dev/null"))


def test_manifest_is_required_to_render_again(tmp_path: Path, demo_outputs: Path) -> None:
    with pytest.raises(InputError, match="no complete lifecircle run"):
        read_manifest(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(demo_outputs, copy)
    (copy / "manifest.json").write_text('{"complete": tr', encoding="utf-8")
    with pytest.raises(InputError, match="damaged"):
        read_manifest(copy)
    result = subprocess.run(
        [sys.executable, "-c", "from lifecircle.cli import main; main()", "map", str(copy)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_summary_records_the_options(demo_outputs: Path) -> None:
    summary = json.loads((demo_outputs / "summary.json").read_text(encoding="utf-8"))
    assert summary["options"]["minutes"] == [5.0, 10.0, 15.0]
    assert summary["options"]["robustness"] is True


def test_a_truncated_summary_or_a_missing_file_is_a_clear_error(
    tmp_path: Path, demo_outputs: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(demo_outputs, copy)
    text = (copy / "summary.json").read_text(encoding="utf-8")
    (copy / "summary.json").write_text(text[:500], encoding="utf-8")
    with pytest.raises(InputError, match=r"summary.json is damaged"):
        read_manifest(copy)
    (copy / "summary.json").write_text(text, encoding="utf-8")
    (copy / "gaps.gpkg").unlink()
    with pytest.raises(InputError, match=r"files of the run are missing \(gaps.gpkg\)"):
        read_manifest(copy)
