"""How numbaconv's parallel kernels share a busy machine.

Three measures here, measured with ``perf/under_load.py`` (busy-loop
neighbour processes beside numbaconv, PyTorch and TensorFlow); a fourth,
the kernels' claimed work units, is ``numbaconv._numba.claim_unit``:

- **Small calls run on the calling thread.** A parallel region costs a
  hand-off: waking the other threads and waiting at the end for the last of
  them. On a quiet machine that is microseconds; on a busy one, a thread
  that lost its CPU to a neighbour is not run again before the
  scheduler's time slice ends, and the call waits milliseconds for it (a
  0.05 ms batch-1 convolution took 24 ms beside one busy process). Calls
  whose estimated single-thread time is below ``SERIAL_BELOW_NS`` set
  Numba's thread count to 1 for their duration (``numba.set_num_threads``
  is per calling thread, so other threads are not affected). This is
  PyTorch's ``grain_size`` rule for ``at::parallel_for``. The estimate comes
  from the shapes only, and results do not depend on it: every kernel's
  output is bit-identical at any thread count.
- **GNU OpenMP waits briefly, then sleeps.** Numba's ``omp`` threading layer
  (the default with pip's Numba on Linux) uses GNU libgomp, whose threads
  spin up to 300,000 times waiting for the next parallel region. Beside
  three busy processes on this project's 2-core machine the spinning threads
  hold CPUs that the thread with the remaining work needs: the seed
  convolution's forward slowed 8x (median of 8 rounds; single rounds up to
  40x). Unless the user chose (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` in
  the environment), importing numbaconv sets ``GOMP_SPINCOUNT`` to
  ``OMP_SPIN_COUNT``, a few microseconds of spinning: 2.5x there. The price
  is paid beside one busy process, where a sleeping thread waits for the
  busy one's time slice to wake: 2.2x instead of 1.2x for that forward
  (``perf/under_load.py``; the numbers are in the issue-10 notes). libgomp
  reads the variable once, when it is loaded: by Numba at its first parallel
  call, so the setting has no effect if Numba's threads were started before
  numbaconv was imported, and it also applies to other libraries that load
  the same libgomp later in the process.
- **Worker threads keep off the caller's CPU** (:class:`WorkerPlacement`):
  a worker that Linux woke on the caller's CPU shared it with the caller.
"""
import ctypes
import functools
import os
import threading

import numba
import numpy as np
from numba.np.ufunc import parallel as _parallel

# Spins before a GNU OpenMP thread sleeps (libgomp's default: 300,000).
OMP_SPIN_COUNT = "3000"
# Calls estimated below this many nanoseconds of single-thread work run serially.
SERIAL_BELOW_NS = 30_000

# Single-thread cost per unit of work, in ns: rounded from one-thread timings
# of small calls (batch 1-8, 3-128 channels) on this project's Zen4 machine.
# The estimate needs only the right order of magnitude: it decides whether a
# call is worth a parallel hand-off (~10-20 us on a quiet machine).
NS_PER_MAC = 0.06  # convolution multiply-adds
NS_PER_TAP = 1.0  # one window tap of a pooling or patch copy
NS_PER_ELEMENT = 0.3  # one element read or written by a scatter, reduction or copy
NS_PER_LRN_ELEMENT = 2.0  # one LRN output (a window sum and a power)


