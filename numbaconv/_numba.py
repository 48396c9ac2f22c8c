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
import functools
import hashlib
import importlib.util
import os
import pathlib
import sys
import threading
import types as pytypes
import warnings

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import caching, cgutils, codegen, cpu, event
from numba.extending import intrinsic, overload, register_jitable
from numba.np.ufunc.parallel import _launch_threads

FASTMATH = frozenset({"nsz", "arcp", "contract", "reassoc"})

# Recent Numba names these without the leading underscore.
_IN_TREE_LOCATOR = getattr(caching, "InTreeCacheLocator", None) or caching._InTreeCacheLocator
_CACHE_IMPL = getattr(caching, "CacheImpl", None) or caching._CacheImpl


@functools.cache
def _package_source_hash():
    """A hash of the source of every module of the package (once per process: about a millisecond)."""
    root = pathlib.Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class _OutOfTreeCacheImpl(caching.CompileResultCacheImpl):
    """Numba's cache of compile results, never located in the source tree, and stale when any module changes.

    Numba stamps a cached kernel with its own file's source only, but a
    kernel carries the compiled code of the kernels it calls in other
    files and the constants it read from them (the register tile's rows,
    ``patch_gemm.PIX``). After an edit or a ``git pull`` in an editable
    install, a kernel loaded with a stale callee ran the callee's old tile
    over buffers sized by the new one, and wrote past their ends. The
    stamp here adds a hash of the whole package's source: any change
    recompiles every kernel, and a reinstall of the same source keeps them.
    """

    def __init__(self, py_func):
        super().__init__(py_func)
        own_stamp = self._locator.get_source_stamp
        self._locator.get_source_stamp = lambda: (own_stamp(), _package_source_hash())

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


# What each kernel was compiled as: (python function, parallel, fastmath, inline, full_width), by dispatcher id.
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


def _jit(fn, parallel, fastmath, inline=False, full_width=True, cache_class=_OutOfTreeFunctionCache):
    options = dict(parallel=_explicit_prange() if parallel else False, fastmath=set(fastmath),
                   error_model="numpy", nogil=True)
    dispatcher = numba.njit(**options)(fn)
    if numba.config.DISABLE_JIT:  # a plain Python function: nothing to cache
        return dispatcher
    _KERNELS[id(dispatcher)] = (fn, parallel, fastmath, inline, full_width)
    dispatcher._numbaconv_kernel = True  # see _LinkOnlyParforLibraries
    try:
        # What ``cache=True`` does (Dispatcher.enable_caching), with our locators.
        dispatcher._cache = cache_class(fn)
    except RuntimeError as err:  # no writable cache location (numba#1771, #5566)
        warnings.warn(f"numbaconv: compiled kernels will not be cached ({err})",
                      RuntimeWarning, stacklevel=3)
    return dispatcher


