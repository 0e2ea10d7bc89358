"""Tests of the one YAML reader (lifecircle.config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecircle.config import key_path, read_yaml, read_yaml_text
from lifecircle.errors import InputError
from lifecircle.scenarios import load_scenario


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_1_2_numbers_and_text() -> None:
    data = read_yaml_text("a: 1e9\nb: 2.5E-3\nc: 001\nd: yes\ne: on\nf: false\ng: 12\nh: ~\n")
    assert data == {
        "a": 1e9,
        "b": 0.0025,
        "c": "001",
        "d": "yes",
        "e": "on",
        "f": False,
        "g": 12,
        "h": None,
    }
    assert isinstance(data["a"], float) and isinstance(data["g"], int)


def test_duplicate_keys_are_refused_with_line_and_key_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "areas:\n  - id: a\n    network: x\n    network: y\n")
    with pytest.raises(InputError) as err:
        read_yaml(path)
    assert "line 4" in str(err.value) and "duplicate key areas[0].network" in str(err.value)
    assert str(path) in str(err.value)


def test_object_tags_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(InputError, match="not valid YAML"):
        read_yaml(path)


def test_syntax_errors_give_the_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="line 2"):
        read_yaml(_write(tmp_path, "a: 1\n b: [\n"))


def test_scenario_with_duplicate_keys_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nremove_facilities: [a]\nremove_facilities: [b]\n")
    with pytest.raises(InputError, match="duplicate key remove_facilities"):
        load_scenario(path)


def test_key_path() -> None:
    assert key_path(["areas", 2, "network"]) == "areas[2].network"
    assert key_path([]) == "(top level)"


def test_scenario_facility_far_from_the_study_is_refused(tmp_path: Path) -> None:
    from lifecircle.options import Options
    from lifecircle.scenarios import run_scenario
    from lifecircle.study import Study

    study = Study.from_demo(options=Options(standard="puxieshi-2021", progress=False))
    far = tmp_path / "far.yaml"
    far.write_text(
        "name: far\nadd_facilities:\n  - {id: n1, type: park, lon: 108.66, lat: 28.01}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=r"add_facilities\[0\].*km from the study"):
        run_scenario(study, far)
