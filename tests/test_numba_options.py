"""What the package promises about Numba itself: no compilation at import, and
kernels that still work when no cache location is writable (numba#1771)."""
import os
import subprocess
import sys
import textwrap

import pytest


def run_python(code, **env):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
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
    """).stdout
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
    """)
    assert "OK" in result.stdout
    assert "will not be cached" in result.stderr  # announced, not silent
