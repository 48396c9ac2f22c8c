"""The cs231n drop-in in the course's own setting: a student's ``cs231n`` package and notebook.

A temporary ``cs231n`` package stands in for the assignment: the student's
``layers.py`` (finished, or still the course's TODO stubs), the course's
``layer_utils.py`` sandwich layers and ``gradient_check.py``, and a
``fast_layers.py`` that is either the one-line drop-in or, when the imports
are swapped instead, a stand-in for the course's file without its Cython build
(importing it fails). The course's ConvolutionalNetworks cells then run as
written, in one namespace, as in a notebook.

What must hold: the cells' checks of the naive layers test the *student's*
functions (pass when they are right, fail when they are stubs), and the fast
layers and the sandwich layers built on them pass either way.
"""
import sys

import numpy as np
import pytest

import numbaconv.compat.cs231n as cs

# Everything the course's cs231n/fast_layers.py defines, and nothing else.
COURSE_FAST_LAYERS = {
    "conv_forward_im2col", "conv_forward_strides", "conv_backward_strides",
    "conv_backward_im2col", "conv_forward_fast", "conv_backward_fast",
    "max_pool_forward_fast", "max_pool_backward_fast",
    "max_pool_forward_reshape", "max_pool_backward_reshape",
    "max_pool_forward_im2col", "max_pool_backward_im2col",
}
# What the student writes (cs231n/layers.py) or the notebook defines for itself.
STUDENT_NAMES = ["conv_forward_naive", "conv_backward_naive",
                 "max_pool_forward_naive", "max_pool_backward_naive",
                 "rel_error", "eval_numerical_gradient", "eval_numerical_gradient_array"]


def test_the_star_import_gives_exactly_the_course_fast_layers_names():
    namespace = {}
    exec("from numbaconv.compat.cs231n import *", namespace)
    assert set(namespace) - {"__builtins__"} == COURSE_FAST_LAYERS
    assert set(cs.__all__) == COURSE_FAST_LAYERS and len(cs.__all__) == len(COURSE_FAST_LAYERS)
    assert all(callable(namespace[name]) for name in COURSE_FAST_LAYERS)


def test_the_star_import_leaves_a_students_own_functions_alone():
    def stub(*args):
        return None  # a TODO the student has not done yet

    namespace = {name: stub for name in STUDENT_NAMES}
    exec("from numbaconv.compat.cs231n import *", namespace)
    for name in STUDENT_NAMES:
        assert namespace[name] is stub, name
    assert namespace["conv_forward_naive"](np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)),
                                           np.zeros(1), {"stride": 1, "pad": 0}) is None
    assert namespace["conv_forward_fast"] is cs.conv_forward_fast


# ------------------------------------------------------ a student's cs231n package

STUDENT_DONE = '''
"""A finished student's layers: loops over the window offsets, written without numbaconv."""
import numpy as np


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


def _offsets(kh, kw, stride, oh, ow):
    """For each (i, j) in the window: the slices of the entries at that offset in every window."""
    for i in range(kh):
        for j in range(kw):
            yield i, j, (..., slice(i, i + stride * oh, stride), slice(j, j + stride * ow, stride))


def conv_forward_naive(x, w, b, conv_param):
    s, p = conv_param['stride'], conv_param['pad']
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    f, _, hh, ww = w.shape
    oh, ow = (xp.shape[2] - hh) // s + 1, (xp.shape[3] - ww) // s + 1
    out = np.zeros((x.shape[0], f, oh, ow)) + b[:, None, None]
    for i, j, at in _offsets(hh, ww, s, oh, ow):
        out += np.einsum('nchw,fc->nfhw', xp[at], w[:, :, i, j])
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    s, p = conv_param['stride'], conv_param['pad']
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    _, _, hh, ww = w.shape
    for i, j, at in _offsets(hh, ww, s, *dout.shape[2:]):
        dw[:, :, i, j] = np.einsum('nfhw,nchw->fc', dout, xp[at])
        dxp[at] += np.einsum('nfhw,fc->nchw', dout, w[:, :, i, j])
    dx = dxp[:, :, p:p + x.shape[2], p:p + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def max_pool_forward_naive(x, pool_param):
    ph, pw, s = pool_param['pool_height'], pool_param['pool_width'], pool_param['stride']
    oh, ow = (x.shape[2] - ph) // s + 1, (x.shape[3] - pw) // s + 1
    out = np.full(x.shape[:2] + (oh, ow), -np.inf)
    for _, _, at in _offsets(ph, pw, s, oh, ow):
        out = np.maximum(out, x[at])
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, s = pool_param['pool_height'], pool_param['pool_width'], pool_param['stride']
    out, _ = max_pool_forward_naive(x, pool_param)
    dx, taken = np.zeros_like(x), np.zeros(out.shape, bool)
    for _, _, at in _offsets(ph, pw, s, *out.shape[2:]):  # row-major: the first maximum wins
        first = (x[at] == out) & ~taken
        dx[at] += dout * first
        taken |= first
    return dx
'''

