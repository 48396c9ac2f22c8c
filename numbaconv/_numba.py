"""The one place for Numba options.

Every kernel is compiled with ``@kernel`` (parallel) or ``@kernel(parallel=False)``:
cached on disk, ``error_model='numpy'`` (no Python division checks, which
block vectorization), and fastmath flags that keep NaN and inf semantics
(no ``nnan``/``ninf``: max pooling must see NaN, and ``isnan`` must not be
optimized away, numba#9383).
"""
import warnings

import numba

FASTMATH = frozenset({"nsz", "arcp", "contract", "reassoc"})


def _jit(fn, parallel, fastmath):
    options = dict(parallel=parallel, fastmath=set(fastmath), error_model="numpy",
                   nogil=True, cache=True)
    try:
        return numba.njit(**options)(fn)
    except RuntimeError as err:  # no writable cache location (numba#1771, #5566)
        warnings.warn(f"numbaconv: compiled kernels will not be cached ({err})",
                      RuntimeWarning, stacklevel=3)
        options["cache"] = False
        return numba.njit(**options)(fn)


def kernel(fn=None, *, parallel=True, fastmath=FASTMATH):
    """Decorator: ``@kernel`` or ``@kernel(parallel=False, fastmath=...)``."""
    if fn is None:
        return lambda f: _jit(f, parallel, fastmath)
    return _jit(fn, parallel, fastmath)
