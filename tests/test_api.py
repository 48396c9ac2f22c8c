"""The public namespaces: plain functions, the same signatures in both, nothing private leaking."""
import inspect
import os
import pathlib
import pydoc
import subprocess
import sys
import types

import pytest

import numbaconv
import numbaconv.reference
from numbaconv import _api

OPS = [name for name in numbaconv.__all__ if name not in ("warmup", "reference")]
# Public subpackages that are attributes only once imported (``import numbaconv.compat``,
# ``import numbaconv.dask``, ``import numbaconv.kernels``).
ON_DEMAND = {"compat", "dask", "kernels"}


def test_all_lists_exactly_the_public_names():
    for namespace in (numbaconv, numbaconv.reference):
        public = {name for name in vars(namespace) if not name.startswith("_")}
        assert public - ON_DEMAND == set(namespace.__all__), namespace.__name__
    assert set(numbaconv.reference.__all__) == set(OPS)


@pytest.mark.parametrize("name", OPS)
def test_every_op_is_a_plain_function_with_one_signature(name):
    fast, ref = getattr(numbaconv, name), getattr(numbaconv.reference, name)
    assert inspect.isfunction(fast) and inspect.isfunction(ref)
    assert fast is not ref
    assert inspect.signature(fast) == inspect.signature(ref)
    assert (fast.__module__, ref.__module__) == ("numbaconv", "numbaconv.reference")


@pytest.mark.parametrize("name", OPS)
def test_help_shows_a_documented_function(name):
    for namespace in (numbaconv, numbaconv.reference):
        text = pydoc.render_doc(getattr(namespace, name), renderer=pydoc.plaintext)
        assert f"function {name} in module {namespace.__name__}" in text
        for section in ("Parameters", "Returns", "Raises", "Notes", "Examples"):
            assert f"\n    {section}\n    ---" in text, (namespace.__name__, name, section)
    assert "NumPy reference implementation" in numbaconv.reference.__dict__[name].__doc__


def test_no_module_is_a_public_attribute_except_reference():
    for namespace in (numbaconv, numbaconv.reference):
        modules = {name for name, value in vars(namespace).items()
                   if isinstance(value, types.ModuleType) and not name.startswith("_")}
        assert modules - ON_DEMAND == ({"reference"} if namespace is numbaconv else set())


def test_each_backend_table_names_every_core_by_keyword():
    # A Backend is built from keywords: a missing or misspelt core is a
    # TypeError at import, not a silently different implementation.
    with pytest.raises(TypeError):
        _api.Backend(**{field: None for field in _api.Backend._fields[1:]})
    for functions in (numbaconv._functions, numbaconv.reference._functions):
        backend = functions._BACKEND
        assert all(callable(core) for core in backend)
        modules = {core.__module__ for core in backend}
        assert all(m.startswith(("numbaconv._fast.", "numbaconv.reference._")) for m in modules)
        assert len({m.split(".")[1] for m in modules}) == 1  # one backend, not a mix


def test_a_signature_mismatch_is_refused_at_definition():
    def fast(x, *, stride=1):
        """Doc."""

    def ref(x, *, stride=2):
        """Doc."""

    with pytest.raises(TypeError, match="differs"):
        _api.reference_of(fast)(ref)


def test_import_numbaconv_alone_makes_reference_usable():
    code = ("import numbaconv, numpy as np; "
            "print(numbaconv.reference.max_pool2d(np.arange(4.0).reshape(1, 2, 2, 1), 2).item())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3.0"


def test_mypy_sees_every_name_with_its_signature(tmp_path):
    program = tmp_path / "use.py"
    program.write_text("\n".join([
        "import numpy as np",
        "import numbaconv as nc",
        "import numbaconv.reference as ref",
        "y: np.ndarray = nc.conv2d(np.ones((1, 3, 3, 1)), np.ones((1, 1, 1, 1)), stride=2)",
        *(f"reveal_type({ns}.{name})" for name in OPS for ns in ("nc", "ref")),
        "nc.conv2d(1, 2, strides=1)",  # a misspelt keyword must be caught
    ]) + "\n")
    root = pathlib.Path(numbaconv.__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--config-file", str(root / "pyproject.toml"),
         str(program)],
        capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(root)},
    )
    revealed = [line for line in result.stdout.splitlines() if "Revealed type is" in line]
    assert len(revealed) == 2 * len(OPS), result.stdout
    for line in revealed:
        # A function type with the parameter names, not "Any" or a bound method.
        assert 'Revealed type is "def (' in line and "data_format: str =" in line, line
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and 'Unexpected keyword argument "strides"' in errors[0], result.stdout
