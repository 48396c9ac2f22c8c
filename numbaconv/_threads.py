"""How numbaconv's parallel kernels share a busy machine.

Two measures, both measured with ``perf/under_load.py`` (busy-loop
neighbour processes beside numbaconv, PyTorch and TensorFlow):

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
"""
import functools
import os

import numba
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


def serial_when_small(core, cost_ns):
    """``core``, run on the calling thread alone when ``cost_ns(*args)`` is below SERIAL_BELOW_NS."""
    @functools.wraps(core)
    def run(*args, **kwargs):
        if cost_ns(*args) >= SERIAL_BELOW_NS:
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