class _LinkOnlyParforLibraries(event.Listener):
    """No machine code for the parfor libraries that our kernels only link: a third less compile time.

    Numba lowers a prange loop into three code libraries, each finalized
    (optimized and compiled to machine code) when the next one links it:
    the loop body (``__numba_parfor_gufunc_...``), its gufunc wrapper and
    the parallel launcher (``parallelgufuncwrapper``). The kernel's own
    library then links all three, optimizes the whole again and compiles it
    to the machine code that runs and is cached. The intermediate machine
    codes are never called, and the wrappers' optimization (of code that
    includes the loop body) is redone in the kernel: measured on the whole
    float32 API (fresh cache, CPU time), 5.8 s of optimization and 4.8 s of
    machine code for the wrappers and 2 s of machine code for the loop
    bodies, out of 46 s.

    While one of our kernels compiles (Numba's ``numba:compile`` event),
    these libraries are only linked into the next: the two wrappers are
    not optimized either (their code is optimized once, in the kernel's
    library), no intermediate library is added to the execution engine, and
    the loop body gets no Python entry point (Numba makes one for every
    function it compiles; nothing calls a loop body from Python). Should
    anything ask one of them for a function pointer or object code, the
    skipped step runs then. Other Numba code in the process (users'
    parallel functions) is untouched.

    The kernels' machine code is not byte-identical to Numba's own route
    (the linked IR used to arrive after codegen passes had run on it:
    register allocation differs), their results are: checked bit for bit
    on every op, layout and both dtypes, with single-thread run times
    unchanged within noise.

    Optimized once, too: a loop body is not optimized in its own library
    either (the function passes that Numba runs on each new function
    stay). Its code reaches machine code only inside the kernel, whose
    module is optimized as a whole, callees before callers. Measured on the
    whole float32 API (fresh cache, CPU seconds, ``perf/compile_times.py``,
    two pairs alternated): 54.1 and 53.3 s before, 50.0 and 50.6 s after;
    LLVM's part 28.2 and 28.1 s before, 23.9 and 24.2 after. Outputs of
    every op, both layouts and dtypes, bit-identical; run times the same
    within noise (``perf/compare.py``, 6 and 12 rounds) once one copy loop
    got a constant trip count (``pack_filters``). (The private
    helpers too would save as much again, but their own libraries must stay
    optimized: in the process that compiles a kernel, its calls to a helper
    that LLVM did not inline run the helper's own machine code, not the
    kernel's copy; unoptimized, a 1x1 patch-GEMM forward ran 10x slower
    until the process restarted and loaded the kernel from the cache.)
    """

    def __init__(self):
        self._local = threading.local()

    def active(self):
        return self.current() is not None

    def current(self):
        """The innermost of our kernels compiling in this thread, or None."""
        kernels = getattr(self._local, "kernels", None)
        return kernels[-1] if kernels else None

    def on_start(self, ev):
        if getattr(ev.data["dispatcher"], "_numbaconv_kernel", False):
            if not hasattr(self._local, "kernels"):
                self._local.kernels = []
            self._local.kernels.append(ev.data["dispatcher"])

    def on_end(self, ev):
        if getattr(ev.data["dispatcher"], "_numbaconv_kernel", False):
            self._local.kernels.pop()

    @staticmethod
    def wrapper(library):
        return library.name == "parallelgufuncwrapper" or "_GufuncWrapper object" in library.name

    @staticmethod
    def loop_body(library):
        return "__numba_parfor_gufunc" in library.name

    @classmethod
    def link_only(cls, library):
        return cls.wrapper(library) or cls.loop_body(library)


def _link_only_body(*args, **kwargs):
    """Stands for the Python entry point of a parfor loop body (never called)."""
    raise RuntimeError("numbaconv: a parfor loop body has no Python entry point")


_LINK_ONLY_BODY = _link_only_body


def _install_link_only():
    library_class = codegen.JITCodeLibrary
    if getattr(library_class, "_numbaconv_link_only", False):
        return
    listener = _LinkOnlyParforLibraries()
    event.register("numba:compile", listener)
    finalize_final_module = library_class._finalize_final_module

    def _finalize_final_module_link_only(self):
        if not (listener.active() and listener.link_only(self)):
            return finalize_final_module(self)
        # CPUCodeLibrary._finalize_final_module up to the execution engine.
        self._finalize_dynamic_globals()
        self._verify_declare_only_symbols()
        self._numbaconv_deferred = True
        self._finalized = True
        return None

    def _complete(self):
        if self.__dict__.pop("_numbaconv_deferred", False):
            self._finalized = False
            finalize_final_module(self)

    def deferring(method):
        def run(self, *args, **kwargs):
            self._ensure_finalized()
            _complete(self)
            return method(self, *args, **kwargs)
        run.__name__, run.__doc__ = method.__name__, method.__doc__
        return run

    optimize_final_module = library_class._optimize_final_module

    def _optimize_final_module_link_only(self):
        # Optimized where it is linked: once, in the kernel's library.
        if listener.active() and listener.link_only(self):
            return None
        return optimize_final_module(self)

    get_executable = cpu.CPUContext.get_executable

    def _get_executable_link_only(self, library, fndesc, env):
        # Numba builds a Python-callable function for every function it
        # compiles, the parfor loop body too, which only its gufunc wrapper
        # calls: the one thing that would compile the body's library to
        # machine code. Nothing calls it from Python.
        if listener.active() and listener.loop_body(library):
            return _LINK_ONLY_BODY
        return get_executable(self, library, fndesc, env)

    cpu.CPUContext.get_executable = _get_executable_link_only
    library_class._finalize_final_module = _finalize_final_module_link_only
    library_class._optimize_final_module = _optimize_final_module_link_only
    for name in ("get_pointer_to_function", "serialize_using_object_code", "_get_compiled_object"):
        setattr(library_class, name, deferring(getattr(library_class, name)))
    library_class._numbaconv_link_only = True
    library_class._numbaconv_compiling = listener