def test_a_student_checks_their_layers_against_numbaconvs_imported_by_name(rng):
    """The docs' way to check one's own layers: numbaconv's, imported under names of their own."""
    from numbaconv.compat.cs231n import conv_backward_naive as ref_conv_backward_naive
    from numbaconv.compat.cs231n import conv_forward_naive as ref_conv_forward_naive
    from numbaconv.compat.cs231n import eval_numerical_gradient_array, rel_error
    from numbaconv.compat.cs231n import max_pool_backward_naive as ref_max_pool_backward_naive
    from numbaconv.compat.cs231n import max_pool_forward_naive as ref_max_pool_forward_naive
    yours = {}
    exec(STUDENT_DONE, yours)
    x, w, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), np.zeros(4)
    conv_param = {"stride": 2, "pad": 1}
    out, your_cache = yours["conv_forward_naive"](x, w, b, conv_param)
    ref_out, ref_cache = ref_conv_forward_naive(x, w, b, conv_param)
    assert rel_error(out, ref_out) < 1e-12
    # Both conv caches are the course's (x, w, b, conv_param): each backward takes the other's.
    dout = rng.standard_normal(out.shape)
    for got, want in zip(yours["conv_backward_naive"](dout, ref_cache),
                         ref_conv_backward_naive(dout, your_cache), strict=True):
        assert rel_error(got, want) < 1e-12
    dx_num = eval_numerical_gradient_array(
        lambda x: yours["conv_forward_naive"](x, w, b, conv_param)[0], x, dout)
    assert rel_error(yours["conv_backward_naive"](dout, your_cache)[0], dx_num) < 1e-7

    pool_param = {"pool_height": 3, "pool_width": 2, "stride": 1}
    out, your_cache = yours["max_pool_forward_naive"](x, pool_param)
    ref_out, ref_cache = ref_max_pool_forward_naive(x, pool_param)
    assert rel_error(out, ref_out) == 0.0
    dout = rng.standard_normal(out.shape)
    assert rel_error(yours["max_pool_backward_naive"](dout, ref_cache),
                     ref_max_pool_backward_naive(dout, your_cache)) < 1e-14


# The course's layers.py before the student has done this assignment's TODOs
# (relu is from the previous assignment, so it is done).
STUDENT_TODO = '''
import numpy as np


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


def conv_forward_naive(x, w, b, conv_param):
    out = None
    # TODO: Implement the convolutional forward pass.
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    dx, dw, db = None, None, None
    # TODO: Implement the convolutional backward pass.
    return dx, dw, db


def max_pool_forward_naive(x, pool_param):
    out = None
    # TODO: Implement the max-pooling forward pass
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout, cache):
    dx = None
    # TODO: Implement the max-pooling backward pass
    return dx
'''

# The course's sandwich layers, as in its cs231n/layer_utils.py.
LAYER_UTILS = '''
from .layers import *
from .fast_layers import *


def conv_relu_forward(x, w, b, conv_param):
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout, cache):
    conv_cache, relu_cache = cache
    return conv_backward_fast(relu_backward(dout, relu_cache), conv_cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_fast(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout, cache):
    conv_cache, relu_cache, pool_cache = cache
    ds = max_pool_backward_fast(dout, pool_cache)
    return conv_backward_fast(relu_backward(ds, relu_cache), conv_cache)
'''

