"""numbaconv._threads: small calls on the calling thread, GNU OpenMP's wait setting."""
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

import numbaconv
from numbaconv import _threads
from numbaconv import _validate

REPO = Path(__file__).resolve().parents[1]


def _threads_seen(cost):
    seen = []

    def core(*args):
        seen.append(numba.get_num_threads())
        return len(args)

    return _threads.serial_when_small(core, lambda *a: cost), seen


def test_small_calls_run_on_one_thread_and_restore_the_count(thread_counts):
    run, seen = _threads_seen(_threads.SERIAL_BELOW_NS - 1)
    for threads in thread_counts:
        numba.set_num_threads(threads)
        assert run(1, 2) == 2
        assert seen[-1] == 1
        assert numba.get_num_threads() == threads


def test_large_calls_keep_every_thread(thread_counts):
    run, seen = _threads_seen(_threads.SERIAL_BELOW_NS)
    numba.set_num_threads(max(thread_counts))
    run()
    assert seen == [max(thread_counts)]


def test_the_thread_count_is_restored_when_the_core_raises(thread_counts):
    def core():
        raise RuntimeError("boom")

    run = _threads.serial_when_small(core, lambda: 0)
    numba.set_num_threads(max(thread_counts))
    with pytest.raises(RuntimeError, match="boom"):
        run()
    assert numba.get_num_threads() == max(thread_counts)


def test_public_calls_leave_the_thread_count_alone(thread_counts):
    numba.set_num_threads(max(thread_counts))
    x = np.ones((1, 5, 5, 2), np.float32)
    w = np.ones((3, 3, 2, 4), np.float32)
    y = numbaconv.conv2d(x, w)
    numbaconv.conv2d_backward(np.ones_like(y), x, w)
    numbaconv.max_pool2d(x, 2)
    assert numba.get_num_threads() == max(thread_counts)


@pytest.mark.parametrize("shape, serial", [((1, 28, 28, 3), True), ((128, 28, 28, 3), False)])
def test_the_seed_conv_is_serial_at_batch_1_only(shape, serial):
    a = _validate.conv2d(np.ones(shape, np.float32), np.ones((3, 3, 3, 16), np.float32), None, 1, "SAME", 1, "NHWC")
    assert (_threads.conv_cost(a.x, a.w, None, a.g) < _threads.SERIAL_BELOW_NS) == serial


def test_every_cost_estimate_grows_with_the_data():
    """Each core's estimate is positive and doubles with the batch (no estimate ignores the data)."""
    from numbaconv import _functions

    small, large = np.ones((1, 8, 8, 4)), np.ones((2, 8, 8, 4))
    g = _validate.conv2d(small, np.ones((3, 3, 4, 4)), None, 1, 1, 1, "NHWC").g
    w = np.ones((3, 3, 4, 4))
    argmax = np.zeros((1, 8, 8, 4), np.int64)
    calls = {
        "conv_cost": lambda x: _threads.conv_cost(x, w, None, g, False),
        "transpose_cost": lambda x: _threads.transpose_cost(x, w, None, g, False),
        "filter_cost": lambda x: _threads.filter_cost(x, x, g, False),
        "grouped_filter_cost": lambda x: _threads.grouped_filter_cost(x, x, g, 2, False),
        "bias_cost": lambda x: _threads.bias_cost(x, False),
        "window_cost": lambda x: _threads.window_cost(x, g, False),
        "col2im_cost": lambda x: _threads.col2im_cost(x, 1, 4, g, False),
        "scatter_cost": lambda x: _threads.scatter_cost(x, argmax, 8, 8, False),
        "adaptive_cost": lambda x: _threads.adaptive_cost(x, 2, 2, False),
        "adaptive_backward_cost": lambda x: _threads.adaptive_backward_cost(x, 8, 8, False),
        "lrn_cost": lambda x: _threads.lrn_cost(x, 2, 1.0, 1.0, 0.5, False),
        "lrn_backward_cost": lambda x: _threads.lrn_backward_cost(x, x, 2, 1.0, 1.0, 0.5, False),
    }
    for name, cost in calls.items():
        assert 0 < cost(small) and cost(large) == pytest.approx(2 * cost(small)), name
    # every core of the Numba backend is wrapped, with one of these estimates
    wrapped = [core for core in _functions._BACKEND if hasattr(core, "__wrapped__")]
    assert len(wrapped) == len(_functions._BACKEND)


