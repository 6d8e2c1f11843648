#!/usr/bin/env python3
"""Checks aero_ref.py against ../shared/golden/expected.json. Prints "N passed, M failed"; exit 0/1."""
import hashlib, json, os, struct, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(os.path.dirname(os.path.dirname(HERE)), "..", "shared", "golden")
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep tests/pyref free of __pycache__
import aero_ref  # noqa: E402

results = []


def check(label, cond, detail=""):
    results.append(bool(cond))
    if not cond:
        print(f"FAIL {label} {detail}")


def raises(fn, *args):
    try:
        fn(*args)
    except ValueError:
        return True
    return False


def tensors_match(label, tensors, truth, skip=()):
    check(f"{label}: tensor names", set(tensors) == set(truth), sorted(tensors))
    for name, t in truth.items():
        r = tensors.get(name, {})
        check(f"{label}: {name} meta", [r.get(k) for k in ("dtype", "shape", "data_len")] ==
              [t["dtype"], t["shape"], t["data_len"]], r)
        check(f"{label}: {name} blake3", name in skip or r.get("blake3") == t["blake3"], r.get("blake3"))


def golden():
    exp = json.load(open(os.path.join(GOLDEN, "expected.json")))
    sets, reps = exp["tensor_sets"], {}
    for rel, info in exp["files"].items():
        path = os.path.join(GOLDEN, rel)
        if "sha256" in info:
            check(f"{rel}: sha256", hashlib.sha256(open(path, "rb").read()).hexdigest() == info["sha256"])
        if not rel.endswith(".aero"):
            continue
        got = [{"flags": e.flags, "fourcc": e.fourcc, "length": e.length, "name": e.name,
                "offset": e.offset, "ulen": e.ulen} for e in aero_ref.AeroFile(path).entries]
        check(f"{rel}: chunk table", got == info.get("chunks", got), got)
        rep = reps[rel] = aero_ref.validate(path)
        status = {c["fourcc"] + ":" + c["name"]: c["status"] for c in rep["chunks"]}
        if info.get("expect") == "valid" or rel.startswith("aeroset-local/part-"):
            check(f"{rel}: valid", rep["valid"] and not rep["warnings"], rep["errors"] + rep["warnings"])
            check(f"{rel}: all chunks verified", set(status.values()) == {"verified"}, status)
        if info.get("expect") == "valid":
            tensors_match(rel, rep["tensors"], sets[info["tensors"]])

    rep = reps["mjsn-zero-hash.aero"]  # MJSN unverified (a warning), all else verified, still valid
    st = {c["fourcc"] + ":" + c["name"]: c["status"] for c in rep["chunks"]}
    check("mjsn-zero-hash: MJSN hash-not-recorded", st.pop("MJSN:meta.json") == "hash-not-recorded")
    check("mjsn-zero-hash: rest verified", set(st.values()) == {"verified"}, st)
    check("mjsn-zero-hash: valid with warning", rep["valid"] and len(rep["warnings"]) == 1, rep)
    tensors_match("mjsn-zero-hash", rep["tensors"], sets["mixed"])

    info, rep = exp["files"]["tensor-hash-defect.aero"], reps["tensor-hash-defect.aero"]
    st = {c["name"]: c["status"] for c in rep["chunks"]}
    check("defect: invalid, WTSH mismatch", not rep["valid"] and st.pop("weights.shard0") == "mismatch")
    check("defect: other chunks verified", set(st.values()) == {"verified"}, st)
    bad = {n for n, r in rep["tensors"].items() if r["hash_b3"] == "mismatch"}
    ok = {n for n, r in rep["tensors"].items() if r["hash_b3"] == "verified"}
    check("defect: damaged set", bad == set(info["damaged_tensors"]), sorted(bad))
    check("defect: intact set", ok == set(info["intact_tensors"]), sorted(ok))
    tensors_match("defect", rep["tensors"], sets["mixed"], skip=info["damaged_tensors"])
    f = aero_ref.AeroFile(os.path.join(GOLDEN, "tensor-hash-defect.aero"))
    for name in info["damaged_tensors"]:
        check(f"defect: {name} bytes refused", raises(f.tensor_bytes, name))
    check("defect: WTSH read refused", raises(f.read_chunk, f.find("WTSH").index))

    rep = reps["ihsh-phsh.aero"]
    check("ihsh-phsh: control verified", rep["control"] == "verified", rep["control"])
    check("ihsh-phsh: pages verified", rep["pages"] == {f"weights.shard{i}": "verified" for i in range(3)})
    check("test-vector: no IHSH", reps["test-vector.aero"]["control"] == "not-present")

    # aeroset-local: the parts (checked valid above) together hold the whole tensor set
    union = {k: v for i in range(3) for k, v in reps[f"aeroset-local/part-00{i}.aero"]["tensors"].items()}
    tensors_match("aeroset union", union, sets["mixed"])
    check("aeroset index.aero valid", reps["aeroset-local/index.aero"]["valid"])

    f = aero_ref.AeroFile(os.path.join(GOLDEN, "test-vector.aero"))  # sha256 checked above
    check("test-vector: weight", struct.unpack("<6f", f.tensor_bytes("linear.weight")) == (1, 2, 3, 4, 5, 6))
    check("test-vector: bias", struct.unpack("<2f", f.tensor_bytes("linear.bias")) == (0.5, -0.5))


