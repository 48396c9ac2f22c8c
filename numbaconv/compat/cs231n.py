"""The cs231n assignments' fast layers on numbaconv, with no Cython build.

A star-import of this module gives exactly the names that the course's
``cs231n/fast_layers.py`` defines, so code written against it (NCHW data,
``(F, C, HH, WW)`` filters, parameter dicts, ``(out, cache)`` pairs) runs
unchanged after one of these changes::

    # Either: the whole content of cs231n/fast_layers.py (every importer then gets numbaconv)
    from numbaconv.compat.cs231n import *

    # Or: keep that file and import this module wherever it is imported, in the
    # notebook's setup and fast-layer cells and in cs231n/layer_utils.py
    from numbaconv.compat.cs231n import *            # was: from cs231n.fast_layers import *
    from numbaconv.compat.cs231n import conv_forward_fast, conv_backward_fast

=================================  ==============================================
``conv_forward_fast``              ``numbaconv.conv2d`` (Numba kernels); also
                                   bound to ``conv_forward_strides`` and
                                   ``conv_forward_im2col``
``conv_backward_fast``             ``numbaconv.conv2d_backward``; also
                                   ``conv_backward_strides``, ``conv_backward_im2col``
``max_pool_forward_fast``          ``numbaconv.max_pool2d_argmax``; tags its cache
                                   with the course's path, ``reshape`` or ``im2col``
``max_pool_forward_reshape``       the same, for square pools whose stride equals
                                   their size and that tile the input
``max_pool_forward_im2col``        the same, for any pool
``max_pool_backward_fast``         ``numbaconv.max_pool2d_backward``; also
                                   ``max_pool_backward_reshape``, ``max_pool_backward_im2col``
=================================  ==============================================

Your own work is never replaced
-------------------------------
The star-import brings in nothing that a student writes: the naive layers of
``cs231n/layers.py`` (``conv_forward_naive``, ...) stay yours, and the
notebook's checks keep testing them. To check your layers against numbaconv,
import its versions by name, under names of their own::

    from numbaconv.compat.cs231n import rel_error, conv_forward_naive as ref_conv_forward_naive
    out_yours, _ = conv_forward_naive(x, w, b, conv_param)          # from cs231n.layers
    out_ref, _ = ref_conv_forward_naive(x, w, b, conv_param)
    print(rel_error(out_yours, out_ref))                            # tiny if yours is right

Importable by name only: ``conv_forward_naive``, ``conv_backward_naive``,
``max_pool_forward_naive``, ``max_pool_backward_naive`` (``numbaconv.reference``,
vectorized NumPy), ``rel_error``, ``eval_numerical_gradient`` and
``eval_numerical_gradient_array`` (the course's gradient-check helpers). The
conv cache is the course's naive ``(x, w, b, conv_param)`` everywhere, so your
``conv_backward_naive`` can consume the cache of ``conv_forward_fast`` and
the other way round.

``conv_param = {"stride": s, "pad": p}``; ``pool_param = {"pool_height": ph,
"pool_width": pw, "stride": s}``. Other keys are ignored, as in the course; a
missing key raises ``KeyError`` naming it. Every other argument is validated by
numbaconv itself (``ValueError``/``TypeError`` naming the argument and the
shapes), before any kernel runs.

Where numbaconv differs from the course code
--------------------------------------------
- **One computation per layer.** The course's ``_strides`` and ``_im2col``
  conv paths, and its ``_reshape`` and ``_im2col`` pool paths, are different
  NumPy/Cython algorithms; here each name runs numbaconv's kernels, so they all
  give the same result.
- **Max-pool ties.** The first maximum in row-major window order alone takes
  the gradient (as TensorFlow and PyTorch do, and as the course's im2col pool
  path does through ``np.argmax``). The course's reshape path instead routes
  the gradient to *every* tied maximum: the full ``dout`` to each in the
  course's early releases, ``dout`` divided by the number of ties in later
  ones. The results agree wherever a window has a unique maximum (always, for
  random float inputs); gradient checks need tie-free inputs either way.
- **Max-pool NaN.** A NaN in a window makes that output NaN and the first NaN
  takes the gradient.
- **Sizes that do not divide.** The output size is
  ``(H + 2 * pad - HH) // stride + 1``: trailing rows/columns that no window
  reaches are ignored (PyTorch's rule), where the course's im2col paths assert
  that ``(H + 2 * pad - HH) % stride == 0``.
- **Preconditions** raise ``ValueError`` naming ``pool_param`` and the shape
  (``max_pool_forward_reshape`` on a pool that does not tile the input), where
  the course uses ``assert``.
- **dtypes.** Results are in ``np.result_type(x, w, b, np.float32)``: float64
  inputs (the course's) give float64, float32 stays float32, and mixed
  float32/float64 inputs give float64. Integer inputs compute in floating
  point (float32 for 8/16-bit, float64 for 32/64-bit), never in integers.
- **Caches.** The conv cache is ``(x, w, b, conv_param)`` (the course's fast
  cache adds the im2col matrix ``x_cols``). ``max_pool_forward_fast`` returns
  ``(method, inner)`` with ``method`` ``"reshape"`` or ``"im2col"``, as the
  course; the ``_reshape`` and ``_im2col`` forwards return ``inner = (x,
  pool_param, argmax)`` (the course keeps reshaped copies instead), and the
  naive one ``(x, pool_param)``, as the course. Every pool backward accepts
  every pool forward's cache. Treat caches as opaque, as the course's own code
  does.
- **Extensions.** ``stride`` and ``pad`` may also be pairs ``(h, w)`` and
  ``pad`` may be ``"SAME"``/``"VALID"`` or ``((top, bottom), (left, right))``;
  ``b`` may be ``None``; any array-like is accepted. Inputs are never modified
  and results are fresh C-contiguous arrays.
"""
from collections.abc import Mapping
from numbers import Integral

