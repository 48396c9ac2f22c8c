"""What the package promises about Numba itself: no compilation at import, one
compiled variant per kernel and dtype, a cache outside the installed package,
and kernels that still work when no cache location is writable (numba#1771)."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_python(code, cwd=None, **env):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=600, cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_import_compiles_nothing():
    out = run_python("""
        import numba.core.registry, numbaconv, numbaconv._kernels as k, pkgutil, importlib
        compiled = []
        for info in pkgutil.iter_modules(k.__path__):
            mod = importlib.import_module(f"numbaconv._kernels.{info.name}")
            for name, obj in vars(mod).items():
                if hasattr(obj, "signatures") and obj.signatures:
                    compiled.append(name)
        print("COMPILED", compiled)
    """, NUMBA_DISABLE_JIT="0").stdout
    assert "COMPILED []" in out


def test_no_cache_location_falls_back_to_uncached_kernels():
    # As root every directory is writable, so simulate what Numba meets when no
    # cache location is: it raises RuntimeError when a cached kernel is defined.
    result = run_python("""
        import warnings
        warnings.simplefilter("always")
        from numba.core import caching
        caching.CacheImpl._locator_classes = []
        import numpy as np, numbaconv, numbaconv.reference as ref
        x = np.arange(2 * 5 * 5 * 3, dtype=np.float32).reshape(2, 5, 5, 3)
        w = np.ones((3, 3, 3, 4), np.float32)
        np.testing.assert_allclose(numbaconv.conv2d(x, w, padding=1), ref.conv2d(x, w, padding=1), rtol=1e-5)
        print("OK")
    """, NUMBA_DISABLE_JIT="0")
    assert "OK" in result.stdout
    assert "will not be cached" in result.stderr  # announced, not silent


# Every entry kernel the drivers call, by module.
ENTRY_KERNELS = {
    "convolution": ["conv2d_nhwc", "conv2d_backward_filter_nhwc", "bias_backward_rows"],
    "patch_gemm": ["conv2d_patch_gemm", "pack_filters", "pack_patch_columns", "conv2d_backward_filter_patch_gemm"],
    "filter_taps": ["conv2d_backward_filter_taps"],
    "patches": ["im2col_nhwc", "col2im_nhwc"],
    "pooling": ["max_pool2d_nhwc", "scatter_at_argmax", "avg_pool2d_nhwc"],
    "normalization": ["local_response_norm"],
}


def test_one_compiled_variant_per_kernel_and_dtype_whatever_the_input_flags():
    # Read-only, Fortran-ordered, strided and NCHW inputs (in both memory
    # orders) must all reach the kernels as the same Numba types: a second
    # signature would mean a second compilation (seconds) for some callers.
    out = run_python("""
        import importlib, json
        import numpy as np, numbaconv as nc

        def variants(a):
            read_only = a.copy(); read_only.flags.writeable = False
            strided = np.repeat(a, 2, axis=-1)[..., ::2]
            return [a, read_only, np.asfortranarray(a), strided]

        def run(x, w, fmt):
            kw = dict(padding=1, data_format=fmt)
            c_out = w.shape[3] if fmt == "NHWC" else w.shape[0]
            y = nc.conv2d(x, w, np.linspace(-1, 1, c_out, dtype=x.dtype), **kw)
            nc.conv2d_backward(y, x, w, **kw)
            nc.conv2d_transpose(y, w, **kw)
            nc.conv2d_transpose_backward(x, y, w, **kw)
            nc.col2im(nc.im2col(x, 3, **kw), x.shape, 3, **kw)
            nc.max_pool2d(x, 2, data_format=fmt)
            p, argmax = nc.max_pool2d_argmax(x, 2, data_format=fmt)
            for dy in variants(p):
                nc.max_pool2d_backward(dy, argmax, x.shape, data_format=fmt)
                nc.max_unpool2d(dy, argmax, x.shape, data_format=fmt)
                nc.avg_pool2d_backward(dy, x.shape, 2, data_format=fmt)
                nc.adaptive_avg_pool2d_backward(dy, x.shape, data_format=fmt)
            nc.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, data_format=fmt)
            nc.adaptive_avg_pool2d(x, (2, 3), data_format=fmt)
            nc.max_pool2d_argmax(x, 2, dilation=2, ceil_mode=True, data_format=fmt)
            nc.lrn(x, depth_radius=1, data_format=fmt)
            nc.lrn_backward(x, x, depth_radius=1, data_format=fmt)

        for dtype in (np.float32, np.float64):
            # Narrow layers (the plane kernels) and wide ones (the patch GEMM; into 32
            # channels the filter gradient by taps, into 80 by the patch GEMM).
            for c_in, c_out in ((3, 2), (16, 32), (16, 80)):
                x = np.arange(2 * 5 * 6 * c_in, dtype=dtype).reshape(2, 5, 6, c_in) / 50
                w = np.linspace(-1, 1, 3 * 3 * c_in * c_out, dtype=dtype).reshape(3, 3, c_in, c_out)
                for xv, wv in zip(variants(x), variants(w)):
                    run(xv, wv, "NHWC")
                    run(np.ascontiguousarray(xv.transpose(0, 3, 1, 2)), wv.transpose(3, 2, 0, 1),
                        "NCHW")
                    run(xv.transpose(0, 3, 1, 2), wv.transpose(3, 2, 0, 1), "NCHW")
                    # Batch 1: the filter read in place (NHWC), W @ patches (NCHW): 80 channels
                    # are whole panels and whole register tiles of either height (PIX 5 or 8).
                    if c_out == 80:
                        run(xv[:1], wv, "NHWC")
                        run(xv[:1].transpose(0, 3, 1, 2), wv.transpose(3, 2, 0, 1), "NCHW")
        counts = {}
        for module in ("convolution", "patch_gemm", "filter_taps", "patches", "pooling", "normalization"):
            mod = importlib.import_module(f"numbaconv._kernels.{module}")
            for name, obj in vars(mod).items():
                if hasattr(obj, "signatures"):
                    counts[f"{module}.{name}"] = [str(sig) for sig in obj.signatures]
        print("SIGNATURES", json.dumps(counts))
    """, NUMBA_DISABLE_JIT="0").stdout
    signatures = json.loads(out.split("SIGNATURES", 1)[1])
    for module, names in ENTRY_KERNELS.items():
        for name in names:
            sigs = signatures[f"{module}.{name}"]
            assert len(sigs) == 2, (name, sigs)  # one per dtype
            assert any("float32" in s for s in sigs) and any("float64" in s for s in sigs), sigs
    # (Helpers the kernels call, such as convolution._copy_block, are compiled per
    # call site inside a kernel, with literal arguments: that count does not
    # depend on the caller's arrays, and is not checked here.)


CACHE_CHECK = """
    import numpy as np, numbaconv
    from numbaconv._kernels import pooling
    numbaconv.max_pool2d(np.ones((1, 4, 4, 1), np.float32), 2)
    print("HITS", sum(pooling.max_pool2d_nhwc.stats.cache_hits.values()))