GRADIENT_CHECK = (
    "from numbaconv.compat.cs231n import eval_numerical_gradient, eval_numerical_gradient_array\n"
)

DROP_IN = "from numbaconv.compat.cs231n import *\n"
COURSE_FAST_LAYERS_UNBUILT = (
    "raise ImportError('stands in for the course fast_layers.py, whose Cython extension "
    "is not built')\n"
)

# ----------------------------------------- the course's notebook cells, as written

SETUP = '''
# As usual, a bit of setup
import numpy as np
from cs231n.gradient_check import eval_numerical_gradient_array, eval_numerical_gradient
from cs231n.layers import *
from cs231n.fast_layers import *

def rel_error(x, y):
  """ returns relative error """
  return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))
'''

CELLS = [
    ("conv_forward_naive", r"""
x_shape = (2, 3, 4, 4)
w_shape = (3, 3, 4, 4)
x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
b = np.linspace(-0.1, 0.2, num=3)

conv_param = {'stride': 2, 'pad': 1}
out, _ = conv_forward_naive(x, w, b, conv_param)
correct_out = np.array([[[[-0.08759809, -0.10987781],
                           [-0.18387192, -0.2109216 ]],
                          [[ 0.21027089,  0.21661097],
                           [ 0.22847626,  0.23004637]],
                          [[ 0.50813986,  0.54309974],
                           [ 0.64082444,  0.67101435]]],
                         [[[-0.98053589, -1.03143541],
                           [-1.19128892, -1.24695841]],
                          [[ 0.69108355,  0.66880383],
                           [ 0.59480972,  0.56776003]],
                          [[ 2.36270298,  2.36904306],
                           [ 2.38090835,  2.38247847]]]])

# Compare your output to ours; difference should be around e-8
print('Testing conv_forward_naive')
print('difference: ', rel_error(out, correct_out))
"""),
    ("conv_backward_naive", r"""
np.random.seed(231)
x = np.random.randn(4, 3, 5, 5)
w = np.random.randn(2, 3, 3, 3)
b = np.random.randn(2,)
dout = np.random.randn(4, 2, 5, 5)
conv_param = {'stride': 1, 'pad': 1}

dx_num = eval_numerical_gradient_array(lambda x: conv_forward_naive(x, w, b, conv_param)[0], x, dout)
dw_num = eval_numerical_gradient_array(lambda w: conv_forward_naive(x, w, b, conv_param)[0], w, dout)
db_num = eval_numerical_gradient_array(lambda b: conv_forward_naive(x, w, b, conv_param)[0], b, dout)

out, cache = conv_forward_naive(x, w, b, conv_param)
dx, dw, db = conv_backward_naive(dout, cache)

# Your errors should be around e-8 or less.
print('Testing conv_backward_naive function')
print('dx error: ', rel_error(dx, dx_num))
print('dw error: ', rel_error(dw, dw_num))
print('db error: ', rel_error(db, db_num))
"""),
    ("max_pool_forward_naive", r"""
x_shape = (2, 3, 4, 4)
x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
pool_param = {'pool_width': 2, 'pool_height': 2, 'stride': 2}

out, _ = max_pool_forward_naive(x, pool_param)

correct_out = np.array([[[[-0.26315789, -0.24842105],
                          [-0.20421053, -0.18947368]],
                         [[-0.14526316, -0.13052632],
                          [-0.08631579, -0.07157895]],
                         [[-0.02736842, -0.01263158],
                          [ 0.03157895,  0.04631579]]],
                        [[[ 0.09052632,  0.10526316],
                          [ 0.14947368,  0.16421053]],
                         [[ 0.20842105,  0.22315789],
                          [ 0.26736842,  0.28210526]],
                         [[ 0.32631579,  0.34105263],
                          [ 0.38526316,  0.4       ]]]])

# Compare your output with ours. Difference should be on the order of e-8.
print('Testing max_pool_forward_naive function:')
print('difference: ', rel_error(out, correct_out))
"""),
    ("max_pool_backward_naive", r"""
np.random.seed(231)
x = np.random.randn(3, 2, 8, 8)
dout = np.random.randn(3, 2, 4, 4)
pool_param = {'pool_height': 2, 'pool_width': 2, 'stride': 2}

dx_num = eval_numerical_gradient_array(lambda x: max_pool_forward_naive(x, pool_param)[0], x, dout)

out, cache = max_pool_forward_naive(x, pool_param)
dx = max_pool_backward_naive(dout, cache)

# Your error should be on the order of e-12
print('Testing max_pool_backward_naive function:')
print('dx error: ', rel_error(dx, dx_num))
"""),
    ("conv_fast", r"""
# Rel errors should be around e-9 or less
from cs231n.fast_layers import conv_forward_fast, conv_backward_fast
from time import time
np.random.seed(231)
x = np.random.randn(100, 3, 31, 31)
w = np.random.randn(25, 3, 3, 3)
b = np.random.randn(25,)
dout = np.random.randn(100, 25, 16, 16)
conv_param = {'stride': 2, 'pad': 1}

t0 = time()
out_naive, cache_naive = conv_forward_naive(x, w, b, conv_param)
t1 = time()
out_fast, cache_fast = conv_forward_fast(x, w, b, conv_param)
t2 = time()

print('Testing conv_forward_fast:')
print('Naive: %fs' % (t1 - t0))
print('Fast: %fs' % (t2 - t1))
print('Speedup: %fx' % ((t1 - t0) / (t2 - t1)))
print('Difference: ', rel_error(out_naive, out_fast))

t0 = time()
dx_naive, dw_naive, db_naive = conv_backward_naive(dout, cache_naive)
t1 = time()
dx_fast, dw_fast, db_fast = conv_backward_fast(dout, cache_fast)
t2 = time()

print('\nTesting conv_backward_fast:')
print('Naive: %fs' % (t1 - t0))
print('Fast: %fs' % (t2 - t1))
print('Speedup: %fx' % ((t1 - t0) / (t2 - t1)))
print('dx difference: ', rel_error(dx_naive, dx_fast))
print('dw difference: ', rel_error(dw_naive, dw_fast))
print('db difference: ', rel_error(db_naive, db_fast))
"""),
    ("max_pool_fast", r"""
# Relative errors should be close to 0.0
from cs231n.fast_layers import max_pool_forward_fast, max_pool_backward_fast
np.random.seed(231)
x = np.random.randn(100, 3, 32, 32)
dout = np.random.randn(100, 3, 16, 16)
pool_param = {'pool_height': 2, 'pool_width': 2, 'stride': 2}

t0 = time()
out_naive, cache_naive = max_pool_forward_naive(x, pool_param)
t1 = time()
out_fast, cache_fast = max_pool_forward_fast(x, pool_param)
t2 = time()

print('Testing pool_forward_fast:')
print('Naive: %fs' % (t1 - t0))
print('fast: %fs' % (t2 - t1))
print('speedup: %fx' % ((t1 - t0) / (t2 - t1)))
print('difference: ', rel_error(out_naive, out_fast))

t0 = time()
dx_naive = max_pool_backward_naive(dout, cache_naive)
t1 = time()
dx_fast = max_pool_backward_fast(dout, cache_fast)
t2 = time()

print('\nTesting pool_backward_fast:')
print('Naive: %fs' % (t1 - t0))
print('fast: %fs' % (t2 - t1))
print('speedup: %fx' % ((t1 - t0) / (t2 - t1)))
print('dx difference: ', rel_error(dx_naive, dx_fast))
"""),
    ("conv_relu_pool", r"""
from cs231n.layer_utils import conv_relu_pool_forward, conv_relu_pool_backward
np.random.seed(231)
x = np.random.randn(2, 3, 16, 16)
w = np.random.randn(3, 3, 3, 3)
b = np.random.randn(3,)
dout = np.random.randn(2, 3, 8, 8)
conv_param = {'stride': 1, 'pad': 1}
pool_param = {'pool_height': 2, 'pool_width': 2, 'stride': 2}

out, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
dx, dw, db = conv_relu_pool_backward(dout, cache)

dx_num = eval_numerical_gradient_array(lambda x: conv_relu_pool_forward(x, w, b, conv_param, pool_param)[0], x, dout)
dw_num = eval_numerical_gradient_array(lambda w: conv_relu_pool_forward(x, w, b, conv_param, pool_param)[0], w, dout)
db_num = eval_numerical_gradient_array(lambda b: conv_relu_pool_forward(x, w, b, conv_param, pool_param)[0], b, dout)

# Relative errors should be around e-8 or less
print('Testing conv_relu_pool')
print('dx error: ', rel_error(dx_num, dx))
print('dw error: ', rel_error(dw_num, dw))
print('db error: ', rel_error(db_num, db))
"""),
    ("conv_relu", r"""
from cs231n.layer_utils import conv_relu_forward, conv_relu_backward
np.random.seed(231)
x = np.random.randn(2, 3, 8, 8)
w = np.random.randn(3, 3, 3, 3)
b = np.random.randn(3,)
dout = np.random.randn(2, 3, 8, 8)
conv_param = {'stride': 1, 'pad': 1}

out, cache = conv_relu_forward(x, w, b, conv_param)
dx, dw, db = conv_relu_backward(dout, cache)

dx_num = eval_numerical_gradient_array(lambda x: conv_relu_forward(x, w, b, conv_param)[0], x, dout)
dw_num = eval_numerical_gradient_array(lambda w: conv_relu_forward(x, w, b, conv_param)[0], w, dout)
db_num = eval_numerical_gradient_array(lambda b: conv_relu_forward(x, w, b, conv_param)[0], b, dout)

# Relative errors should be around e-8 or less
print('Testing conv_relu:')
print('dx error: ', rel_error(dx_num, dx))
print('dw error: ', rel_error(dw_num, dw))
print('db error: ', rel_error(db_num, db))
"""),
]

