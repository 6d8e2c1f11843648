"""Fixtures of the aerotensor pytest suite (run through the built wheel by
``cargo xtask ci``; by hand: ``pip install target/wheels/aerotensor-*.whl
numpy pytest blake3 safetensors`` then ``pytest crates/aero-py/tests``).

Nothing here skips: a test that needs nginx or the golden files fails when
they are missing, so a green run means every check ran.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _golden() -> Path:
    env = os.environ.get("AERO_GOLDEN")
    for p in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "golden",
                                              ROOT / "tests" / "fixtures" / "golden"]:
        if (p / "expected.json").is_file():
            return p
    raise RuntimeError(
        f"golden files not found (set AERO_GOLDEN; looked next to {ROOT} for shared/golden)")


@pytest.fixture(scope="session")
def golden() -> Path:
    """The golden directory (read-only)."""
    return _golden()


@pytest.fixture(scope="session")
def expected(golden: Path) -> dict:
    return json.loads((golden / "expected.json").read_text())


@pytest.fixture()
def golden_copy(golden: Path, tmp_path: Path) -> Path:
    """A writable copy of the golden directory."""
    dst = tmp_path / "golden"
    shutil.copytree(golden, dst)
    for p in dst.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


@pytest.fixture(scope="session")
def nginx(tmp_path_factory) -> dict:
    """A real nginx on 127.0.0.1 serving a copy of the golden files plus
    what tests put in ``root`` (tests/nginx/run_nginx_test.sh, the same
    machinery as the Rust remote tests; it installs nginx when missing and
    fails otherwise). ``AERO_NGINX_URL`` + ``AERO_NGINX_ROOT`` reuse a
    server that is already running."""
    url, root = os.environ.get("AERO_NGINX_URL"), os.environ.get("AERO_NGINX_ROOT")
    if url and root:
        www = Path(root) / f"py-{uuid.uuid4().hex[:8]}"
        shutil.copytree(_golden(), www)
        for p in www.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        yield {"url": f"{url.rstrip('/')}/{www.name}", "root": www}
        shutil.rmtree(www, ignore_errors=True)
        return
    base = tmp_path_factory.mktemp("nginx")
    www = base / "www"
    shutil.copytree(_golden(), www)
    for p in [www, *www.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    base.chmod(0o755)
    script = ROOT / "tests" / "nginx" / "run_nginx_test.sh"
    env = dict(os.environ, AERO_NGINX_PREFIX=str(base / "prefix"))
    out = subprocess.run(["bash", str(script), "start", str(www)], env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"nginx is required and could not be started:\n{out.stderr}")
    try:
        yield {"url": out.stdout.strip(), "root": www,
               "log": base / "prefix" / "logs" / "access.log"}
    finally:
        subprocess.run(["bash", str(script), "stop"], env=env, capture_output=True)
