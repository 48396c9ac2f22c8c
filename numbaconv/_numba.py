"""The one place for Numba options.

Every kernel is compiled with ``@kernel`` (parallel) or ``@kernel(parallel=False)``:
cached on disk, ``error_model='numpy'`` (no Python division checks, which
block vectorization), and fastmath flags that keep NaN and inf semantics
(no ``nnan``/``ninf``: max pooling must see NaN, and ``isnan`` must not be
optimized away, numba#9383).
"""
import warnings

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

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


# ------------------------------------------------------------ register tiles


@intrinsic
def _stack_buffer(typingctx, like, n):
    """A pointer to ``n`` (a literal) elements of ``like``'s dtype on the stack (an LLVM alloca)."""
    if not isinstance(n, types.IntegerLiteral):
        return None
    size, dtype = n.literal_value, like.dtype

    def codegen(context, builder, signature, args):
        elem = context.get_data_type(dtype)
        with builder.goto_entry_block():  # one alloca per call, not per loop iteration
            ptr = builder.alloca(ir.ArrayType(elem, size))
        return builder.bitcast(ptr, elem.as_pointer())

    return types.CPointer(dtype)(like, n), codegen


def register_tile(like, rows, cols):
    """A (rows, cols) scratch array of ``like``'s dtype, for accumulators that should live in registers.

    Compiled, it is a stack allocation: LLVM sees that nothing else can
    alias it and, once its loops are unrolled, keeps it in vector
    registers for a whole reduction loop. A heap array (``np.empty``) may
    alias the operands as far as LLVM knows, so every update would go
    through memory (measured 4-5x slower). ``rows`` and ``cols`` must be
    compile-time constants (module-level ints). Uncompiled
    (``NUMBA_DISABLE_JIT=1``) it is an ordinary array.
    """
    return np.empty((rows, cols), like.dtype)


@overload(register_tile, prefer_literal=True)
def _register_tile(like, rows, cols):
    if not (isinstance(rows, types.IntegerLiteral) and isinstance(cols, types.IntegerLiteral)):
        raise numba.errors.TypingError("register_tile needs compile-time constant rows and cols")
    shape = (rows.literal_value, cols.literal_value)
    size = shape[0] * shape[1]

    def impl(like, rows, cols):
        return numba.carray(_stack_buffer(like, size), shape)

    return impl
