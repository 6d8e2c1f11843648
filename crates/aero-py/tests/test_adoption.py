"""The adoption guide's minimal Python pattern, verbatim."""

import os
import re
import shutil
import textwrap

from conftest import ROOT

# Copied verbatim from the adoption guide (ADOPTION.md, "Minimal Python pattern").
SNIPPET = '''\
from aerotensor import AeroReader

with AeroReader("model.aero") as r:
    for t in r.list_tensors():
        # your logic: e.g. load into your framework
        buf = r.read_tensor_bytes(t["name"])
'''


def _guide():
    for p in (ROOT / "docs" / "ADOPTION.md", ROOT.parent / "shared" / "seed" / "ADOPTION.md"):
        if p.is_file():
            return p.read_text()
    return None


def test_snippet_is_the_guides():
    text = _guide()
    assert text is not None, "ADOPTION.md not found"
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert SNIPPET in [textwrap.dedent(b) for b in blocks]


def test_snippet_runs(golden, tmp_path, monkeypatch):
    shutil.copy(golden / "mixed-single-shard.aero", tmp_path / "model.aero")
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(SNIPPET, "ADOPTION.md", "exec"), scope)
    # It ran to the end: the last tensor's verified bytes are in `buf`.
    assert isinstance(scope["buf"], bytes)
    assert scope["t"]["name"] == "scalar" and len(scope["buf"]) == 8
    assert os.getcwd() == str(tmp_path)