import numpy as np

import numbaconv as _numba_ops
import numbaconv.reference as _reference_ops

# Exactly the functions of the course's cs231n/fast_layers.py: a star-import
# must never bring in a name that a student writes (the naive layers).
__all__ = [
    "conv_backward_fast", "conv_backward_im2col", "conv_backward_strides",
    "conv_forward_fast", "conv_forward_im2col", "conv_forward_strides",
    "max_pool_backward_fast", "max_pool_backward_im2col", "max_pool_backward_reshape",
    "max_pool_forward_fast", "max_pool_forward_im2col", "max_pool_forward_reshape",
]

_CONV_PARAM_EXAMPLE = "{'stride': 1, 'pad': 1}"
_POOL_PARAM_EXAMPLE = "{'pool_height': 2, 'pool_width': 2, 'stride': 2}"


def _param(params, key, name, example):
    """``params[key]``, with errors that say which dict and which key."""
    if not isinstance(params, Mapping):
        raise TypeError(f"{name} must be a dict like {example}, got {type(params).__name__}")
    if key not in params:
        raise KeyError(
            f"{name} has no {key!r} key: expected a dict like {example}, got keys {list(params)}"
        )
    return params[key]


def _conv_geometry(conv_param):
    """(stride, pad) from a conv_param dict."""
    return (
        _param(conv_param, "stride", "conv_param", _CONV_PARAM_EXAMPLE),
        _param(conv_param, "pad", "conv_param", _CONV_PARAM_EXAMPLE),
    )


def _pool_geometry(pool_param):
    """((pool_height, pool_width), stride) from a pool_param dict."""
    size = tuple(
        _param(pool_param, key, "pool_param", _POOL_PARAM_EXAMPLE)
        for key in ("pool_height", "pool_width")
    )
    return size, _param(pool_param, "stride", "pool_param", _POOL_PARAM_EXAMPLE)


def _unpack(cache, sizes, what):
    """The cache tuple, checked to have one of the sizes its forward returns."""
    if not isinstance(cache, tuple) or len(cache) not in sizes:
        got = f"a tuple of {len(cache)}" if isinstance(cache, tuple) else type(cache).__name__
        raise ValueError(f"cache must be the cache that {what} returned; got {got}")
    return cache


# ------------------------------------------------------------- convolution


def _conv_forward(ops, x, w, b, conv_param):
    stride, pad = _conv_geometry(conv_param)
    out = ops.conv2d(x, w, b, stride=stride, padding=pad, data_format="NCHW")
    return out, (x, w, b, conv_param)


def _conv_backward(ops, dout, cache):
    x, w, _, conv_param = _unpack(cache, (4,), "a conv forward (conv_forward_fast, ...)")
    stride, pad = _conv_geometry(conv_param)
    return ops.conv2d_backward(dout, x, w, stride=stride, padding=pad, data_format="NCHW")


