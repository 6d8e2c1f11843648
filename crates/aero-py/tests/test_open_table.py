"""The opener's table (``tests/fixtures/open-table.json``) through the
package: ``aerotensor.open`` (any), ``AeroSetReader`` (set) and the handle
opened as a file answer every case as the CLI and the C ABI do (one opener
in the library, ``aero_set::Model::open``, behind all three)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import aerotensor
from aerotensor import _aerotensor

from conftest import ROOT

TABLE = json.loads((ROOT / "tests" / "fixtures" / "open-table.json").read_text())["cases"]


def _input(case: dict) -> str:
    p = case["input"]
    return p if "://" in p else str(ROOT.parent / "shared" / p)


def _open(case: dict):
    path = _input(case)
    if case["expect"] == "any":
        return aerotensor.open(path)
    if case["expect"] == "set":
        return aerotensor.AeroSetReader(path)
    return _aerotensor._Handle.open(path, "file", False, True, None)


@pytest.mark.parametrize("case", TABLE, ids=[f"{c['expect']}:{c['input']}" for c in TABLE])
def test_every_case_of_the_open_table(case: dict) -> None:
    outcome = case["outcome"]
    if outcome in ("file", "set"):
        r = _open(case)
        try:
            if case["expect"] == "any":
                is_set = isinstance(r, aerotensor.AeroSetReader)
                assert is_set == (outcome == "set")
                assert len(r.keys()) > 0
        finally:
            if hasattr(r, "close"):
                r.close()
        return
    if outcome == "wrong-kind":
        with pytest.raises(aerotensor.AeroError) as e:
            _open(case)
        assert e.value.kind == "wrong-kind"
        assert f"is {case['found']}, not " in str(e.value)
    elif outcome == "not-found":
        with pytest.raises(FileNotFoundError) as e:
            _open(case)
        assert "no-such-file.aero" in str(e.value)
    elif outcome == "unsupported":
        with pytest.raises((aerotensor.AeroError, OSError)) as e:
            _open(case)
        assert "ftp://" in str(e.value)
    else:
        raise AssertionError(f"unknown outcome {outcome}")
