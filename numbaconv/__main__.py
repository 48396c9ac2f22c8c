"""``python -m numbaconv warmup | info``: compile the kernels ahead of use, or describe the set-up.

``python -m numbaconv warmup [--dtypes float32,float64]`` compiles (or loads
from the cache) every kernel, one line per step; ``python -m numbaconv info``
prints versions, the CPU, the threading layer and the kernel cache.
"""
import argparse
import os
import platform
import sys
import tempfile

import numpy as np


def _say(line):
    print(line, flush=True)


def warmup_command(args):
    """``warmup``: every kernel for ``--dtypes``, a progress line per step."""
    from . import _warmup

    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    try:
        parsed = [np.dtype(d) for d in dtypes]
    except TypeError as err:
        raise SystemExit(f"numbaconv warmup: --dtypes: {err}") from None
    _say(f"numbaconv warmup: {', '.join(d.name for d in parsed)}; kernel cache: {cache_dir()[0]}")
    seconds = _warmup.run(parsed, report=_say)
    _say(f"numbaconv warmup: done in {seconds:.1f} s")
    return 0


# ------------------------------------------------------------------ info


def cpu_name():
    """The CPU model (from /proc/cpuinfo where there is one) and LLVM's name for its architecture."""
    import llvmlite.binding as llvm

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return model, llvm.get_host_cpu_name()


def cache_dir():
    """(directory, writable): where this process's kernels are cached (None when nowhere)."""
    from . import _warmup

    for dispatcher in _warmup.kernels().values():
        cache = getattr(dispatcher, "_cache", None)
        path = getattr(cache, "cache_path", None)
        if path:
            return path, _writable(path)
    return None, False


def _writable(path):
    """Whether a file can be created in ``path`` (created if missing, as Numba does)."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def cached_kernels():
    """{kernel: sorted float dtypes with a cache entry this process can load} (empty lists too)."""
    from numba.core import types
    from numba.core.registry import cpu_target

    from . import _warmup

    codegen = cpu_target.target_context.codegen()
    found = {}
    for name, dispatcher in sorted(_warmup.kernels().items()):
        cache = getattr(dispatcher, "_cache", None)
        dtypes: set[str] = set()
        if cache is not None and hasattr(cache, "_cache_file"):
            # Numba's own index (keyed by signature, CPU and bytecode hash); an
            # index written by another Numba version or for other source is empty.
            for key in cache._cache_file._load_index():
                sig, magic, code_hash = key
                if magic != codegen.magic_tuple() or code_hash != cache._index_key(sig, codegen)[2]:
                    continue
                dtypes.update(str(t.dtype) for t in _flat_types(sig)
                              if isinstance(t, types.Array) and isinstance(t.dtype, types.Float))
        found[name] = sorted(dtypes)
    return found


def _flat_types(sig):
    from numba.core import types

    for t in sig:
        if isinstance(t, types.BaseTuple):  # type: ignore[attr-defined]
            yield from _flat_types(t.types)
        else:
            yield t


def threading():
    """(layer, threads): Numba's threading layer (started here if need be) and its thread count."""
    import numba

    try:
        from numba.np.ufunc import parallel

        parallel._launch_threads()  # what the first parallel kernel call does; compiles nothing
        layer = numba.threading_layer()
    except Exception as err:  # noqa: BLE001 - report any failure to start a layer, don't crash
        layer = f"unavailable ({err})"
    return layer, numba.get_num_threads()


def info_lines():
    """The ``info`` report, as lines of ``key: value`` and then one line per kernel."""
    import llvmlite
    import numba

    import numbaconv
    from numbaconv import _threads

    model, llvm_cpu = cpu_name()
    layer, threads = threading()
    path, writable = cache_dir()
    lines = [
        f"numbaconv: {numbaconv.__version__} ({os.path.dirname(numbaconv.__file__)})",
        f"python: {platform.python_version()} ({sys.executable})",
        f"numpy: {np.__version__}",
        f"numba: {numba.__version__}",
        f"llvmlite: {llvmlite.__version__}",
        f"platform: {platform.platform()}",
        f"cpu: {model} (LLVM target {llvm_cpu}, {os.cpu_count()} logical CPUs)",
        f"threading layer: {layer}",
        f"threads: {threads}",
        f"openmp wait: {_threads.openmp_wait()}",
        f"serial below: {_threads.SERIAL_BELOW_NS / 1000:g} us of estimated work",
        f"NUMBA_CACHE_DIR: {os.environ.get('NUMBA_CACHE_DIR') or '(not set)'}",
        f"cache directory: {path or '(none: kernels are not cached)'}",
        f"cache writable: {'yes' if writable else 'no'}",
    ]
    kernels = cached_kernels()
    n_cached = sum(bool(d) for d in kernels.values())
    lines.append(f"kernels cached: {n_cached} of {len(kernels)}")
    width = max(map(len, kernels), default=0)
    for name, dtypes in kernels.items():
        lines.append(f"  {name:<{width}}  {', '.join(dtypes) if dtypes else '-'}")
    return lines


def info_command(args):
    """``info``: print :func:`info_lines`."""
    for line in info_lines():
        _say(line)
    return 0


def main(argv=None):
    """Parse the command line and run the command; the exit status."""
    p = argparse.ArgumentParser(prog="python -m numbaconv", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("warmup", help="compile (or load from the cache) every kernel, with progress")
    w.add_argument("--dtypes", default="float32,float64",
                   help="comma-separated compute dtypes (default: float32,float64)")
    w.set_defaults(run=warmup_command)
    i = sub.add_parser("info", help="versions, CPU, threads, the kernel cache and what it holds")
    i.set_defaults(run=info_command)
    args = p.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