_install_link_only()


def _scipy_blas_present():
    """Whether SciPy's Cython BLAS module is installed, found without importing ``scipy.linalg``."""
    try:
        spec = importlib.util.find_spec("scipy.linalg")
    except (ImportError, ValueError):
        return False
    locations = (spec and spec.submodule_search_locations) or []
    for location in locations:
        try:
            if any(name.startswith("cython_blas.") for name in os.listdir(location)):
                return True
        except OSError:
            continue
    return False


def _install_lazy_blas_probe():
    """Keep Numba's first compile or cache load from importing ``scipy.linalg``: 0.2 s of a warm start.

    Before its first compile or cache load, Numba imports its NumPy
    implementations (``CPUContext.load_additional_registries``), and
    ``numba.np.arraymath`` probes at import time whether a BLAS is usable
    (``_HAVE_BLAS``, read when ``np.dot`` and friends are typed) by
    importing ``scipy.linalg.cython_blas``: with SciPy installed, 0.21 s of
    the 0.45 s that a warm start's first calls spent (measured with
    cProfile), for kernels that never use BLAS. During that one import the
    probe only looks for the module's file; every later BLAS check (Numba
    runs the real one when it types a BLAS call) is Numba's own. Should
    that file be present but SciPy's BLAS unusable, a user's ``np.dot``
    would fail to compile with Numba's error instead of falling back to a
    loop. Without SciPy nothing changes.
    """
    if getattr(cpu.CPUContext, "_numbaconv_lazy_blas", False):
        return
    load = cpu.CPUContext.load_additional_registries

    def load_additional_registries(self):
        if "numba.np.arraymath" in sys.modules:
            return load(self)
        from numba.np import linalg

        ensure_blas = linalg.ensure_blas

        def probe():
            if not _scipy_blas_present():
                ensure_blas()  # raises ImportError, as Numba's probe expects

        linalg.ensure_blas = probe  # what arraymath imports and calls, once
        try:
            return load(self)
        finally:
            linalg.ensure_blas = ensure_blas

    cpu.CPUContext.load_additional_registries = load_additional_registries
    cpu.CPUContext._numbaconv_lazy_blas = True


_install_lazy_blas_probe()


# Set by the test suite: every direct() call also types its arguments as Numba's
# dispatcher would and fails if they name another overload than its key's.
CHECK_DIRECT_CALLS = os.environ.get("NUMBACONV_CHECK_DIRECT_CALLS") == "1"


_ENTRIES: dict = {}  # (kernel, key) -> the entry point of its overload (or the kernel: see direct)


def _entry_point(kernel, args):
    """The entry point of ``kernel``'s compiled overload for exactly these argument types, or None."""
    overload = kernel.overloads.get(tuple(kernel.typeof_pyval(a) for a in args))
    return None if overload is None else overload.entry_point


def direct(kernel, key, *args):
    """``kernel(*args)`` from a driver, without Numba's argument typing once ``key``'s overload is known.

    Numba's dispatcher types every argument of every call. An Image (a
    named tuple) goes through its Python fallback, about 1.5 us each: a
    patch-GEMM forward call, two Images and 12 integers, took 4.7 us to
    dispatch against 0.7 us through the compiled overload's own entry
    point (measured with a kernel that does nothing), a tenth of a batch-1
    convolution. A call site whose argument types follow from ``key``
    (the compute dtype: the drivers' arrays are C-contiguous and writable,
    their integers ints) calls ``direct(kernel, key, *args)``: the first
    call of a key goes through the dispatcher, which compiles or loads the
    overload, the later ones to that overload's entry point. Where the
    dispatcher ran an overload of other types than the arguments' own (a
    conversion), the key keeps the dispatcher. With
    ``NUMBACONV_CHECK_DIRECT_CALLS=1`` (the test suite's setting) every
    call checks its overload, so a call site whose types vary within a key
    fails the tests. A kernel that is not a dispatcher (no JIT, or a test's
    wrapper) is called as it is.
    """
    entry = _ENTRIES.get((kernel, key))
    if entry is not None and not CHECK_DIRECT_CALLS:
        return entry(*args)
    if not hasattr(kernel, "overloads"):
        return kernel(*args)
    if entry is None:
        result = kernel(*args)
        _ENTRIES[kernel, key] = _entry_point(kernel, args) or kernel
        return result
    if entry is not kernel and _entry_point(kernel, args) is not entry:
        raise AssertionError(f"{kernel.py_func.__name__}: direct call key {key!r} with other argument types "
                             f"than its first call: {tuple(kernel.typeof_pyval(a) for a in args)}")
    return entry(*args)


