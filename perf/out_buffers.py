"""What ``out=`` saves: one training step of a small CNN with fresh results vs reused buffers.

The step (NHWC, float32): conv 3x3x3 -> 16 (padding 1), LRN, 2x2 max pool
with argmax, and back (max-pool, LRN and conv backward). It runs once
allocating every result and once writing into buffers allocated before the
loop, interleaved, at batch 1 and 128 (the seed's 28x28x3 images). Quoted:
the median CPU time (``time.process_time``: all of the process's threads;
with one thread it is immune to other processes' load) and wall time per
step of each over the runs, and the ratios.

    python perf/out_buffers.py [--runs N] [--threads T]
"""
import argparse
import pathlib
import statistics
import sys
import time

import numba
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import numbaconv as nc  # noqa: E402


def step(x, w, b, dy_pool, bufs=None):
    """Forward and backward of conv -> LRN -> max pool; into ``bufs`` when given."""
    o = bufs or {}
    y = nc.conv2d(x, w, b, padding=1, out=o.get("y"))
    z = nc.lrn(y, depth_radius=2, out=o.get("z"))
    p, argmax = nc.max_pool2d_argmax(z, 2, out=o.get("pool"))
    dz = nc.max_pool2d_backward(dy_pool, argmax, z.shape, out=o.get("dz"))
    dy = nc.lrn_backward(dz, y, depth_radius=2, out=o.get("dy"))
    return nc.conv2d_backward(dy, x, w, padding=1, out=o.get("grads"))


def buffers(x, w, b, dy_pool):
    """Every result of ``step``, allocated once."""
    y = nc.conv2d(x, w, b, padding=1)
    p, argmax = nc.max_pool2d_argmax(y, 2)
    return {"y": np.empty_like(y), "z": np.empty_like(y), "pool": (np.empty_like(p), np.empty_like(argmax)),
            "dz": np.empty_like(y), "dy": np.empty_like(y),
            "grads": (np.empty_like(x), np.empty_like(w), np.empty_like(b))}


def main():
    """Time the step both ways at batch 1 and 128 and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    numba.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"numba {numba.__version__}, {args.threads} threads, "
          f"median of {args.runs} interleaved runs")
    for batch in (1, 128):
        x = rng.standard_normal((batch, 28, 28, 3)).astype(np.float32)
        w = rng.standard_normal((3, 3, 3, 16)).astype(np.float32)
        b = rng.standard_normal(16).astype(np.float32)
        dy_pool = rng.standard_normal((batch, 14, 14, 16)).astype(np.float32)
        bufs = buffers(x, w, b, dy_pool)
        fresh, reused = step(x, w, b, dy_pool), step(x, w, b, dy_pool, bufs)  # compiled, and equal:
        assert all(np.array_equal(f, r) for f, r in zip(fresh, reused, strict=True))
        cpu, wall = {"fresh": [], "out=": []}, {"fresh": [], "out=": []}
        for _ in range(args.runs):
            for name, bufs_or_none in (("fresh", None), ("out=", bufs)):
                start, start_cpu = time.perf_counter(), time.process_time()
                step(x, w, b, dy_pool, bufs_or_none)
                cpu[name].append(time.process_time() - start_cpu)
                wall[name].append(time.perf_counter() - start)
        for label, times in (("CPU", cpu), ("wall", wall)):
            fresh_ms, out_ms = (statistics.median(times[k]) * 1e3 for k in ("fresh", "out="))
            print(f"batch {batch:4d} {label:4s}: fresh results {fresh_ms:8.3f} ms/step, "
                  f"out= buffers {out_ms:8.3f} ms/step, out= / fresh = {out_ms / fresh_ms:.3f}")


if __name__ == "__main__":
    main()
