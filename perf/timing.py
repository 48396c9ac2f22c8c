"""Timing loop, machine limits and run metadata (NumPy and the standard library only)."""
import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata

import numpy as np

MAX_RUNS = 500


def time_calls(fn, runs, min_time=0.0, warmup=1):
    """Wall and CPU seconds per call of ``fn()``: ``warmup`` untimed calls, then >= ``runs`` timed.

    More runs are taken (up to MAX_RUNS) until ``min_time`` seconds of wall
    time have been spent timing, so fast ops get many samples. The CPU time
    is the whole process's (every thread's) time on a CPU during the call: it
    does not grow while the process waits for a CPU on a busy machine, but it
    does count threads that spin while they wait (OpenMP, OpenBLAS), so it
    measures work only with ``OMP_WAIT_POLICY=PASSIVE`` and a single-threaded
    BLAS (what ``compare.py --clock cpu`` sets). The garbage collector is off
    while timing (as ``timeit`` does): a collection would be charged to
    whichever call it interrupted.
    """
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    clock, cpu_clock = time.perf_counter, time.process_time
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        while len(wall) < runs or (clock() - start < min_time and len(wall) < MAX_RUNS):
            c0, t0 = cpu_clock(), clock()
            fn()
            t1, c1 = clock(), cpu_clock()
            wall.append(t1 - t0)
            cpu.append(c1 - c0)
    finally:
        if was_enabled:
            gc.enable()
    return wall, cpu


def summary(wall, cpu):
    """Wall-clock median/min in ms, the number of runs, the CPU-time median, every sample."""
    return {
        "median_ms": 1e3 * statistics.median(wall),
        "min_ms": 1e3 * min(wall),
        "runs": len(wall),
        "cpu_median_ms": 1e3 * statistics.median(cpu),
        "times_ms": [round(1e3 * t, 4) for t in wall],
        "cpu_times_ms": [round(1e3 * t, 4) for t in cpu],
    }


# ------------------------------------------------------------------ machine limits


def sgemm_gflops(n=2048, repeats=5):
    """Best float32 matmul rate of NumPy's BLAS on n x n matrices (GFLOP/s)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    np.matmul(a, b, out=c)  # warm-up: BLAS thread start, page faults on c
    best = min(time_calls(lambda: np.matmul(a, b, out=c), repeats, warmup=0)[0])
    return 2 * n**3 / best / 1e9


def copy_gbps(mbytes=256, repeats=5, threads=None):
    """Best copy bandwidth (GB/s, bytes read + bytes written) with one thread per CPU.

    The array is far larger than the caches. NumPy's copy is single-threaded
    but releases the GIL, so each thread copies its own slice, as a parallel
    kernel's threads would.
    """
    threads = threads or len(os.sched_getaffinity(0))
    count = mbytes * 2**20 // 8
    src = np.ones(count)
    dst = np.zeros(count)
    bounds = np.linspace(0, count, threads + 1).astype(int)
    slices = [slice(bounds[i], bounds[i + 1]) for i in range(threads)]

    with ThreadPoolExecutor(threads) as pool:
        def copy():
            list(pool.map(lambda s: np.copyto(dst[s], src[s]), slices))

        copy()
        best = min(time_calls(copy, repeats, warmup=0)[0])
    return 2 * src.nbytes / best / 1e9


def machine_limits(quick=False):
    return {
        "sgemm_gflops": sgemm_gflops(1024 if quick else 2048),
        "sgemm_n": 1024 if quick else 2048,
        "copy_gbps": copy_gbps(64 if quick else 256),
        "copy_mbytes": 64 if quick else 256,
    }


# ------------------------------------------------------------------ metadata


def cpu_info():
    model, flags, cores_per_socket = "unknown", set(), None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and model == "unknown":
                    model = value
                elif key == "flags" and not flags:
                    flags = set(value.split())
                elif key == "cpu cores" and cores_per_socket is None:
                    cores_per_socket = int(value)
    except OSError:
        model = platform.processor() or "unknown"
    mem_gb = None
    try:
        with open("/proc/meminfo") as f:
            mem_gb = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cores_per_socket": cores_per_socket,
        "simd": sorted(flags & {"avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx_vnni"}),
        "memory_gb": mem_gb,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "loadavg_start": os.getloadavg(),
    }


def versions(names=("numpy", "numba", "llvmlite", "tensorflow-cpu", "tensorflow", "torch",
                    "matplotlib", "numbaconv")):
    """Installed distribution versions, read from metadata (nothing is imported)."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_state(path):
    """Commit of the tree at ``path`` and whether tracked files differ from it (read-only git)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True,
                              text=True, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "short": "nogit", "dirty": None}
    return {"commit": commit, "short": commit[:10], "dirty": dirty}