def configure_openmp_wait():
    """Make GNU OpenMP spin briefly before sleeping, unless the user chose a wait policy."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    os.environ["GOMP_SPINCOUNT"] = OMP_SPIN_COUNT


def openmp_wait():
    """The wait setting GNU OpenMP reads at its load, for ``python -m numbaconv info``."""
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        if name in os.environ:
            return f"{name}={os.environ[name]}"
    return "libgomp's default"


def _thread_count():
    """(get, set) of the calling thread's Numba thread count.

    Once Numba's threading layer is loaded, its own C functions (what
    ``numba.get_num_threads``/``set_num_threads`` call after taking two
    locks and checking the count): 0.5 us instead of 4.6 us per small call
    (get, set, restore). The counts given to ``set`` are 1 and one that
    ``get`` returned, both valid. Numba's public functions where those
    names are missing (another Numba version).
    """
    if not _parallel._is_initialized:
        _parallel._launch_threads()
    get = getattr(_parallel, "_get_num_threads", None)
    set_ = getattr(_parallel, "_set_num_threads", None)
    if get is None or set_ is None:
        return numba.get_num_threads, numba.set_num_threads
    return get, set_


# Environment variables by which users place OpenMP threads themselves:
# with any of them set, WorkerPlacement leaves the threads alone.
USER_PLACEMENT = ("OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY", "KMP_AFFINITY")
# NUMBACONV_WORKER_PLACEMENT=0 turns WorkerPlacement off.
PLACEMENT_SWITCH = "NUMBACONV_WORKER_PLACEMENT"


class WorkerPlacement:
    """Keeps the caller's OpenMP worker threads off the CPU the caller runs on.

    On a machine with more runnable threads than CPUs, Linux wakes a
    sleeping worker thread on the CPU of the thread that woke it (the
    caller) when no CPU is idle, and the two then share that CPU while the
    neighbour process keeps the other: a two-thread call ran at one
    thread's speed. Measured beside one busy process (2 CPUs, a 1.75 ms
    two-thread kernel of 64 claimed units, GOMP_SPINCOUNT=3000): median
    3.6 ms, mean 3.4-3.6; with the worker kept off the caller's CPU,
    median 1.8, mean 2.9. Before a parallel call, the caller's CPU is
    read (``sched_getcpu``, a fraction of a microsecond); when it changed
    since the last call, the affinity of each of the caller's worker
    threads is set to the CPUs the caller may use minus that one. Nothing
    is pinned: the workers may run on any other CPU, and the caller where
    the scheduler puts it. The worker threads' ids are read once per
    calling thread and thread count (``_numba.team_thread_ids``, one
    parallel call). Linux with Numba's ``omp`` layer only; off when the
    user places OpenMP threads (``USER_PLACEMENT``), when
    ``NUMBACONV_WORKER_PLACEMENT=0``, or when the caller may use one CPU.
    """

    def __init__(self):
        self._local = threading.local()
        self._enabled = None  # decided at the first parallel call
        self._getcpu = lambda: -1  # libc's sched_getcpu once decided

    def _decide(self):
        if (os.environ.get(PLACEMENT_SWITCH) == "0" or any(v in os.environ for v in USER_PLACEMENT)
                or not hasattr(os, "sched_setaffinity") or numba.config.DISABLE_JIT):
            return False
        try:
            getcpu = ctypes.CDLL(None, use_errno=True).sched_getcpu
        except (OSError, AttributeError):
            return False
        getcpu.restype, getcpu.argtypes = ctypes.c_int, []
        self._getcpu = getcpu
        return numba.threading_layer() == "omp"

    def before_parallel_call(self, threads):
        """Moves the calling thread's workers off its CPU if it changed; ``threads``: its Numba thread count."""
        if self._enabled is None:
            self._enabled = self._decide()
        if not self._enabled or threads < 2:
            return
        cpu = self._getcpu()
        state = self._local
        if getattr(state, "threads", 0) != threads:
            state.threads, state.cpu = threads, -1
            state.allowed = os.sched_getaffinity(0)
            try:
                state.workers = self._worker_ids(threads)
            except Exception:  # noqa: BLE001 - e.g. a C library without gettid: never fail the user's call
                self._enabled = False
                return
        if cpu == state.cpu or cpu < 0:
            return
        state.cpu = cpu
        others = state.allowed - {cpu}
        if not others:
            return
        try:
            for tid in state.workers:
                os.sched_setaffinity(tid, others)
        except OSError:  # a worker gone (the pool was rebuilt): read the ids again at the next call
            state.threads = 0

    @staticmethod
    def _worker_ids(threads):
        from ._numba import team_thread_ids

        ids = np.zeros(threads, np.int64)
        team_thread_ids(ids)
        return [int(t) for t in ids[1:] if t != ids[0]]


_PLACEMENT = WorkerPlacement()


def serial_when_small(core, cost_ns):
    """``core``, run on the calling thread alone when ``cost_ns(*args)`` is below SERIAL_BELOW_NS."""
    @functools.wraps(core)
    def run(*args, **kwargs):
        if cost_ns(*args) >= SERIAL_BELOW_NS:
            get, _ = _thread_count()
            _PLACEMENT.before_parallel_call(get())
            return core(*args, **kwargs)
        get, set_ = _thread_count()
        threads = get()
        if threads < 1:  # (Numba's own check, and its RuntimeError)
            threads = numba.get_num_threads()
        if threads == 1:
            return core(*args, **kwargs)
        set_(1)
        try:
            return core(*args, **kwargs)
        finally:
            set_(threads)

    return run


# ------------------------------------------------------------- cost estimates
#
# One per core signature of ``numbaconv._api.Backend``; arrays are NHWC-indexed.


def _pixels(a):
    return a.shape[0] * a.shape[1] * a.shape[2]


def conv_cost(x, w, b, g, *rest):
    """conv2d and its grouped form: N * OH * OW output pixels, each against the whole (group) filter."""
    return NS_PER_MAC * x.shape[0] * g.oh * g.ow * w.size


def transpose_cost(x, w, b, g, *rest):
    """conv2d_transpose (the input gradient): every input pixel against the whole filter."""
    return NS_PER_MAC * _pixels(x) * w.size


def filter_cost(x, dy, g, nchw):
    """conv2d_backward_filter: every output element against a window of input channels."""
    return NS_PER_MAC * dy.size * g.kh * g.kw * x.shape[3]


def grouped_filter_cost(x, dy, g, groups, nchw):
    return filter_cost(x, dy, g, nchw) / groups


def bias_cost(dy, nchw):
    return NS_PER_ELEMENT * dy.size


def window_cost(x, g, *rest):
    """Pooling forward, im2col: every output element reads a window."""
    return NS_PER_TAP * x.shape[0] * g.oh * g.ow * x.shape[3] * g.kh * g.kw


def col2im_cost(cols, n, c, g, nchw):
    return NS_PER_TAP * cols.size


def scatter_cost(dy, argmax, h, w, nchw):
    """Max-pool backward and unpool: clear the result, then one element per gradient."""
    return NS_PER_ELEMENT * (dy.size + dy.shape[0] * h * w * dy.shape[3])


def adaptive_cost(x, oh, ow, nchw):
    """Adaptive average pooling: about one read per input element."""
    return NS_PER_TAP * x.size


def adaptive_backward_cost(dy, h, w, nchw):
    """Its backward: about one write per input element."""
    return NS_PER_TAP * dy.shape[0] * h * w * dy.shape[3]


def lrn_cost(x, depth_radius, *rest):
    return NS_PER_LRN_ELEMENT * x.size


def lrn_backward_cost(dy, x, depth_radius, *rest):
    return 2 * NS_PER_LRN_ELEMENT * x.size


configure_openmp_wait()  # at import of numbaconv: before Numba starts its threads, if it has not
