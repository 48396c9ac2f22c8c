"""Pooling (NHWC; the cores ignore the caller's layout, ``nchw``).

Max pooling looks at every window through the patch view of ``_patches``.
Average pooling, fixed windows and adaptive bins alike, is linear and
separable: ``y = P_h @ x @ P_w.T`` on every (n, c) plane, where row ``o`` of
the pooling matrix ``P`` holds ``1 / divisor`` on the input cells window
``o`` reads along that axis. Its backward is the same product with the
matrices transposed.
"""
import numpy as np

from ._patches import pad, windows


def _covering(g):
    """g with the bottom/right padding grown so every window lies inside the padded array.

    Only ``ceil_mode``'s last window can reach past the real padding; the
    extra cells are padding too (they never win and are outside ``inside``).
    """
    extra_h = max((g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1 - (g.pt + g.h + g.pb), 0)
    extra_w = max((g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1 - (g.pl + g.w + g.pr), 0)
    return g._replace(pb=g.pb + extra_h, pr=g.pr + extra_w)


def max_pool2d_argmax(x, g, nchw):
    """Window maxima and the flat (h * W + w) index of the first maximum (or first NaN)."""
    g = _covering(g)
    win = windows(pad(x, g, value=-np.inf), g)  # (N, OH, OW, T, C)
    inside = windows(pad(np.ones((1, g.h, g.w, 1), dtype=bool), g, value=False), g)
    y = win.max(axis=3)  # NaN propagates, as np.max does
    # Padding can tie only with a -inf input, and must never win; a NaN wins.
    hit = inside & ((win == y[:, :, :, None, :]) | np.isnan(win))
    t = hit.argmax(axis=3)  # first hit in row-major window order
    kh, kw = np.divmod(t, g.kw)
    rows = np.arange(g.oh)[None, :, None, None] * g.sh - g.pt + kh * g.dh
    cols = np.arange(g.ow)[None, None, :, None] * g.sw - g.pl + kw * g.dw
    return y, (rows * g.w + cols).astype(np.int64)


def max_pool2d(x, g, nchw):
    """Window maxima (NaN where the window holds one)."""
    return max_pool2d_argmax(x, g, nchw)[0]


def max_pool2d_backward(dy, argmax, h, w, nchw):
    """dx[n, argmax, c] += dy[n, oh, ow, c], summed where windows overlap."""
    n, _, _, c = dy.shape
    target = (np.arange(n)[:, None, None, None] * (h * w) + argmax) * c + np.arange(c)
    dx = np.bincount(target.ravel(), weights=dy.ravel(), minlength=n * h * w * c)
    return dx.astype(dy.dtype).reshape(n, h, w, c)


def max_unpool2d(y, argmax, h, w, nchw):
    """x[n, argmax, c] = y[n, oh, ow, c] on zeros; of entries sharing a cell the last (row-major in y) wins."""
    n, _, _, c = y.shape
    target = ((np.arange(n)[:, None, None, None] * (h * w) + argmax) * c + np.arange(c)).ravel()
    # NumPy does not promise which of repeated fancy-index assignments lands,
    # so pick the last occurrence of each target explicitly: np.unique on the
    # reversed order returns each target's first index there.
    cells, last = np.unique(target[::-1], return_index=True)
    x = np.zeros(n * h * w * c, dtype=y.dtype)
    x[cells] = y.ravel()[::-1][last]
    return x.reshape(n, h, w, c)


def _window_matrix(size, out, k, stride, pad_before, pad_after, count_include_pad, dtype):
    """(out, size): window ``o`` reads input cells [o * stride - pad_before, ... + k), divided
    by their count, or with ``count_include_pad`` by the window cells inside the padded input."""
    start = np.arange(out)[:, None] * stride - pad_before
    cells = np.arange(size)[None, :]
    reads = (cells >= start) & (cells < start + k)
    divisor = np.minimum(start + k, size + pad_after) - start if count_include_pad else reads.sum(1, keepdims=True)
    return (reads / divisor).astype(dtype)


def _bin_matrix(size, out, dtype):
    """(out, size): bin ``i`` averages [floor(i * size / out), ceil((i + 1) * size / out))."""
    i = np.arange(out)[:, None]
    cells = np.arange(size)[None, :]
    reads = (cells >= i * size // out) & (cells < -(-(i + 1) * size // out))
    return (reads / reads.sum(1, keepdims=True)).astype(dtype)


def _apply(rows, x, cols):
    """y[n, i, j, c] = sum over h, w of rows[i, h] * x[n, h, w, c] * cols[j, w]."""
    return np.einsum("ih,nhwc,jw->nijc", rows, x, cols, optimize=True)


def _windows(g, count_include_pad, dtype):
    return (_window_matrix(g.h, g.oh, g.kh, g.sh, g.pt, g.pb, count_include_pad, dtype),
            _window_matrix(g.w, g.ow, g.kw, g.sw, g.pl, g.pr, count_include_pad, dtype))


def avg_pool2d(x, g, count_include_pad, nchw):
    """Window means."""
    rows, cols = _windows(g, count_include_pad, x.dtype)
    return _apply(rows, x, cols)


def avg_pool2d_backward(dy, g, count_include_pad, nchw):
    """The adjoint of avg_pool2d: the pooling matrices transposed."""
    rows, cols = _windows(g, count_include_pad, dy.dtype)
    return _apply(rows.T, dy, cols.T)


def adaptive_avg_pool2d(x, oh, ow, nchw):
    """Bin means."""
    _, h, w, _ = x.shape
    return _apply(_bin_matrix(h, oh, x.dtype), x, _bin_matrix(w, ow, x.dtype))


def adaptive_avg_pool2d_backward(dy, h, w, nchw):
    """The adjoint of adaptive_avg_pool2d."""
    _, oh, ow, _ = dy.shape
    return _apply(_bin_matrix(h, oh, dy.dtype).T, dy, _bin_matrix(w, ow, dy.dtype).T)