def kernel(fn=None, *, parallel=True, fastmath=FASTMATH, inline=False, full_width=True):
    """Decorate a kernel: ``@kernel`` or ``@kernel(parallel=False, fastmath=..., inline=..., full_width=...)``.

    ``inline=True`` (serial helpers only): LLVM inlines the helper into
    every kernel that calls it. ``full_width=False``: the kernel keeps
    LLVM's own vector width where it would get 512-bit vectors (give it to
    the helpers it calls too: inlined code takes its caller's). See
    :func:`_install_code_attributes`.
    """
    if fn is None:
        return lambda f: _jit(f, parallel, fastmath, inline, full_width)
    return _jit(fn, parallel, fastmath, inline, full_width)


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
        fn, parallel, fastmath, inline, full_width = _KERNELS[key]
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
            _TWINS[key] = _jit(twin_fn, False, fastmath, inline, full_width, _SerialTwinFunctionCache)
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


def wide_register_file():
    """Whether the code Numba generates here has 32 vector registers (AVX-512), not 16 (AVX2).

    Read from the CPU features Numba compiles for (``NUMBA_CPU_FEATURES``
    when set, else the host's, with ``NUMBA_ENABLE_AVX`` applied), which
    are also part of the key of every cached kernel: a cache made for one
    answer is never loaded where the other holds. AVX-512 gives 32
    registers to 256-bit code too (AVX-512VL), so the answer does not
    depend on the vector width LLVM prefers for the CPU.
    """
    features = numba.config.CPU_FEATURES
    if features is None:
        features = codegen.get_host_cpu_features()
    return "+avx512f" in features.split(",")


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


def _byte_address(builder, arr, offset):
    """The address of ``arr``'s data plus ``offset`` bytes, as an i64 (the intrinsics' loads and stores)."""
    return builder.add(builder.ptrtoint(arr.data, ir.IntType(64)), offset)


def _stream_tile_uncompiled(dst, row, col, tile, rows, cols):
    """What :func:`stream_tile` does, as NumPy (``NUMBA_DISABLE_JIT=1``)."""
    if dst.ndim == 1:  # flat memory: one row, from element row + col
        dst[row + col:row + col + cols] = tile[0, :cols]
        return
    dst[row:row + rows, col:col + cols] = tile[:rows, :cols]


