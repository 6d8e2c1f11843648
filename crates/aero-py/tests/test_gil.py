"""The GIL is released while files are read, hashed and validated: another
Python thread keeps running meanwhile."""

import threading

import numpy as np

import aerotensor as at


def _progress_during(fn):
    done = threading.Event()
    ticks = 0

    def work():
        try:
            fn()
        finally:
            done.set()

    t = threading.Thread(target=work)
    t.start()
    while not done.is_set():
        ticks += 1
    t.join()
    return ticks


def test_gil_released_while_hashing(tmp_path):
    path = tmp_path / "g.aero"
    at.save_file({f"t{i}": np.full((1024, 1024), i, dtype="<f4") for i in range(24)}, path)
    # 96 MiB hashed three times (shard, pages, tensors): tens of milliseconds
    # during which this thread would be frozen if the call held the GIL.
    assert _progress_during(lambda: at.validate(path, "full")) > 10_000
    with at.AeroReader(path) as r:
        assert _progress_during(r.verify_all) > 1_000