def _spin_setting(env):
    code = ("import os, numbaconv, numba; numba.get_num_threads(); "
            "print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))")
    env = {**{k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}, **env}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


def test_import_sets_a_short_openmp_spin_unless_the_user_chose():
    assert _spin_setting({}) == [_threads.OMP_SPIN_COUNT, "None"]
    assert _spin_setting({"GOMP_SPINCOUNT": "77"}) == ["77", "None"]
    assert _spin_setting({"OMP_WAIT_POLICY": "ACTIVE"}) == ["None", "ACTIVE"]


# ------------------------------------------------------------ claimed work units


def test_claimed_units_each_run_once(thread_counts):
    from numbaconv._numba import claimed_units, workers

    # (claims from the caller: a local array's count, read after the loop,
    # compiled to its initial 0; the kernels never read it after.)
    @numba.njit(parallel=True)
    def claim_all(counts, claimed_by, claims):
        units = counts.size
        for worker in numba.prange(workers(units)):
            for unit in claimed_units(claims, units):
                counts[unit] += 1
                claimed_by[unit] = worker

    for threads in thread_counts:
        numba.set_num_threads(threads)
        for units in (0, 1, 2, 3, 7, 1000):
            counts, claimed_by, claims = np.zeros(units, np.int64), np.full(units, -1, np.int64), np.zeros(1, np.int64)
            claim_all(counts, claimed_by, claims)
            assert (counts == 1).all()
            n_workers = max(1, min(threads, units))
            assert ((0 <= claimed_by) & (claimed_by < n_workers)).all()
            # Each worker stops at its first claim past the units.
            assert claims[0] == units + n_workers


# ------------------------------------------------------------ worker placement

_PLACEMENT_PROBE = """
import os, numpy as np, numba, numbaconv
from numbaconv import _threads
numba.set_num_threads(2)
x, w = np.ones((64, 28, 28, 3), np.float32), np.ones((3, 3, 3, 16), np.float32)
for _ in range(3):
    numbaconv.conv2d(x, w, padding=1)
state = _threads._PLACEMENT._local
workers = getattr(state, "workers", [])
print(repr((_threads._PLACEMENT._enabled, getattr(state, "cpu", None),
            sorted(os.sched_getaffinity(0)), [sorted(os.sched_getaffinity(t)) for t in workers])))
"""


def _placement(env):
    env = {**{k: v for k, v in os.environ.items()
              if k not in (_threads.PLACEMENT_SWITCH, *_threads.USER_PLACEMENT)}, **env}
    out = subprocess.run([sys.executable, "-c", _PLACEMENT_PROBE], cwd=REPO, env=env, capture_output=True,
                         text=True, check=True)
    return eval(out.stdout)  # noqa: S307 - our own probe's printed literals


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
                    reason="worker placement is for Linux machines with 2 or more CPUs")
def test_the_worker_threads_keep_off_the_callers_cpu():
    enabled, cpu, allowed, workers = _placement({})
    assert enabled is True
    assert len(workers) == 1  # two threads: the caller and one worker
    assert cpu in allowed
    assert workers == [sorted(set(allowed) - {cpu})]


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
                    reason="worker placement is for Linux machines with 2 or more CPUs")
@pytest.mark.parametrize("env", [{_threads.PLACEMENT_SWITCH: "0"}, {"OMP_PROC_BIND": "false"},
                                 {"KMP_AFFINITY": "disabled"}])
def test_worker_placement_is_off_when_the_user_says_so(env):
    enabled, cpu, allowed, workers = _placement(env)
    assert enabled is False
    assert cpu is None and workers == []