def conv_forward_fast(x, w, b, conv_param):
    """Convolution layer forward pass (cross-correlation plus bias), Numba kernels.

    Also bound to ``conv_forward_strides`` and ``conv_forward_im2col``, the
    course's two fast conv paths (the course binds ``conv_forward_fast`` to
    ``conv_forward_strides``).

    Parameters
    ----------
    x : array_like of shape (N, C, H, W)
    w : array_like of shape (F, C, HH, WW)
    b : array_like of shape (F,)
    conv_param : dict
        ``'stride'``: step between windows; ``'pad'``: zeros added on every
        side of H and W.

    Returns
    -------
    out : ndarray of shape (N, F, H', W')
        ``H' = (H + 2 * pad - HH) // stride + 1`` (likewise W'); a geometry
        that does not divide exactly is allowed (the course's im2col path
        asserts it does).
    cache : tuple ``(x, w, b, conv_param)``, for :func:`conv_backward_fast`
    """
    return _conv_forward(_numba_ops, x, w, b, conv_param)


def conv_backward_fast(dout, cache):
    """Convolution layer backward pass, Numba kernels.

    Also bound to ``conv_backward_strides`` and ``conv_backward_im2col``.

    Parameters
    ----------
    dout : array_like of shape (N, F, H', W'), the upstream derivative
    cache : the ``(x, w, b, conv_param)`` that a conv forward returned

    Returns
    -------
    dx : ndarray of shape (N, C, H, W)
    dw : ndarray of shape (F, C, HH, WW)
    db : ndarray of shape (F,)
    """
    return _conv_backward(_numba_ops, dout, cache)


# The course's conv paths are all one computation here (see the module docstring).
conv_forward_strides = conv_forward_im2col = conv_forward_fast
conv_backward_strides = conv_backward_im2col = conv_backward_fast


