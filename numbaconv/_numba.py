"""The one place for Numba options.

Every kernel is compiled with ``@kernel`` (parallel) or ``@kernel(parallel=False)``:
cached on disk, ``error_model='numpy'`` (no Python division checks, which
block vectorization), and fastmath flags that keep NaN and inf semantics
(no ``nnan``/``ninf``: max pooling must see NaN, and ``isnan`` must not be
optimized away, numba#9383).

Where the cache lives: ``cache=True`` alone would write next to the source,
into the installed package's ``__pycache__`` whenever it is writable, and
``pip uninstall`` would leave those files behind. The kernels here use
Numba's own locators minus that in-tree one: ``NUMBA_CACHE_DIR`` when it is
set, else Numba's user-wide cache directory (``~/.cache/numba`` on Linux,
``XDG_CACHE_HOME`` honoured), else Numba's remaining fallbacks; with none
writable, kernels run uncached with a warning.

Serial twins: :func:`serial` gives the same Python source compiled with
``parallel=False`` (``prange`` runs as ``range``), calling the serial twins
of the kernels it calls. ``numbaconv.kernels`` offers them to users, who
call them inside their own ``prange`` loops (nested parallel regions hang
or abort in Numba, numba#3551, #4484). A twin is a dispatcher of its own,
cached under a name of its own (Numba's cache index does not key on the
``parallel`` flag), and compiled only when called: the public API never
calls one. Callees are found among the function's global names, so kernels
that have twins call their callees by plain names (not through a module
attribute); ``register_jitable`` helpers hold no ``prange`` and need none.
"""
import types as pytypes
import warnings

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import caching
from numba.extending import intrinsic, overload
from numba.np.ufunc.parallel import _launch_threads

FASTMATH = frozenset({"nsz", "arcp", "contract", "reassoc"})

# Recent Numba names these without the leading underscore.
_IN_TREE_LOCATOR = getattr(caching, "InTreeCacheLocator", None) or caching._InTreeCacheLocator
_CACHE_IMPL = getattr(caching, "CacheImpl", None) or caching._CacheImpl


class _OutOfTreeCacheImpl(caching.CompileResultCacheImpl):
    """Numba's cache of compile results, never located in the source tree."""

    @property
    def _locator_classes(self):
        # Read at every kernel definition, so Numba's list (and changes to it) is followed.
        return [cls for cls in _CACHE_IMPL._locator_classes if not issubclass(cls, _IN_TREE_LOCATOR)]


class _OutOfTreeFunctionCache(caching.FunctionCache):
    _impl_class = _OutOfTreeCacheImpl


class _SerialTwinCacheImpl(_OutOfTreeCacheImpl):
    """The cache files of a serial twin: its own name, beside its parallel original's."""

    def get_filename_base(self, fullname, abiflags):
        return super().get_filename_base(fullname + "-serial", abiflags)


class _SerialTwinFunctionCache(caching.FunctionCache):
    _impl_class = _SerialTwinCacheImpl


# What each kernel was compiled as: (python function, parallel, fastmath), by dispatcher id.
_KERNELS: dict[int, tuple] = {}
_TWINS: dict[int, object] = {}  # dispatcher id -> its serial twin (itself when it is one already)


def _explicit_prange():
    """Numba's parallel options: explicit ``prange`` loops only.

    Its other conversions (NumPy calls such as ``np.zeros``, slice
    assignments, reductions, comprehensions) would turn each such statement
    into a parfor of its own: a parallel region, lowered and compiled apart,
    for a small set-up array outside the prange, or a loop nest inside it
    that runs sequentially anyway. A new dict per kernel: Numba pops from it.
    """
    return dict(comprehension=False, reduction=False, inplace_binop=False, setitem=False,
                numpy=False, stencil=False)


def _jit(fn, parallel, fastmath, cache_class=_OutOfTreeFunctionCache):
    options = dict(parallel=_explicit_prange() if parallel else False, fastmath=set(fastmath),
                   error_model="numpy", nogil=True)
    dispatcher = numba.njit(**options)(fn)
    if numba.config.DISABLE_JIT:  # a plain Python function: nothing to cache
        return dispatcher
    _KERNELS[id(dispatcher)] = (fn, parallel, fastmath)
    try:
        # What ``cache=True`` does (Dispatcher.enable_caching), with our locators.
        dispatcher._cache = cache_class(fn)
    except RuntimeError as err:  # no writable cache location (numba#1771, #5566)
        warnings.warn(f"numbaconv: compiled kernels will not be cached ({err})",
                      RuntimeWarning, stacklevel=3)
    return dispatcher


def kernel(fn=None, *, parallel=True, fastmath=FASTMATH):
    """Decorate a kernel: ``@kernel`` or ``@kernel(parallel=False, fastmath=...)``."""
    if fn is None:
        return lambda f: _jit(f, parallel, fastmath)
    return _jit(fn, parallel, fastmath)


def launch_threads():
    """Start Numba's thread pool unless it runs (what the first call of a parallel kernel does).

    Serial nopython code that calls parallel kernels (the ``numbaconv.kernels``
    functions, users' functions calling those), when loaded from the cache,
    does not start it and crashes on its first parallel region (numba#9938,
    #8578). Costs a flag check once the pool runs.
    """
    if not numba.config.DISABLE_JIT:
        _launch_threads()


def serial(dispatcher):
    """The serial twin of a kernel: its source compiled with ``parallel=False``, calling serial twins.

    A kernel that is serial and calls only serial kernels is its own twin.
    Making a twin compiles nothing: it compiles (or loads from its own
    cache) when first called. Uncompiled (``NUMBA_DISABLE_JIT=1``) every
    kernel is a Python function and its own twin.
    """
    key = id(dispatcher)
    if key not in _KERNELS:  # not a kernel (or NUMBA_DISABLE_JIT): nothing parallel in it
        return dispatcher
    if key not in _TWINS:
        fn, parallel, fastmath = _KERNELS[key]
        callees = {name: serial(fn.__globals__[name]) for name in fn.__code__.co_names
                   if id(fn.__globals__.get(name)) in _KERNELS}
        swapped = {name: twin for name, twin in callees.items() if twin is not fn.__globals__[name]}
        if not parallel and not swapped:
            _TWINS[key] = dispatcher
        else:
            twin_fn = pytypes.FunctionType(fn.__code__, {**fn.__globals__, **swapped}, fn.__name__,
                                           fn.__defaults__, fn.__closure__)
            twin_fn.__qualname__, twin_fn.__doc__ = fn.__qualname__, fn.__doc__
            twin_fn.__module__ = fn.__module__
            _TWINS[key] = _jit(twin_fn, False, fastmath, _SerialTwinFunctionCache)
    return _TWINS[key]


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
