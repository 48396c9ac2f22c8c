"""Every example in the package's docstrings runs as a doctest and prints what it says.

Each public function of ``numbaconv`` and ``numbaconv.reference`` has an
Examples section; the reference's examples call ``nc.reference.<op>``
(``_api.reference_of``), so both implementations are held to the same output.
"""
import doctest
import importlib
import pkgutil

import pytest

import numbaconv

OPTIONS = doctest.NORMALIZE_WHITESPACE


def _modules():
    names = ["numbaconv"]
    names += [info.name for info in pkgutil.walk_packages(numbaconv.__path__, "numbaconv.")]
    return [importlib.import_module(name) for name in names]


def _doctests():
    finder = doctest.DocTestFinder()
    return sorted((test for module in _modules() for test in finder.find(module) if test.examples),
                  key=lambda test: test.name)


DOCTESTS = _doctests()


@pytest.mark.parametrize("test", DOCTESTS, ids=[test.name for test in DOCTESTS])
def test_docstring_examples(test):
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    result = runner.run(test, out=lambda text: print(text, end=""))
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed (output above)"


@pytest.mark.parametrize("namespace", ["numbaconv", "numbaconv.reference"])
def test_every_public_function_has_examples(namespace):
    module = importlib.import_module(namespace)
    documented = {test.name.rsplit(".", 1)[-1] for test in DOCTESTS
                  if test.name.rsplit(".", 1)[0] == namespace}
    functions = {name for name in module.__all__ if callable(getattr(module, name))}
    assert functions and functions <= documented, sorted(functions - documented)
