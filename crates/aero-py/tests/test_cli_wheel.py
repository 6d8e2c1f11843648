"""The ``aerotensor`` command the wheel installs, as a user meets it.

The built wheel (``AERO_WHEEL``, set by ``cargo xtask pytest``; else the
newest ``target/wheels/aerotensor-*.whl``) is installed with pip into a
fresh venv of its own — no system site packages, nothing but the wheel and
what it requires — and the adoption guide's CI commands run verbatim, from
that venv's ``bin/`` on the PATH, in a fresh directory holding files made
here: a safetensors file, a sharded checkpoint (tests/fixtures/gen_sharded.py)
and a GGUF file written by gguf-py. Each output is read back and compared
with its source. Then ``python -m aerotensor``, exit codes, Ctrl-C and a
closed pipe, and the guide's Python snippet in the same venv.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import aerotensor
from conftest import ROOT
from test_adoption import SNIPPET, _guide


def _wheel() -> Path:
    env = os.environ.get("AERO_WHEEL")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    wheels = sorted((target / "wheels").glob("aerotensor-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise RuntimeError("no wheel: set AERO_WHEEL or run `cargo xtask wheel` first")
    return wheels[-1]


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv holding the wheel and what it requires, nothing else."""
    d = tmp_path_factory.mktemp("cli") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(d)], check=True)
    py = d / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    str(_wheel())], check=True)
    pip = [str(py), "-m", "pip", "--disable-pip-version-check"]
    listed = subprocess.run(pip + ["list", "--format=freeze"],
                            check=True, capture_output=True, text=True).stdout
    # Names compared as PEP 503 normalises them (`ml_dtypes` is `ml-dtypes`).
    norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()  # noqa: E731
    installed = {norm(line.split("==")[0]) for line in listed.split()}
    # What the wheel requires, and what those require in turn (pip show).
    needed, todo = set(), ["aerotensor"]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        shown = subprocess.run(pip + ["show", name], check=True, capture_output=True,
                               text=True).stdout
        requires = next(l for l in shown.splitlines() if l.startswith("Requires:"))
        todo += [norm(r.strip()) for r in requires.split(":", 1)[1].split(",") if r.strip()]
    assert "numpy" in needed
    assert installed - {"pip", "setuptools", "wheel"} == needed, (installed, needed)
    return d


def _env(venv: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    return env


def _sh(venv: Path, cwd: Path, command: str) -> subprocess.CompletedProcess:
    """Runs a shell line as a user's CI step would, the venv's bin first."""
    return subprocess.run(command, shell=True, cwd=cwd, env=_env(venv),
                          capture_output=True, text=True, timeout=300)


def _guide_commands() -> list:
    """The `aerotensor …` lines of the guide's shell blocks, verbatim."""
    text = _guide()
    assert text is not None, "ADOPTION.md not found"
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        lines += [ln.strip() for ln in block.splitlines() if ln.strip().startswith("aerotensor ")]
    return lines


def _make_inputs(work: Path) -> dict:
    """model.safetensors, checkpoints/sharded/ and model.gguf in `work`."""
    import gguf
    from gguf import GGMLQuantizationType as T, quants
    from safetensors.numpy import save_file

    rng = np.random.default_rng(22)
    st = {
        "lm_head.weight": rng.standard_normal((8, 16)).astype(np.float32),
        "model.embed.weight": rng.standard_normal((8, 16)).astype(np.float16),
        "model.norm.weight": np.arange(16, dtype=np.float32),
        "position_ids": np.arange(8, dtype=np.int64),
    }
    save_file(st, str(work / "model.safetensors"),
              metadata={"model_name": "adoption-st", "architecture": "TestLM"})

    sharded = work / "checkpoints" / "sharded"
    subprocess.run([sys.executable, str(ROOT / "tests" / "fixtures" / "gen_sharded.py"),
                    str(sharded)], check=True)

    w = gguf.GGUFWriter(str(work / "model.gguf"), "llama")
    w.add_name("adoption-gguf")
    w.add_block_count(1)
    gg = {
        "token_embd.weight": rng.standard_normal((4, 64)).astype(np.float32),
        "blk.0.attn_q.weight": quants.quantize(
            rng.standard_normal((4, 64)).astype(np.float32), T.Q8_0),
        "output_norm.weight": rng.standard_normal(64).astype(np.float32),
    }
    for name, arr in gg.items():
        if name == "blk.0.attn_q.weight":
            w.add_tensor(name, arr, raw_dtype=T.Q8_0)
        else:
            w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"safetensors": st, "gguf": gg}


