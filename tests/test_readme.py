"""The README's code runs as written and its comments tell the truth.

Its Python blocks run in order in one namespace, as a reader pasting them
into one session would; its shell blocks name make targets that exist (CI
runs them: ``.ci/run``).
"""
import pathlib
import re

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README.read_text(), re.S)


@pytest.fixture(scope="module")
def namespaces():
    """The namespace after each Python block, in README order."""
    namespace, after = {}, []
    for language, block in BLOCKS:
        if language == "python":
            exec(compile(block, str(README), "exec"), namespace)
            after.append((block, dict(namespace)))
    return after


def test_every_python_block_runs(namespaces):
    assert len(namespaces) == sum(language == "python" for language, _ in BLOCKS) >= 2


def test_readme_api_example_runs_and_shapes_match_its_comments(namespaces):
    block, namespace = next((block, ns) for block, ns in namespaces
                            if block.startswith("import numpy as np\nimport numbaconv as nc\n"))
    # Shapes the README states in its comments.
    for name, shape in re.findall(r"^(\w+) = .*?# \(([\d*, ]+)\)", block, re.M):
        expected = tuple(eval(part) for part in shape.split(","))
        assert namespace[name].shape == expected, name
    assert namespace["argmax"].dtype == np.int64
    assert np.allclose(namespace["back"], namespace["x"] * _coverage_counts(namespace["x"].shape))


def test_cs231n_block_matches_the_api(namespaces):
    _, namespace = next((block, ns) for block, ns in namespaces if "compat.cs231n" in block)
    import numbaconv as nc

    x, w, b = namespace["x"], namespace["w"], namespace["b"]
    expected = nc.conv2d(x, w, b, padding=1).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(namespace["out"], expected, rtol=1e-5, atol=1e-5)
    assert namespace["dx"].shape == namespace["x_nchw"].shape
    assert namespace["dw"].shape == namespace["w_oihw"].shape


def test_shell_blocks_name_existing_make_targets():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    commands = [line.split("#")[0].split() for language, block in BLOCKS if language == "sh"
                for line in block.splitlines() if line.strip()]
    assert commands
    for command in commands:
        assert command[0] == "make" and command[1] in targets, command


def _coverage_counts(shape):
    """How many 3x3 'SAME' windows cover each pixel (col2im(im2col(x)) = x * count)."""
    _, h, w, _ = shape
    rows = np.array([sum(1 for oh in range(h) if -1 <= i - oh <= 1) for i in range(h)])
    cols = np.array([sum(1 for ow in range(w) if -1 <= j - ow <= 1) for j in range(w)])
    return (rows[:, None] * cols[None, :])[None, :, :, None]
