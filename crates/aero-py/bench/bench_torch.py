#!/usr/bin/env python3
"""PyTorch loading benchmark (the `torch` rows of `cargo xtask bench`, which
builds the wheel, the cached torch venv and the 1 GiB fixtures and calls this
script; see docs/BENCHMARKS.md).

``model.load_state_dict(load_file(p))`` of a 1 GiB model (256 float32
tensors), timed in a fresh interpreter whose imports are done and whose
model is built (parameters allocated and written) before the clock starts:

  aero          aerotensor.torch.load_file(p.aero), verified
  aero-unverified  the same with verify=False
  safetensors   safetensors.torch.load_file(p.safetensors) (no verification)
  b3sum         BLAKE3 of the safetensors file's bytes (what verifying them
                costs a safetensors user), a child process

Targets, ratios of medians (and of minimums: both must hold):
  aero <= 1.1 x (safetensors + b3sum)
  aero-unverified <= 1.0 x safetensors

Every file is first dropped from the page cache and read once from start to
end (``warm``), so both loaders map files cached alike.
Rounds are interleaved (rotating order) after one unrecorded warm-up round,
so background load affects every side alike. Peak RSS is the process's:
it includes the model's 1 GiB of parameters, allocated before the clock.
User+system CPU time of each load is reported too (less sensitive to other
work on the machine than wall time).

  bench_torch.py run --aero F --safetensors F --b3sum CMD [--runs N] [--out JSON]
  bench_torch.py child OP PATH
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

TARGET_VERIFIED = 1.1
TARGET_UNVERIFIED = 1.0


def _model(shapes):
    """An nn.Module whose state_dict has exactly ``shapes``' names, with its
    parameters allocated and written (as a model built in memory is)."""
    import torch

    root = torch.nn.Module()
    for name, (shape, dtype) in shapes.items():
        *path, leaf = name.split(".")
        mod = root
        for p in path:
            if not hasattr(mod, p):
                mod.add_module(p, torch.nn.Module())
            mod = getattr(mod, p)
        t = torch.empty(shape, dtype=dtype)
        t.fill_(1)
        mod.register_parameter(leaf, torch.nn.Parameter(t, requires_grad=False))
    return root


def child(op, path):
    """One measured load; prints {"s", "rss", "n", "bytes"}."""
    import torch

    if op in ("aero", "aero-unverified"):
        import aerotensor.torch as loader

        kwargs = {"verify": op == "aero"}
        with loader.safe_open(path) as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    elif op == "safetensors":
        import safetensors.torch as loader
        from safetensors import safe_open

        kwargs = {}
        with safe_open(path, "pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    else:
        raise SystemExit(f"unknown op {op}")
    model = _model({k: (s, torch.float32) for k, s in shapes.items()})

    def cpu():
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    c0, t0 = cpu(), time.perf_counter()
    result = model.load_state_dict(loader.load_file(path, **kwargs))
    s, c = time.perf_counter() - t0, cpu() - c0

    if result.missing_keys or result.unexpected_keys:
        raise SystemExit(f"{op}: load_state_dict: {result}")
    first = next(iter(model.state_dict().values()))
    if float(first.reshape(-1)[:1024].abs().sum()) == 1024.0:
        raise SystemExit(f"{op}: the parameters were not overwritten")
    sd = model.state_dict()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"s": s, "cpu": c, "rss": rss, "n": len(sd),
                      "bytes": sum(t.numel() * t.element_size() for t in sd.values())}))


def measure(op, path, b3sum):
    if op == "b3sum":
        t0 = time.perf_counter()
        child = subprocess.Popen([b3sum, path], stdout=subprocess.DEVNULL)
        _, status, ru = os.wait4(child.pid, 0)
        s = time.perf_counter() - t0
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise SystemExit(f"{b3sum} {path} failed ({child.returncode})")
        return {"s": s, "cpu": ru.ru_utime + ru.ru_stime, "rss": ru.ru_maxrss * 1024, "n": 0,
                "bytes": os.path.getsize(path)}
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "child", op, path],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{op} {path} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def warm(path):
    """Puts ``path`` in the page cache the way a reader finds a file it has
    read once (after a download, a copy, a reboot): its cached pages are
    dropped, then it is read from start to end. Every file of the run gets
    the same treatment, so no side inherits the page-cache layout its
    fixture's writer happened to leave (the kernel caches a file written in
    small pieces in small folios, which every later mapping of it faults in
    page by page; one read sequentially is cached in large folios)."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        while f.read(8 << 20):
            pass


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3])
        return
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["run"])
    p.add_argument("--aero", required=True)
    p.add_argument("--safetensors", required=True)
    p.add_argument("--b3sum", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out")
    a = p.parse_args()
    ops = [("aero", a.aero), ("aero-unverified", a.aero), ("safetensors", a.safetensors),
           ("b3sum", a.safetensors)]
    for _, path in ops:
        warm(path)
    samples = {op: [] for op, _ in ops}
    for rnd in range(a.runs + 1):
        for k in range(len(ops)):
            op, path = ops[(rnd + k) % len(ops)]
            r = measure(op, path, a.b3sum)
            if rnd > 0:
                samples[op].append(r)
        print(f"  torch: round {rnd}{' (warm-up)' if rnd == 0 else ''}", file=sys.stderr)
    loads = [op for op in samples if op != "b3sum"]
    if len({(samples[op][0]["n"], samples[op][0]["bytes"]) for op in loads}) != 1:
        raise SystemExit(f"the loaders did not load the same tensors: "
                         f"{ {op: (samples[op][0]['n'], samples[op][0]['bytes']) for op in loads} }")
    med = {op: statistics.median(x["s"] for x in v) for op, v in samples.items()}
    mins = {op: min(x["s"] for x in v) for op, v in samples.items()}
    rss = {op: max(x["rss"] for x in v) for op, v in samples.items()}
    cpu = {op: statistics.median(x["cpu"] for x in v) for op, v in samples.items()}
    base_v = med["safetensors"] + med["b3sum"]
    base_v_min = mins["safetensors"] + mins["b3sum"]
    rows = [
        {"benchmark": "verified", "ours": "aero", "baseline": "safetensors + b3sum",
         "ours_median_s": med["aero"], "baseline_median_s": base_v,
         "ratio": med["aero"] / base_v, "ratio_of_min": mins["aero"] / base_v_min,
         "target": TARGET_VERIFIED},
        {"benchmark": "unverified", "ours": "aero-unverified", "baseline": "safetensors",
         "ours_median_s": med["aero-unverified"], "baseline_median_s": med["safetensors"],
         "ratio": med["aero-unverified"] / med["safetensors"],
         "ratio_of_min": mins["aero-unverified"] / mins["safetensors"],
         "target": TARGET_UNVERIFIED},
    ]
    for r in rows:
        r["pass"] = r["ratio"] <= r["target"] and r["ratio_of_min"] <= r["target"]
        r["ours_peak_rss"] = rss[r["ours"]]
        r["tensors"] = samples["aero"][0]["n"]
        r["bytes"] = samples["aero"][0]["bytes"]
    result = {"rows": rows, "median_s": med, "min_s": mins, "median_cpu_s": cpu, "peak_rss": rss,
              "samples": samples}
    for r in rows:
        print(f"{r['benchmark']}: {r['ours']} {r['ours_median_s'] * 1e3:.0f} ms vs "
              f"{r['baseline']} {r['baseline_median_s'] * 1e3:.0f} ms = {r['ratio']:.2f}x "
              f"(min {r['ratio_of_min']:.2f}x), target <= {r['target']}x: "
              f"{'PASS' if r['pass'] else 'FAIL'}; peak RSS {r['ours_peak_rss'] / 2**20:.0f} MiB")
    print("peak RSS: " + ", ".join(f"{op} {v / 2**20:.0f} MiB" for op, v in rss.items()))
    print("CPU (user+sys, median): " + ", ".join(f"{op} {v:.2f} s" for op, v in cpu.items()))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