def test_the_guides_commands_run_verbatim_from_the_wheel(venv, tmp_path):
    commands = _guide_commands()
    assert [c.split()[1] for c in commands] == [
        "convert-safetensors", "convert-safetensors-sharded", "convert-gguf", "validate", "inspect",
    ], commands
    work = tmp_path / "project"
    work.mkdir()
    made = _make_inputs(work)
    assert _sh(venv, work, "command -v aerotensor").stdout.strip() == str(venv / "bin" / "aerotensor")

    results = {}
    for c in commands:
        r = _sh(venv, work, c)
        assert r.returncode == 0, f"{c}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        results[c.split()[1]] = r
        if c.split()[1] == "convert-safetensors":
            # The tensors, read back through the package: the source's.
            got = aerotensor.load_file(str(work / "dist" / "model.aero"))
            assert sorted(got) == sorted(made["safetensors"])
            for name, arr in made["safetensors"].items():
                assert got[name].dtype == arr.dtype and np.array_equal(got[name], arr), name
            with aerotensor.AeroReader(str(work / "dist" / "model.aero")) as r_:
                assert r_.model_name == "adoption-st"
        elif c.split()[1] == "convert-safetensors-sharded":
            from safetensors.numpy import load_file
            src = {}
            for f in (work / "checkpoints" / "sharded").glob("*.safetensors"):
                src.update(load_file(str(f)))
            with aerotensor.AeroSetReader(str(work / "dist" / "aero_set")) as s:
                assert sorted(s.keys()) == sorted(src)
                for name, arr in src.items():
                    assert s.get_tensor(name).tobytes() == arr.tobytes(), name
            assert aerotensor.validate(str(work / "dist" / "aero_set"))["valid"]
        elif c.split()[1] == "convert-gguf":
            with aerotensor.AeroReader(str(work / "dist" / "model.aero")) as r_:
                for name, arr in made["gguf"].items():
                    assert r_.read_tensor_bytes(name) == arr.tobytes(), name

    # The last two are the guide's checks of the GGUF conversion.
    assert "valid" in results["validate"].stdout
    assert "adoption-gguf" in results["inspect"].stdout
    assert "blk.0.attn_q.weight" in results["inspect"].stdout

    # The guide's Python snippet, in the same venv, on the converted file.
    snippet_dir = tmp_path / "snippet"
    snippet_dir.mkdir()
    (snippet_dir / "model.aero").write_bytes((work / "dist" / "model.aero").read_bytes())
    (snippet_dir / "snippet.py").write_text(SNIPPET + "print(t['name'], len(buf))\n")
    r = subprocess.run([str(venv / "bin" / "python"), "snippet.py"], cwd=snippet_dir,
                       env=_env(venv), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with aerotensor.AeroReader(str(work / "dist" / "model.aero")) as r_:
        last = r_.list_tensors()[-1]
    assert r.stdout.split() == [last["name"], str(last["data_len"])]


def test_python_dash_m_and_the_script_are_the_same_program(venv, tmp_path):
    py = str(venv / "bin" / "python")
    m = subprocess.run([py, "-m", "aerotensor", "--version"], cwd=tmp_path, env=_env(venv),
                       capture_output=True, text=True)
    assert m.returncode == 0, m.stderr
    lines = m.stdout.splitlines()
    assert lines[0] == f"aerotensor {aerotensor.__version__}"
    assert "AERO 0.1" in lines[1] and "AEROSET 0.1 and 0.2" in lines[1], lines
    assert "s3://" in lines[2], lines  # the wheel has the release binary's features
    script = _sh(venv, tmp_path, "aerotensor --version")
    assert (script.returncode, script.stdout, script.stderr) == (0, m.stdout, m.stderr)

    # Usage errors: exit 2, clap's message naming `aerotensor` (not __main__.py).
    bad = subprocess.run([py, "-m", "aerotensor", "frobnicate"], cwd=tmp_path, env=_env(venv),
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unrecognized subcommand 'frobnicate'" in bad.stderr, bad
    assert "Usage: aerotensor" in bad.stderr and "__main__" not in bad.stderr
    # I/O error: exit 2 and the documented one-line error.
    missing = _sh(venv, tmp_path, "aerotensor inspect missing.aero")
    assert missing.returncode == 2
    assert missing.stderr.startswith("aerotensor: error: missing.aero"), missing.stderr


def test_damaged_content_exits_1(venv, tmp_path):
    from safetensors.numpy import save_file
    save_file({"w": np.arange(4096, dtype=np.float32)}, str(tmp_path / "m.safetensors"))
    r = _sh(venv, tmp_path, "aerotensor convert m.safetensors m.aero")
    assert r.returncode == 0, r.stderr
    b = bytearray((tmp_path / "m.aero").read_bytes())
    with aerotensor.AeroReader(str(tmp_path / "m.aero")) as rd:
        t = rd.list_tensors()[0]
        off = rd.find_shard_chunk(t["shard_id"]).offset + t["data_off"]
    b[off + 100] ^= 0xFF
    (tmp_path / "bad.aero").write_bytes(bytes(b))
    r = _sh(venv, tmp_path, "aerotensor validate --full bad.aero")
    assert r.returncode == 1, (r.stdout, r.stderr)
    r = _sh(venv, tmp_path, "aerotensor extract bad.aero w out.bin")
    assert r.returncode == 1 and not (tmp_path / "out.bin").exists()
    assert r.stderr.startswith("aerotensor: error: "), r.stderr


def _as_from_a_terminal() -> None:
    # A background job of a non-interactive shell (a CI runner) starts with
    # SIGINT ignored, and Python then installs no handler of its own: give
    # the children the disposition a terminal gives, which is what is tested.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_import_leaves_signals_alone_and_the_cli_cleans_up_on_ctrl_c(venv, tmp_path):
    py = str(venv / "bin" / "python")
    probe = ("import signal, aerotensor; "
             "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, "
             "signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN, "
             "signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)")
    r = subprocess.run([py, "-c", probe], env=_env(venv), capture_output=True, text=True,
                       preexec_fn=_as_from_a_terminal)
    assert r.stdout.split() == ["True", "True", "True"], (r.stdout, r.stderr)
    # Nor does it import numpy (the command never makes an array): that
    # happens on first use.
    probe = ("import sys, aerotensor; a = 'numpy' in sys.modules; "
             "from aerotensor import *; import numpy; "
             "print(a, NUMPY_DTYPES[1] == numpy.dtype('<f4'), aerotensor.NUMPY_DTYPES is NUMPY_DTYPES)")
    r = subprocess.run([py, "-c", probe], env=_env(venv), capture_output=True, text=True)
    assert r.stdout.split() == ["False", "True", "True"], (r.stdout, r.stderr)

    # A 1 GiB safetensors file (sparse: zeros), so the write takes a while.
    big = tmp_path / "big.safetensors"
    n = 1 << 30
    header = b'{"t":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}' % (n, n)
    header += b" " * (-len(header) % 8)
    with open(big, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        f.truncate(8 + len(header) + n)
    out = tmp_path / "out"
    out.mkdir()
    (out / "m.aero").write_bytes(b"the previous file")
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        child = subprocess.Popen([str(venv / "bin" / "aerotensor"), "convert", str(big),
                                  str(out / "m.aero"), "--no-fsync"],
                                 env=_env(venv), stderr=subprocess.DEVNULL,
                                 preexec_fn=_as_from_a_terminal)
        t0 = time.monotonic()
        while not [p for p in out.iterdir() if p.name.endswith(".aerotmp")]:
            assert child.poll() is None, f"{sig!r}: finished before it could be interrupted"
            assert time.monotonic() - t0 < 60, "the write never started"
            time.sleep(0.002)
        time.sleep(0.05)
        child.send_signal(sig)
        assert child.wait(timeout=60) == code, sig
        assert [p.name for p in out.iterdir()] == ["m.aero"], sig
        assert (out / "m.aero").read_bytes() == b"the previous file"

    # A closed pipe ends the command quietly, as for the binary.
    r = _sh(venv, tmp_path, "aerotensor completions bash | head -c 10")
    assert r.returncode == 0 and r.stdout == "_aerotenso" and r.stderr == "", r