"""


def _installed_copy(tmp_path):
    """The package as pip would install it: a copy in a site-packages of its own."""
    site = tmp_path / "site-packages"
    shutil.copytree(ROOT / "numbaconv", site / "numbaconv",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return site


def _cache_files(path):
    return sorted(p.name for p in path.rglob("*") if p.suffix in (".nbi", ".nbc"))


def test_kernels_cache_in_the_user_cache_never_in_the_installed_package(tmp_path):
    # So that `pip uninstall numbaconv` leaves no compiled files behind.
    site, user_cache = _installed_copy(tmp_path), tmp_path / "user-cache"
    env = dict(PYTHONPATH=str(site), XDG_CACHE_HOME=str(user_cache), NUMBA_CACHE_DIR="",
               NUMBA_DISABLE_JIT="0")
    first = run_python(CACHE_CHECK, cwd=tmp_path, **env).stdout
    second = run_python(CACHE_CHECK, cwd=tmp_path, **env).stdout
    assert _cache_files(site) == []
    assert any(name.startswith("pooling.max_pool2d_nhwc") for name in _cache_files(user_cache / "numba"))
    assert "HITS 0" in first and "HITS 1" in second  # the second process loads, not compiles


def test_an_edit_to_any_module_makes_every_cached_kernel_stale(tmp_path):
    """A kernel holds compiled code and constants of other modules (a stale callee wrote past its buffers)."""
    site, cache_dir = _installed_copy(tmp_path), tmp_path / "cache"
    env = dict(PYTHONPATH=str(site), NUMBA_CACHE_DIR=str(cache_dir), NUMBA_DISABLE_JIT="0")
    assert "HITS 0" in run_python(CACHE_CHECK, cwd=tmp_path, **env).stdout
    assert "HITS 1" in run_python(CACHE_CHECK, cwd=tmp_path, **env).stdout
    other = site / "numbaconv" / "_kernels" / "patch_gemm.py"  # pooling's kernels do not call it
    other.write_text(other.read_text() + "# edited\n")
    assert "HITS 0" in run_python(CACHE_CHECK, cwd=tmp_path, **env).stdout  # recompiled
    assert "HITS 1" in run_python(CACHE_CHECK, cwd=tmp_path, **env).stdout


def test_numba_cache_dir_is_honoured(tmp_path):
    site, cache_dir = _installed_copy(tmp_path), tmp_path / "numba-cache-dir"
    run_python(CACHE_CHECK, cwd=tmp_path, PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "unused"),
               NUMBA_CACHE_DIR=str(cache_dir), NUMBA_DISABLE_JIT="0")
    assert _cache_files(site) == [] and not (tmp_path / "unused").exists()
    assert any(name.startswith("pooling.max_pool2d_nhwc") for name in _cache_files(cache_dir))


def test_parfor_link_only_libraries_are_ours_only(tmp_path):
    """Our kernels' intermediate parfor libraries (loop body, wrappers) are neither optimized nor
    compiled to machine code on their own (the kernel's library optimizes their code); users' are."""
    out = run_python("""
        import json, numba, numpy as np
        from numba.core import codegen
        import numbaconv as nc
        engine_adds, optimized, optimizing = [], [], []
        add = codegen.JITCPUCodegen._add_module
        def spy(self, module):
            engine_adds.append(module.name)
            return add(self, module)
        codegen.JITCPUCodegen._add_module = spy
        # A library's whole-module optimization asks the codegen for a module pass manager.
        optimize = codegen.JITCodeLibrary._optimize_final_module
        def spy_optimize(self):
            optimizing.append(self.name)
            try:
                return optimize(self)
            finally:
                optimizing.pop()
        codegen.JITCodeLibrary._optimize_final_module = spy_optimize
        pass_manager = codegen.JITCPUCodegen._module_pass_manager
        def spy_pass_manager(self, **kwargs):
            if optimizing and optimizing[-1] not in optimized:
                optimized.append(optimizing[-1])
            return pass_manager(self, **kwargs)
        codegen.JITCPUCodegen._module_pass_manager = spy_pass_manager
        x = np.arange(32, dtype=np.float32).reshape(1, 4, 4, 2)
        pooled = nc.max_pool2d(x, 2)
        ours, ours_optimized = list(engine_adds), list(optimized)
        del engine_adds[:], optimized[:]
        @numba.njit(parallel=True)
        def users(a):
            out = np.empty_like(a)
            for i in numba.prange(a.size):
                out[i] = a[i] * 2
            return out
        doubled = users(np.arange(5.0))
        print(json.dumps({"ours": ours, "users": list(engine_adds), "pooled": pooled.ravel().tolist(),
                          "doubled": doubled.tolist(), "ours_optimized": ours_optimized,
                          "users_optimized": list(optimized)}))
    """, NUMBA_CACHE_DIR=str(tmp_path))
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["pooled"] == [10.0, 11.0, 14.0, 15.0, 26.0, 27.0, 30.0, 31.0]
    assert seen["doubled"] == [0.0, 2.0, 4.0, 6.0, 8.0]
    wrappers = ("parallelgufuncwrapper", "_GufuncWrapper object")

    def intermediate(names):
        return [m for m in names if m.startswith(wrappers) or wrappers[1] in m or "__numba_parfor_gufunc" in m]

    assert "max_pool2d_nhwc" in seen["ours"] and "max_pool2d_nhwc" in seen["ours_optimized"]
    assert not intermediate(seen["ours"]) and not intermediate(seen["ours_optimized"])
    for names in (seen["users"], seen["users_optimized"]):
        assert [m for m in names if "__numba_parfor_gufunc" in m]
        assert "parallelgufuncwrapper" in names
        assert [m for m in names if wrappers[1] in m]


def test_first_kernel_call_does_not_import_scipy_linalg_and_blas_still_works(tmp_path):
    # Numba's BLAS probe imports scipy.linalg (0.2 s of a warm start); numbaconv's
    # kernels never use BLAS, and a user's np.dot must still compile and run.
    pytest.importorskip("scipy")
    code = """
        import sys
        import numba, numpy as np, numbaconv
        numbaconv.max_pool2d(np.ones((1, 4, 4, 2), np.float32), 2)
        print("LINALG", "scipy.linalg" in sys.modules)

        @numba.njit
        def dot(a, b):
            return np.dot(a, b)

        print("DOT", dot(np.ones((2, 3)), np.ones((3, 2))).sum())
    """
    for _ in range(2):  # cold, then loaded from the cache
        out = run_python(code, NUMBA_CACHE_DIR=str(tmp_path)).stdout
        assert "LINALG False" in out and "DOT 12.0" in out


@pytest.mark.parametrize(("cpu", "features", "rows", "panels"), [
    ("znver5", "+avx,+avx2,+fma,+avx512f,+avx512vl", 8, 2),
    ("icelake-server", "+avx,+avx2,+fma,+avx512f,+avx512vl", 8, 2),
    ("haswell", "+avx,+avx2,+fma,-avx512f", 5, 1),
])
def test_the_register_tile_follows_the_vector_registers_numba_compiles_for(tmp_path, cpu, features, rows, panels):
    """8 rows with AVX-512's 32 vector registers, 5 with AVX2's 16; two panels with AVX-512.

    Read from the CPU features Numba compiles for. Intel's AVX-512 CPUs get
    two panels too: our kernels are compiled to 512-bit vectors there
    (see the next test). Only the AVX2 code runs here (a machine without
    AVX-512 cannot run the others); the whole suite runs the tile this
    machine gets.
    """
    out = run_python(f"""
        import numpy as np, numbaconv as nc
        from numbaconv._kernels import patch_gemm
        from numbaconv import reference as ref
        print("TILE", patch_gemm.PIX, patch_gemm.PANELS)
        if {rows} == 5:
            x = np.random.default_rng(0).standard_normal((2, 9, 9, 64)).astype(np.float32)
            w = np.random.default_rng(1).standard_normal((1, 1, 64, 40)).astype(np.float32)
            np.testing.assert_allclose(nc.conv2d(x, w), ref.conv2d(x, w), rtol=1e-4, atol=1e-4)
            print("checked")
    """, NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES=features, NUMBA_CACHE_DIR=str(tmp_path)).stdout
    assert f"TILE {rows} {panels}" in out
    assert ("checked" in out) == (rows == 5)


@pytest.mark.parametrize(("cpu", "features", "ours"), [
    ("icelake-server", "+avx,+avx2,+fma,+avx512f,+avx512vl", True),
    ("znver4", "+avx,+avx2,+fma,+avx512f,+avx512vl", True),
    ("haswell", "+avx,+avx2,+fma,-avx512f", False),
])
def test_kernels_get_512_bit_vectors_on_every_avx512_cpu_and_users_code_keeps_llvms_choice(tmp_path, cpu,
                                                                                          features, ours):
    """``"prefer-vector-width"="512"`` on the code of our kernels only (``_numba._install_code_attributes``).

    LLVM tunes Intel's AVX-512 CPUs (here Ice Lake) for 256-bit vectors:
    a user's own loop stays 256-bit there, ours is 512-bit (zmm
    registers), unless declared ``full_width=False``. Compiled only, never
    run: the machine may lack AVX-512.
    """
    out = run_python("""
        import numba
        from numbaconv._numba import kernel

        def scale(a, s):
            for i in range(a.shape[0]):
                a[i] *= s

        sig = (numba.float32[::1], numba.float32)
        for name, fn in (("OURS", kernel(parallel=False)(scale)), ("USERS", numba.njit(scale)),
                         ("KEPT", kernel(parallel=False, full_width=False)(scale))):
            fn.compile(sig)
            print(name, "zmm" in fn.inspect_asm(sig))
    """, NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES=features, NUMBA_CACHE_DIR=str(tmp_path)).stdout
    assert f"OURS {ours}" in out
    if cpu == "icelake-server":  # LLVM's width, for users' code and full_width=False kernels
        assert "USERS False" in out and "KEPT False" in out


def test_the_taps_tile_is_inlined_so_the_compiling_process_runs_the_cached_code(tmp_path):
    """``_tap_tile`` is ``inline=True``: the taps kernel calls no separately compiled tile.

    A call would run, in the process that compiled the kernel, the tile's
    own machine code, not the kernel's copy that the cache holds (10x
    slower where the tile spans two panels, ``_numba._install_code_attributes``).
    A fresh cache directory: the kernel compiles here, and its code can be read.
    """
    out = run_python("""
        import numpy as np, numbaconv as nc
        from numbaconv import reference as ref
        from numbaconv._kernels import filter_taps

        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 9, 9, 128)).astype(np.float32)  # by taps (the strategy tests' rule grid)
        dy = rng.standard_normal((2, 9, 9, 32)).astype(np.float32)
        dw = nc.conv2d_backward_filter(dy, x, (3, 3, 128, 32), padding=1)
        want = ref.conv2d_backward_filter(dy.astype(np.float64), x.astype(np.float64), (3, 3, 128, 32), padding=1)
        np.testing.assert_allclose(dw, want, rtol=1e-4, atol=1e-3)
        (sig,) = filter_taps.conv2d_backward_filter_taps.signatures
        asm = filter_taps.conv2d_backward_filter_taps.inspect_asm(sig)
        print("COMPILED", "vfmadd" in asm)
        print("CALLS", sum("call" in line and "_tap_tile" in line for line in asm.splitlines()))
    """, NUMBA_CACHE_DIR=str(tmp_path)).stdout
    assert "COMPILED True" in out and "CALLS 0" in out


def test_a_direct_kernel_call_runs_its_keys_overload_and_the_suite_checks_its_types():
    """``_numba.direct``: the first call of a key through Numba's dispatcher, later ones to that
    overload's entry point; under the suite's check, arguments of other types fail loudly."""
    import numba
    from numba import types

    from numbaconv import _numba

    assert _numba.CHECK_DIRECT_CALLS  # (tests/conftest.py sets it for the whole suite)

    @numba.njit
    def add(a, b):
        return a + b

    assert _numba.direct(add, "ints", 1, 2) == 3
    assert _numba._ENTRIES[add, "ints"] is add.overloads[(types.int64, types.int64)].entry_point
    assert _numba.direct(add, "ints", 5, 6) == 11
    with pytest.raises(AssertionError, match="other argument types"):
        _numba.direct(add, "ints", 1.5, 2.0)
    assert _numba.direct(add, "floats", 1.5, 2.0) == 3.5
    assert _numba.direct(lambda a, b: a * b, "ints", 3, 4) == 12  # not a dispatcher: called as it is