@intrinsic
def _stream_tile(typingctx, dst, row, col, tile, rows, cols):
    """dst[row + r, col:col + cols] = tile[r, :cols] for r < rows (``rows`` and ``cols`` literals), past the caches.

    A flat (1-d) ``dst`` takes one row, from its element ``row + col``.

    Straight-line code: a vector store of each row with LLVM's
    nontemporal hint (``movntps``: the line goes to memory whole, neither
    read into the cache first nor evicting what it holds), which halves
    the memory traffic of results larger than the caches
    (``patch_gemm.STREAM_MIN_BYTES``). The tile is read at constant
    offsets only, so a :func:`register_tile` stays in registers (a loop
    over its rows that LLVM did not unroll left it on the stack), and as
    an intrinsic called directly, not through an ``@overload``, it takes
    no references (whose calls to the runtime made the tile's sums spill
    to the stack around them). Each row's element ``col`` must be 64-byte
    aligned, and the tile's rows whole lines: a line written in pieces by
    tiles far apart in time leaves the write-combining buffer
    unfinished, and partial lines cost more than the reads they save
    (NumPy's allocations are only 16-byte aligned: see
    ``_fast._memory.aligned_empty``).
    """
    if not (isinstance(rows, types.IntegerLiteral) and isinstance(cols, types.IntegerLiteral)):
        return None
    n_rows, width = rows.literal_value, cols.literal_value

    def codegen(context, builder, signature, args):
        dst_arr = context.make_array(signature.args[0])(context, builder, args[0])
        tile_arr = context.make_array(signature.args[3])(context, builder, args[3])
        elem = context.get_data_type(signature.args[0].dtype)
        vector = ir.VectorType(elem, width)
        i64 = ir.IntType(64)
        pitch = builder.extract_value(dst_arr.strides, 0)  # bytes
        row, col = (context.cast(builder, v, t, types.int64)
                    for v, t in zip(args[1:3], signature.args[1:3], strict=True))
        item = ir.Constant(i64, context.get_abi_sizeof(elem))
        first = _byte_address(builder, dst_arr, builder.add(builder.mul(row, pitch), builder.mul(col, item)))
        nontemporal = builder.module.add_metadata([ir.IntType(32)(1)])
        for r in range(n_rows):
            value = ir.Constant(vector, ir.Undefined)
            for q in range(width):
                v = builder.load(builder.gep(tile_arr.data, [ir.Constant(i64, r * width + q)]))
                value = builder.insert_element(value, v, ir.Constant(ir.IntType(32), q))
            target = builder.inttoptr(builder.add(first, builder.mul(ir.Constant(i64, r), pitch)), vector.as_pointer())
            store = builder.store(value, target, align=64)
            store.set_metadata("nontemporal", nontemporal)
        return context.get_dummy_value()

    return types.void(dst, row, col, tile, rows, cols), codegen


# stream_tile(dst, row, col, tile, rows, cols): the intrinsic in compiled kernels, NumPy uncompiled.
stream_tile = _stream_tile_uncompiled if numba.config.DISABLE_JIT else _stream_tile


def _prefetch_uncompiled(data, index):
    """What :func:`prefetch` does uncompiled: nothing (it is a hint)."""


@intrinsic
def _prefetch(typingctx, data, index):
    """Asks the CPU to bring the cache line of ``data[index]`` (a 1-d array) into its caches, and returns.

    LLVM's ``llvm.prefetch`` (a read, kept in all cache levels: x86's
    ``prefetcht0``). A hint: it never faults, so an index past the array
    reads nothing and costs nothing but the instruction. For reads the
    hardware prefetchers do not foresee: short runs of memory far apart
    (``patch_gemm._pack_columns``).
    """
    if not (isinstance(data, types.Array) and data.ndim == 1 and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        i32 = ir.IntType(32)
        index = context.cast(builder, args[1], signature.args[1], types.int64)
        offset = builder.mul(index, builder.extract_value(arr.strides, 0))  # (bytes)
        address = builder.inttoptr(_byte_address(builder, arr, offset), ir.IntType(8).as_pointer())
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [address.type, i32, i32, i32]), "llvm.prefetch.p0")
        builder.call(fn, [address, i32(0), i32(3), i32(1)])  # read, keep in every level, data
        return context.get_dummy_value()

    return types.void(data, index), codegen


# prefetch(data, index): the intrinsic in compiled kernels, a no-op uncompiled.
prefetch = _prefetch_uncompiled if numba.config.DISABLE_JIT else _prefetch