# The level each cell's comment asks for ("around e-8", "on the order of e-12", ...).
LEVELS = {
    "conv_forward_naive": {"difference": 3e-8},  # 8-decimal correct_out: <= 0.5e-8 / (2 * 0.0876)
    "conv_backward_naive": {"dx error": 1e-8, "dw error": 1e-8, "db error": 1e-8},
    "max_pool_forward_naive": {"difference": 1e-7},
    "max_pool_backward_naive": {"dx error": 1e-10},
    "conv_fast": {"Difference": 1e-9, "dx difference": 1e-9,
                  "dw difference": 1e-9, "db difference": 1e-9},
    "max_pool_fast": {"difference": 1e-15, "dx difference": 1e-15},
    "conv_relu_pool": {"dx error": 1e-8, "dw error": 1e-8, "db error": 1e-8},
    "conv_relu": {"dx error": 1e-8, "dw error": 1e-8, "db error": 1e-8},
}
# The cells that call the student's naive layers (the fast-layer cells compare against them).
NAIVE_CELLS = {"conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive",
               "max_pool_backward_naive", "conv_fast", "max_pool_fast"}


def printed_errors(text):
    """{label: value} of every 'label:  value' line a cell printed about an error or difference."""
    found = {}
    for line in text.splitlines():
        label, sep, value = line.rpartition(":")
        if sep and label.strip().lower().endswith(("error", "difference")):
            found[label.strip()] = float(value)
    return found


