"""The README's API example runs as written and its comments tell the truth."""
import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_api_example_runs_and_shapes_match_its_comments():
    block = re.search(r"```python\n(import numpy as np\nimport numbaconv as nc\n.*?)```",
                      README.read_text(), re.S).group(1)
    namespace = {}
    exec(compile(block, str(README), "exec"), namespace)
    # Shapes the README states in its comments.
    for name, shape in re.findall(r"^(\w+) = .*?# \(([\d*, ]+)\)", block, re.M):
        expected = tuple(eval(part) for part in shape.split(","))
        assert namespace[name].shape == expected, name
    assert namespace["argmax"].dtype == np.int64
    assert np.allclose(namespace["back"], namespace["x"] * _coverage_counts(namespace["x"].shape))


def _coverage_counts(shape):
    """How many 3x3 'SAME' windows cover each pixel (col2im(im2col(x)) = x * count)."""
    _, h, w, _ = shape
    rows = np.array([sum(1 for oh in range(h) if -1 <= i - oh <= 1) for i in range(h)])
    cols = np.array([sum(1 for ow in range(w) if -1 <= j - ow <= 1) for j in range(w)])
    return (rows[:, None] * cols[None, :])[None, :, :, None]