def _store_transposed_uncompiled(dst, start, step, even, odd, row0, col0, bias, b0, size):
    """What :func:`store_transposed` does, as NumPy (``NUMBA_DISABLE_JIT=1``)."""
    bad = 0
    for j in range(size):
        run = dst[start + j * step:start + j * step + size]
        run[0::2] = even[row0:row0 + size // 2, col0 + j] + bias[b0 + j]
        run[1::2] = odd[row0:row0 + size // 2, col0 + j] + bias[b0 + j]
        bad += int(np.count_nonzero(~(np.abs(run) < np.inf)))
    return bad


@intrinsic
def _store_transposed(typingctx, dst, start, step, even, odd, row0, col0, bias, b0, size):
    """dst[start + j * step + i] = B[i, j] + bias[b0 + j] for i, j < size: a block B transposed, as vectors.

    Returns how many of the values it stored are not finite.

    B's rows alternate between two arrays: row i is ``even[row0 + i //
    2, col0:col0 + size]`` for even i, ``odd``'s for odd i (Winograd's
    two output columns of a row of tiles, ``winograd._store_rows``; the
    same array twice for a plain block). So a block of ``size`` pixels'
    ``size`` channels becomes, for each channel, one run of its pixels:
    the NCHW store of values computed a pixel at a time. ``dst`` is flat
    memory, ``even`` and ``odd`` 2-d, ``bias`` 1-d, all C-contiguous
    arrays of one dtype; ``size`` a literal power of two.

    B's rows are loaded as vectors and the bias added to each; log2(size)
    rounds of two-source shuffles transpose it in registers (round s
    swaps the off-diagonal s x s blocks of every 2s x 2s block: rows i and
    i + s trade their columns c with c & s set for those of i + s with c &
    s clear); each result row is one vector store. (A scatter a value at
    a time, each run's values a row of the source apart, took 1.4-2.6
    times as long: ``winograd._store_rows``.)
    """
    if not isinstance(size, types.IntegerLiteral):
        return None
    arrays = (dst, even, odd, bias)
    if not (all(isinstance(a, types.Array) and a.layout == "C" and a.dtype == dst.dtype for a in arrays)
            and (dst.ndim, even.ndim, odd.ndim, bias.ndim) == (1, 2, 2, 1)):
        return None
    n = size.literal_value
    if n < 2 or n & (n - 1):
        return None

    def codegen(context, builder, signature, args):
        dst_arr, even_arr, odd_arr, bias_arr = (context.make_array(signature.args[k])(context, builder, args[k])
                                                for k in (0, 3, 4, 7))
        elem = context.get_data_type(signature.args[0].dtype)
        vector = ir.VectorType(elem, n)
        i64, i32 = ir.IntType(64), ir.IntType(32)
        item = ir.Constant(i64, context.get_abi_sizeof(elem))
        start, step, row0, col0, b0 = (context.cast(builder, args[k], signature.args[k], types.int64)
                                       for k in (1, 2, 5, 6, 8))

        def load(arr, offset):
            return builder.load(builder.inttoptr(_byte_address(builder, arr, offset), vector.as_pointer()), align=4)

        bias = load(bias_arr, builder.mul(b0, item))
        counts = ir.VectorType(i32, n)
        fabs = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector, [vector]),
                                              f"llvm.fabs.v{n}{'f32' if elem == ir.FloatType() else 'f64'}")
        inf = ir.Constant(vector, [float("inf")] * n)
        bad = ir.Constant(counts, [0] * n)
        rows = []
        for i in range(n):
            arr = odd_arr if i % 2 else even_arr
            row = builder.add(row0, ir.Constant(i64, i // 2))
            offset = builder.add(builder.mul(row, builder.extract_value(arr.strides, 0)), builder.mul(col0, item))
            value = builder.fadd(load(arr, offset), bias)
            # Not finite: not |value| < inf (NaN compares false), counted lane by lane.
            finite = builder.fcmp_ordered("<", builder.call(fabs, [value]), inf)
            bad = builder.add(bad, builder.zext(builder.not_(finite), counts))
            rows.append(value)
        s = n // 2
        while s >= 1:
            low = ir.Constant(ir.VectorType(i32, n), [c if c & s == 0 else n + c - s for c in range(n)])
            high = ir.Constant(ir.VectorType(i32, n), [c + s if c & s == 0 else n + c for c in range(n)])
            for i in range(n):
                if i & s == 0:
                    a, b = rows[i], rows[i + s]
                    rows[i], rows[i + s] = builder.shuffle_vector(a, b, low), builder.shuffle_vector(a, b, high)
            s //= 2
        first = _byte_address(builder, dst_arr, builder.mul(start, item))
        stride = builder.mul(step, item)
        for j in range(n):
            target = builder.add(first, builder.mul(ir.Constant(i64, j), stride))
            builder.store(rows[j], builder.inttoptr(target, vector.as_pointer()), align=4)
        total = builder.extract_element(bad, i32(0))
        for lane in range(1, n):
            total = builder.add(total, builder.extract_element(bad, i32(lane)))
        return builder.sext(total, i64)

    return types.int64(dst, start, step, even, odd, row0, col0, bias, b0, size), codegen


# store_transposed(dst, start, step, even, odd, row0, col0, bias, b0, size): the intrinsic compiled,
# NumPy uncompiled.
store_transposed = _store_transposed_uncompiled if numba.config.DISABLE_JIT else _store_transposed


# A string attribute, which llvmlite's attribute set does not list: added
# to the set as it is, and printed as it is into the function's definition.
_PREFER_512_BIT = '"prefer-vector-width"="512"'


def _install_code_attributes():
    """LLVM function attributes for the code of our kernels: 512-bit vectors, and inlined helpers.

    **512-bit vectors wherever the CPU has AVX-512.** LLVM tunes its Intel
    AVX-512 CPUs (Skylake-SP to Granite Rapids) to prefer 256-bit vectors,
    for the clock drop 512-bit code cost on the first of them, and AMD's
    Zen 4 and 5 not; oneDNN, the frameworks' kernels, runs 512-bit code on
    both. Every function compiled while one of our kernels compiles gets
    ``"prefer-vector-width"="512"``, which overrides the tuning for that
    function only (users' own Numba code keeps LLVM's choice), so the
    register tiles hold 16 float32 per register on every AVX-512 machine
    and span two panels (``patch_gemm.PANELS``). Measured on a 2-core Intel
    Xeon with AVX-512 (LLVM's ``rocketlake``), ``perf/compare.py``, one
    core, CPU time, 6 rounds, 512-bit code with two panels over 256-bit
    with one: the ResNet-50 1x1 layer 8x56x56x64 -> 256 forward 0.76 and
    backward 0.78, AlexNet's 8x27x27x64 5x5 -> 192 0.83 and 0.77, ResNet's
    32x56x56x64 3x3 0.87 and 0.86, 1x7x7x512 3x3 0.88 and 0.90, the
    seed's 7x7 test shape 0.84 and 0.88, the seed 0.83 and 1.03; pooling
    and LRN 0.84-1.02; the batch-1 seed layer 1.03 and 1.08 (12 rounds).
    512-bit code with one panel was no faster than 256-bit code (one
    process each, 2 threads: 1x1 forward 4.6-5.4 ms against 4.9-9.4,
    AlexNet's backward 41-43 against 43-45). One kernel keeps LLVM's
    width (``@kernel(full_width=False)``): the plane kernel's filter
    gradient, whose 4 x 4 tile of dot products ends every pass with
    horizontal sums, twice as long in 512-bit vectors (the seed's filter
    gradient, one core, 1.06-1.20 of the 256-bit time; with the kernel
    kept at 256 bits, the seed's whole backward 0.95 of the all-512-bit
    time, ``perf/compare.py``, 10 rounds).

    **Inlined helpers** (``@kernel(parallel=False, inline=True)``): in the
    process that compiles a kernel, a call to a helper that LLVM did not
    inline runs the helper's own machine code, optimized in its own library,
    not the kernel's copy, which is what the cache holds (see
    :class:`_LinkOnlyParforLibraries`). Those can differ a lot: the taps
    filter gradient's two-panel tile (``filter_taps._tap_tile``) kept its
    sums on the stack in its own library, and AlexNet's filter gradient
    took 146-151 ms in the process that compiled it against 15-18 ms
    loaded from the cache. ``alwaysinline`` on the helper's own function
    (not on its Python wrapper) leaves no call: 18-20 ms cold.
    """
    library_class = codegen.JITCodeLibrary
    if getattr(library_class, "_numbaconv_code_attributes", False):
        return
    listener = library_class._numbaconv_compiling
    add_ir_module = library_class.add_ir_module
    prefer_512 = wide_register_file()

    def add_ir_module_with_attributes(self, ir_module):
        compiling = listener.current()
        if compiling is not None:
            *_, inline, full_width = _KERNELS[id(compiling)]
            full_width = full_width and prefer_512
            for fn in ir_module.functions:
                if fn.is_declaration:
                    continue
                if full_width:
                    set.add(fn.attributes, _PREFER_512_BIT)
                if inline and not fn.name.startswith(("_ZN7cpython", "cfunc.")):
                    fn.attributes.add("alwaysinline")
        return add_ir_module(self, ir_module)

    library_class.add_ir_module = add_ir_module_with_attributes
    library_class._numbaconv_code_attributes = True


_install_code_attributes()


# ------------------------------------------------------------ claimed work units
#
# A kernel's prange runs one iteration per thread (``workers``), and each
# iteration claims the kernel's work units one at a time from a shared
# counter (``claim_unit``) until none is left:
#
#     claims = np.zeros(1, np.int64)
#     for _ in prange(workers(units)):
#         for unit in claimed_units(claims, units):
#             ...                       # unit's work, as a prange iteration's
#
# Numba's prange hands each thread a fixed, equal share of the iterations
# (GNU OpenMP's static schedule; ``parallel_chunksize`` only cuts the shares
# into chunks, handed out the same way). On a busy machine a thread that
# lost its CPU to another process then holds half the call's work until the
# scheduler runs it again, and the call waits for it. Beside one busy
# process, a 1.75 ms two-thread call of 64 equal units (GOMP_SPINCOUNT=3000,
# its worker kept off the caller's CPU: ``_threads.WorkerPlacement``) took
# a median 2.5-2.7 ms and a mean 3.8 with fixed shares, 1.8 and 2.9 with
# claimed units (``perf/README.md`` has the kernels' figures). A unit's result must
# not depend on which thread runs it (each unit owns its outputs and
# scratch), so results stay bit-identical at any thread count.


@intrinsic
def _num_threads_compiled(typingctx):
    """The calling thread's Numba thread count, as the parfors read it.

    ``numba.get_num_threads()`` compiled calls the threading layer through
    a ctypes pointer, which Numba cannot cache; this calls its C function
    by the symbol that loading the layer registers (as Numba's parfor code
    does), which it can.
    """
    _launch_threads()

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(cgutils.intp_t, []), "get_num_threads")
        return builder.call(fn, [])

    return types.intp(), codegen


# The calling thread's Numba thread count, in kernels compiled or not.
_num_threads = numba.get_num_threads if numba.config.DISABLE_JIT else _num_threads_compiled


@register_jitable
def workers(units):
    """Iterations of a claiming prange: one per thread, and no more than the units."""
    return max(1, min(_num_threads(), units))


@intrinsic
def _claim_unit(typingctx, claims):
    """``claims[0]``, then adds 1 to it, as one atomic step (LLVM ``atomicrmw add``)."""
    if not (isinstance(claims, types.Array) and claims.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        # Monotonic: only the count itself must be atomic. What a unit
        # writes is read after the parallel region, whose end orders it.
        return builder.atomic_rmw("add", arr.data, ir.Constant(ir.IntType(64), 1), "monotonic")

    return types.int64(claims), codegen


def _claim_unit_uncompiled(claims):
    """What :func:`claim_unit` does, in Python (``NUMBA_DISABLE_JIT=1``: prange runs as range)."""
    unit = claims[0]  # an int64, as compiled: kernels' address arithmetic wraps as in C
    claims[0] = unit + 1
    return unit


# claim_unit(claims): the next unclaimed unit; the intrinsic in compiled kernels, Python uncompiled.
claim_unit = _claim_unit_uncompiled if numba.config.DISABLE_JIT else _claim_unit


@register_jitable
def claimed_units(claims, units):
    """The units below ``units`` that one worker claims, one at a time, until none is left.

    (A generator: compiled, its state is a small struct in the worker's
    loop, and the unit's work stays in the kernel's own code.)
    """
    while True:
        unit = claim_unit(claims)
        if unit >= units:
            return
        yield unit


@intrinsic
def _gettid(typingctx):
    """The calling thread's Linux thread id (glibc's ``gettid``, by symbol: cacheable)."""

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "gettid")
        return builder.sext(builder.call(fn, []), ir.IntType(64))

    return types.int64(), codegen


@kernel
def team_thread_ids(out):
    """out[i] = the Linux thread id of the thread that runs prange iteration i (``_threads.WorkerPlacement``).

    With as many iterations as threads, Numba's static schedule gives
    iteration i to thread i of the calling thread's team: out[0] is the
    caller, the rest its worker threads.
    """
    for i in prange(out.size):
        out[i] = _gettid()