def conv_forward_naive(x, w, b, conv_param):
    """:func:`conv_forward_fast` on ``numbaconv.reference`` (vectorized NumPy).

    Not star-exported: ``conv_forward_naive`` is the student's own function in
    the course. Import it by name to check yours against it.
    """
    return _conv_forward(_reference_ops, x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    """:func:`conv_backward_fast` on ``numbaconv.reference``; not star-exported."""
    return _conv_backward(_reference_ops, dout, cache)


# ------------------------------------------------------------------ pooling

_POOL_METHODS = ("reshape", "im2col")
_POOL_CACHE = "a max-pool forward (max_pool_forward_fast, ...)"


def _pool_cache_parts(cache):
    """(x, pool_param, argmax or None) from the cache of any max-pool forward."""
    if isinstance(cache, tuple) and len(cache) == 2 and isinstance(cache[0], str):
        method, cache = cache  # max_pool_forward_fast's (method, inner), as the course's
        if method not in _POOL_METHODS:
            raise ValueError(
                f"cache has the unrecognized method {method!r}: max_pool_forward_fast "
                f"tags its cache with one of {_POOL_METHODS}"
            )
    x, pool_param, *kept = _unpack(cache, (2, 3), _POOL_CACHE)
    return x, pool_param, (kept[0] if kept else None)


def _max_pool_backward(ops, dout, cache):
    x, pool_param, argmax = _pool_cache_parts(cache)
    if argmax is None:  # the naive cache keeps x alone, as the course's does
        size, stride = _pool_geometry(pool_param)
        argmax = ops.max_pool2d_argmax(x, size, stride=stride, data_format="NCHW")[1]
    return ops.max_pool2d_backward(dout, argmax, np.shape(x), data_format="NCHW")


def _reshape_path_applies(x, pool_param):
    """The course's condition for its reshape pool path.

    A square pool whose stride equals its size and that tiles the input. False
    for an x that is not 4-D, so that numbaconv's own validation reports it.
    """
    (pool_height, pool_width), stride = _pool_geometry(pool_param)
    square = (isinstance(pool_height, Integral) and int(pool_height) >= 1
              and pool_height == pool_width == stride)
    if not square or np.ndim(x) != 4:
        return False
    height, width = np.shape(x)[2:]
    return height % pool_height == 0 and width % pool_width == 0


def max_pool_forward_im2col(x, pool_param):
    """Max pooling forward pass for any window and stride, Numba kernels.

    Parameters
    ----------
    x : array_like of shape (N, C, H, W)
    pool_param : dict
        ``'pool_height'``, ``'pool_width'``: the window; ``'stride'``: the
        step between windows. No padding.

    Returns
    -------
    out : ndarray of shape (N, C, H', W')
        ``H' = (H - pool_height) // stride + 1`` (likewise W').
    cache : tuple ``(x, pool_param, argmax)``, for :func:`max_pool_backward_fast`
        ``argmax`` (int64, out's shape) is the flat index ``h * W + w`` of the
        first maximum of each window.
    """
    size, stride = _pool_geometry(pool_param)
    out, argmax = _numba_ops.max_pool2d_argmax(x, size, stride=stride, data_format="NCHW")
    return out, (x, pool_param, argmax)


def max_pool_forward_reshape(x, pool_param):
    """Max pooling forward pass for square pools that tile the input, Numba kernels.

    The course's fast path for ``pool_height == pool_width == stride`` with
    ``H`` and ``W`` multiples of it; the result and cache are those of
    :func:`max_pool_forward_im2col`.

    Raises
    ------
    ValueError
        If ``pool_param`` and x's shape do not meet that condition (the course
        asserts it).
    """
    if np.ndim(x) == 4 and not _reshape_path_applies(x, pool_param):
        raise ValueError(
            "max_pool_forward_reshape needs pool_height == pool_width == stride, with H and W "
            f"multiples of it; got pool_param {dict(pool_param)} and x of shape {np.shape(x)}. "
            "max_pool_forward_fast takes this path whenever it applies."
        )
    return max_pool_forward_im2col(x, pool_param)


def max_pool_forward_fast(x, pool_param):
    """Max pooling forward pass, Numba kernels.

    Takes the ``"reshape"`` path when the course does (a square pool whose
    stride equals its size and that tiles the input), else the ``"im2col"``
    one; both run the same kernel.

    Parameters
    ----------
    x : array_like of shape (N, C, H, W)
    pool_param : dict
        ``'pool_height'``, ``'pool_width'``: the window; ``'stride'``: the
        step between windows. No padding.

    Returns
    -------
    out : ndarray of shape (N, C, H', W')
        ``H' = (H - pool_height) // stride + 1`` (likewise W').
    cache : tuple ``(method, inner)``, for :func:`max_pool_backward_fast`
        ``method`` is ``"reshape"`` or ``"im2col"``, ``inner`` the cache of
        :func:`max_pool_forward_im2col`.
    """
    method = "reshape" if _reshape_path_applies(x, pool_param) else "im2col"
    out, inner = max_pool_forward_im2col(x, pool_param)
    return out, (method, inner)


def max_pool_backward_fast(dout, cache):
    """Max pooling backward pass, Numba kernels.

    Also bound to ``max_pool_backward_reshape`` and ``max_pool_backward_im2col``.
    Each ``dout`` entry goes to the first maximum of its window (ties: see the
    module docstring); overlapping windows add up.

    Parameters
    ----------
    dout : array_like of shape (N, C, H', W')
    cache : what any max-pool forward here returned (fast, reshape, im2col or naive)

    Returns
    -------
    dx : ndarray of shape (N, C, H, W)
    """
    return _max_pool_backward(_numba_ops, dout, cache)


max_pool_backward_reshape = max_pool_backward_im2col = max_pool_backward_fast


def max_pool_forward_naive(x, pool_param):
    """:func:`max_pool_forward_im2col` on ``numbaconv.reference``; cache ``(x, pool_param)``.

    Not star-exported: ``max_pool_forward_naive`` is the student's own
    function in the course. Import it by name to check yours against it.
    """
    size, stride = _pool_geometry(pool_param)
    out = _reference_ops.max_pool2d(x, size, stride=stride, data_format="NCHW")
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    """:func:`max_pool_backward_fast` on ``numbaconv.reference``; not star-exported."""
    return _max_pool_backward(_reference_ops, dout, cache)


# ------------------------------------------------------- gradient checking


def rel_error(x, y):
    """The course's relative error: ``max(|x - y| / max(1e-8, |x| + |y|))``."""
    x, y = np.asarray(x), np.asarray(y)
    return np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))


def eval_numerical_gradient(f, x, verbose=True, h=1e-5):
    """Centered-difference gradient of a scalar function ``f`` at ``x``.

    ``grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2 h)``. ``x`` must be a float
    array (float64 for the course's error levels): each entry is changed in
    place while ``f`` is evaluated and then restored. With ``verbose``, prints
    each index and its partial derivative, as the course's helper does.
    """
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        f_plus = f(x)
        x[ix] = old - h
        f_minus = f(x)
        x[ix] = old
        grad[ix] = (f_plus - f_minus) / (2 * h)
        if verbose:
            print(ix, grad[ix])
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Centered-difference gradient of ``sum(f(x) * df)`` at ``x`` for an array-valued ``f``.

    ``df`` is the upstream derivative (``f(x)``'s shape); the result has x's
    shape. ``x`` must be a float array (float64 for the course's error levels):
    each entry is changed in place while ``f`` is evaluated and then restored.
    """
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        f_plus = np.array(f(x), copy=True)  # f may return a view of its input
        x[ix] = old - h
        f_minus = np.array(f(x), copy=True)
        x[ix] = old
        grad[ix] = np.sum((f_plus - f_minus) * df) / (2 * h)
    return grad