def cli():
    def run(*a):
        return subprocess.run([sys.executable, os.path.join(HERE, "aero_ref.py"), *a], capture_output=True)
    g = lambda name: os.path.join(GOLDEN, name)  # noqa: E731
    for name, rc in (("ihsh-phsh.aero", 0), ("mjsn-zero-hash.aero", 0), ("tensor-hash-defect.aero", 1)):
        p = run("validate", g(name), "--json")
        check(f"cli validate {name}: rc {rc}", p.returncode == rc and json.loads(p.stdout)["valid"] == (rc == 0))
    check("cli check-aligned golden: rc 1", run("check-aligned", g("test-vector.aero")).returncode == 1)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "t.bin")
        p = run("dump-tensor", g("test-vector.aero"), "linear.bias", out)
        check("cli dump-tensor", p.returncode == 0 and open(out, "rb").read() == struct.pack("<2f", 0.5, -0.5))
        p = run("dump-tensor", g("tensor-hash-defect.aero"), "mask", out + "2")
        check("cli dump-tensor refuses damaged", p.returncode == 1 and not os.path.exists(out + "2"))


def mutations():
    """Corrupted copies of ihsh-phsh.aero must be reported invalid with the right reason."""
    src = open(os.path.join(GOLDEN, "ihsh-phsh.aero"), "rb").read()
    f = aero_ref.AeroFile(os.path.join(GOLDEN, "ihsh-phsh.aero"))
    mjsn, shard1, tidx = f.find("MJSN"), f.find("WTSH", "weights.shard1"), f.find("TIDX")
    patch = lambda off, data: src[:off] + data + src[off + len(data):]  # noqa: E731
    q = lambda v: struct.pack("<Q", v)  # noqa: E731
    cases = {  # label: (file bytes, substring expected in an error)
        "truncated": (src[:50], "too small"), "bad magic": (patch(0, b"AERX"), "magic"),
        "version 0.2": (patch(6, b"\2\0"), "version"), "header_size": (patch(8, b"\x61"), "header_size"),
        "file_flags": (patch(44, q(1)), "file_flags"), "toc too short": (patch(20, q(16)), "toc_length"),
        "entry_count": (patch(96, struct.pack("<I", 2_000_000)), "entry_count"),
        "strtab overflow": (patch(28, q(2**64 - 8)), "string table"), "tail cut": (src[:-100], "outside"),
        "chunk overflow": (patch(128, q(2**64 - 1)), "outside"), "name_off": (patch(144, b"\xff"), "name_off"),
        "TIDX ulen": (patch(112 + 80 * tidx.index + 24, q(tidx.ulen + 1)), "TIDX"),
        "uuid flipped": (patch(52, b"\0"), "control plane"), "MJSN flipped": (patch(mjsn.offset, b"["), "MJSN"),
        "shard1 byte flipped": (patch(shard1.offset + 2048, b"\xff"), "mismatch:2"),
    }
    with tempfile.TemporaryDirectory() as d:
        for label, (data, needle) in cases.items():
            open(os.path.join(d, "m.aero"), "wb").write(data)
            rep = aero_ref.validate(os.path.join(d, "m.aero"))
            check(f"mutation {label}", not rep["valid"] and any(needle in e for e in rep["errors"]), rep["errors"])


if __name__ == "__main__":
    for step in (golden, cli, mutations):
        try:
            step()
        except Exception as ex:  # a crash is a failure, not a pass
            check(f"exception in {step.__name__}", False, repr(ex))
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)