# How the student switches to numbaconv: "file" makes cs231n/fast_layers.py the
# one-line drop-in; "imports" leaves the course's (unbuilt) file and swaps every
# import of it, in the notebook and in layer_utils.py.
SWAPS = ["file", "imports"]


def forget_the_course_package():
    """Drops the temporary cs231n package from sys.modules, so no other test imports it."""
    for module in [m for m in sys.modules if m == "cs231n" or m.startswith("cs231n.")]:
        del sys.modules[module]


@pytest.fixture
def course(tmp_path, monkeypatch, request):
    """Writes a cs231n package for (student, swap) and returns the notebook's cells."""
    student, swap = request.param
    package = tmp_path / "cs231n"
    package.mkdir()
    setup, cells, layer_utils = SETUP, CELLS, LAYER_UTILS
    if swap == "imports":
        setup = SETUP.replace("cs231n.fast_layers", "numbaconv.compat.cs231n")
        cells = [(name, src.replace("cs231n.fast_layers", "numbaconv.compat.cs231n"))
                 for name, src in CELLS]
        layer_utils = LAYER_UTILS.replace("from .fast_layers import *", DROP_IN.strip())
    files = {
        "__init__.py": "",
        "layers.py": STUDENT_DONE if student == "done" else STUDENT_TODO,
        "layer_utils.py": layer_utils,
        "gradient_check.py": GRADIENT_CHECK,
        "fast_layers.py": DROP_IN if swap == "file" else COURSE_FAST_LAYERS_UNBUILT,
    }
    for name, text in files.items():
        (package / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield setup, cells
    forget_the_course_package()


def run_notebook(setup, cells, capsys, skip=()):
    """Runs the cells in one namespace; {cell: printed errors, or the exception it raised}."""
    namespace = {}
    exec(compile(setup, "<setup cell>", "exec"), namespace)
    results = {}
    for name, source in cells:
        if name in skip:
            continue
        capsys.readouterr()
        try:
            exec(compile(source, f"<cell {name}>", "exec"), namespace)
        except Exception as error:  # a failing cell, as the notebook would show it
            results[name] = error
        else:
            results[name] = printed_errors(capsys.readouterr().out)
    return namespace, results


@pytest.mark.parametrize("course", [("done", swap) for swap in SWAPS], indirect=True, ids=SWAPS)
def test_the_notebook_runs_unchanged_and_checks_a_finished_students_layers(course, capsys):
    namespace, results = run_notebook(*course, capsys)
    layers = sys.modules["cs231n.layers"]
    for name in ("conv_forward_naive", "conv_backward_naive",
                 "max_pool_forward_naive", "max_pool_backward_naive"):
        assert namespace[name] is getattr(layers, name), name  # the student's, not numbaconv's
    for name in COURSE_FAST_LAYERS:
        assert namespace[name] is getattr(cs, name), name
    assert set(results) == set(LEVELS)
    for cell, levels in LEVELS.items():
        errors = results[cell]
        assert isinstance(errors, dict), (cell, errors)
        assert set(errors) == set(levels), cell
        for label, level in levels.items():
            assert errors[label] < level, (cell, label, errors[label])
    # The fast cells compared the student's arrays with numbaconv's, of the course's shapes.
    assert namespace["dx_fast"].shape == namespace["dx_naive"].shape == (100, 3, 32, 32)
    assert namespace["dx_fast"].dtype == np.float64


@pytest.mark.parametrize("course", [("todo", swap) for swap in SWAPS], indirect=True, ids=SWAPS)
def test_the_notebooks_naive_checks_fail_while_the_students_layers_are_stubs(course, capsys):
    # conv_relu_pool is skipped only to save time: it checks what conv_relu does, on 4x the input.
    namespace, results = run_notebook(*course, capsys, skip={"conv_relu_pool"})
    assert set(results) == set(LEVELS) - {"conv_relu_pool"}
    for cell in NAIVE_CELLS:
        # rel_error(None, array): the check fails instead of passing on numbaconv's layers.
        assert isinstance(results[cell], TypeError), (cell, results[cell])
    for cell in set(results) - NAIVE_CELLS:  # the sandwich layers need only the fast layers
        errors = results[cell]
        assert isinstance(errors, dict), (cell, errors)
        assert all(errors[label] < level for label, level in LEVELS[cell].items()), cell
    assert namespace["conv_forward_naive"] is sys.modules["cs231n.layers"].conv_forward_naive


def test_without_the_swap_the_unbuilt_course_fast_layers_fail_loudly(tmp_path, monkeypatch):
    """The stand-in for the course's file fails on import, so a missed import cannot pass."""
    (tmp_path / "cs231n").mkdir()
    (tmp_path / "cs231n" / "__init__.py").write_text("")
    (tmp_path / "cs231n" / "fast_layers.py").write_text(COURSE_FAST_LAYERS_UNBUILT)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(ImportError, match="Cython extension is not built"):
            exec("from cs231n.fast_layers import *", {})
    finally:
        forget_the_course_package()
