#!/usr/bin/env python3
"""Python-package benchmarks, each against its baseline in one run (the
`py` rows of `cargo xtask bench`, which builds the wheel, a venv and the
fixtures and calls this script; see docs/BENCHMARKS.md).

  load — every tensor of a 1 GiB file into numpy arrays, verified:
         ``aerotensor.load_file`` vs ``safetensors.numpy.load_file`` of the
         same weights. Target: <= 1.0x.
  list — open + list the 100,000 tensors of a file: ``AeroReader.list_tensors``
         vs the pure-Python reader (tests/pyref/aero_ref.py, which also
         verifies the TIDX and checks every entry). Target: <= 0.25x.

Every measured call runs in a fresh interpreter whose imports are done
before the clock starts; the time is the call's, measured in-process, so
interpreter start-up counts for neither side. Commands of one benchmark are
interleaved (rotating order) after one unrecorded warm-up round.

  bench_py.py run --load-aero F --load-safetensors F --list-aero F --pyref DIR [--runs N] [--out JSON]
  bench_py.py child OP PATH [PYREF]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

TARGETS = {"load": 1.0, "list": 0.25}


def child(op, path, pyref):
    """One measured call; prints {"s", "rss", "n", "bytes"}."""
    if op in ("aero-load", "aero-list"):
        import aerotensor
    elif op == "st-load":
        import safetensors.numpy
    elif op == "pyref-list":
        sys.path.insert(0, pyref)
        sys.dont_write_bytecode = True
        import aero_ref
    import numpy  # noqa: F401  (both sides return numpy arrays)

    t0 = time.perf_counter()
    if op == "aero-load":
        d = aerotensor.load_file(path)
        n, nbytes = len(d), sum(a.nbytes for a in d.values())
    elif op == "st-load":
        d = safetensors.numpy.load_file(path)
        n, nbytes = len(d), sum(a.nbytes for a in d.values())
    elif op == "aero-list":
        with aerotensor.AeroReader(path) as r:
            ts = r.list_tensors()
        n, nbytes = len(ts), 0
    elif op == "pyref-list":
        ts = aero_ref.AeroFile(path).tensors()
        n, nbytes = len(ts), 0
    else:
        raise SystemExit(f"unknown op {op}")
    s = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"s": s, "rss": rss, "n": n, "bytes": nbytes}))


def measure(op, path, pyref):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "child", op, path, pyref],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{op} {path} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def warm(path):
    with open(path, "rb") as f:
        while f.read(8 << 20):
            pass


def bench(name, ops, runs, pyref):
    for _, _, path in ops:
        warm(path)
    samples = {label: [] for label, _, _ in ops}
    for rnd in range(runs + 1):
        for k in range(len(ops)):
            label, op, path = ops[(rnd + k) % len(ops)]
            r = measure(op, path, pyref)
            if rnd > 0:
                samples[label].append(r)
        print(f"  {name}: round {rnd}{' (warm-up)' if rnd == 0 else ''}", file=sys.stderr)
    (ours, _, _), (base, _, _) = ops
    med = {k: statistics.median(x["s"] for x in v) for k, v in samples.items()}
    mins = {k: min(x["s"] for x in v) for k, v in samples.items()}
    counts = {k: sorted({x["n"] for x in v}) for k, v in samples.items()}
    if counts[ours] != counts[base] or samples[ours][0]["bytes"] != samples[base][0]["bytes"]:
        raise SystemExit(f"{name}: the two sides did not load the same tensors: {counts}")
    ratio, ratio_min = med[ours] / med[base], mins[ours] / mins[base]
    target = TARGETS[name]
    return {
        "benchmark": name,
        "ours": ours, "baseline": base,
        "ours_median_s": med[ours], "baseline_median_s": med[base],
        "ours_min_s": mins[ours], "baseline_min_s": mins[base],
        "ratio": ratio, "ratio_of_min": ratio_min, "target": target,
        "pass": ratio <= target and ratio_min <= target,
        "tensors": counts[ours][0],
        "bytes": samples[ours][0]["bytes"],
        "ours_peak_rss": max(x["rss"] for x in samples[ours]),
        "baseline_peak_rss": max(x["rss"] for x in samples[base]),
        "samples": samples,
    }


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "")
        return
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["run"])
    p.add_argument("--load-aero", required=True)
    p.add_argument("--load-safetensors", required=True)
    p.add_argument("--list-aero", required=True)
    p.add_argument("--pyref", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out")
    a = p.parse_args()
    results = [
        bench("load", [("aerotensor.load_file", "aero-load", a.load_aero),
                       ("safetensors.numpy.load_file", "st-load", a.load_safetensors)],
              a.runs, a.pyref),
        bench("list", [("AeroReader.list_tensors", "aero-list", a.list_aero),
                       ("pure-Python reader (tests/pyref)", "pyref-list", a.list_aero)],
              a.runs, a.pyref),
    ]
    for r in results:
        print(f"{r['benchmark']}: {r['ours']} {r['ours_median_s'] * 1e3:.1f} ms vs "
              f"{r['baseline']} {r['baseline_median_s'] * 1e3:.1f} ms = {r['ratio']:.2f}x "
              f"(min {r['ratio_of_min']:.2f}x), target <= {r['target']}x: "
              f"{'PASS' if r['pass'] else 'FAIL'}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
