"""The wheel: LICENSE and py.typed inside, one version, no TensorFlow in the test extra, no caches."""
import email
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

import numbaconv

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"  # a clean copy, so the build leaves nothing in the tree
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", "build", "*.egg-info", ".pytest_cache", ".hypothesis", "perf"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out)],
                   check=True, capture_output=True, text=True, timeout=600)
    (path,) = out.glob("numbaconv-*.whl")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        metadata = email.message_from_bytes(
            archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))))
        license_text = archive.read(next(n for n in names if n.endswith(".dist-info/licenses/LICENSE")))
    return names, metadata, license_text.decode()


def test_wheel_ships_the_license_and_py_typed(wheel):
    names, metadata, license_text = wheel
    assert license_text.startswith("MIT License") and license_text == (ROOT / "LICENSE").read_text()
    assert metadata["License-Expression"] == "MIT"
    assert "numbaconv/py.typed" in names


def test_version_is_written_once(wheel):
    _, metadata, _ = wheel
    assert metadata["Version"] == numbaconv.__version__
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert not re.search(r'^version\s*=\s*"', pyproject, re.M)  # no static copy
    assert 'version = { attr = "numbaconv.__version__" }' in pyproject


def test_test_extra_does_not_pull_tensorflow(wheel):
    _, metadata, _ = wheel
    requires = metadata.get_all("Requires-Dist")
    tf = [r for r in requires if r.startswith("tensorflow")]
    assert tf and all('extra == "tf"' in r or 'extra == "perf"' in r for r in tf), tf
    assert any(r.startswith("pytest") and 'extra == "test"' in r for r in requires)


def test_wheel_holds_sources_only(wheel):
    names, _, _ = wheel
    assert not [n for n in names if n.endswith((".nbi", ".nbc", ".pyc"))]
    assert not [n for n in names if n.startswith(("tests/", "perf/", "examples/"))]
