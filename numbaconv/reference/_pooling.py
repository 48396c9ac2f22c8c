"""Pooling (NHWC; the cores ignore the caller's layout, ``nchw``).

Max pooling looks at every window through the patch view of ``_patches``.
Average pooling, fixed windows and adaptive bins alike, takes its windows
per axis from ``numbaconv._geometry`` (rows [start, stop) and a divisor per
output row, columns alike) and averages one window at a time over the whole
batch and all channels. (A product with pooling matrices would be shorter,
but its zeros times an inf make NaN in every window.)
"""
import numpy as np

from .. import _geometry
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
    (sh, sw), (dh, dw) = g.stride, g.dilation  # the caller's (see patches.tap)
    rows = np.arange(g.oh)[None, :, None, None] * sh - g.pt + kh * dh
    cols = np.arange(g.ow)[None, None, :, None] * sw - g.pl + kw * dw
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


def _windows(g, count_include_pad):
    return (_geometry.pool_windows(g.h, g.oh, g.kh, g.sh, g.pt, g.pb, count_include_pad),
            _geometry.pool_windows(g.w, g.ow, g.kw, g.sw, g.pl, g.pr, count_include_pad))


def _average(x, rows, cols):
    """y[:, i, j] = the sum of x over window rows[i] x cols[j], divided by the two divisors."""
    (row_start, row_stop, row_div), (col_start, col_stop, col_div) = rows, cols
    y = np.empty((x.shape[0], row_start.size, col_start.size, x.shape[3]), dtype=x.dtype)
    for i, j in np.ndindex(row_start.size, col_start.size):
        window = x[:, row_start[i]:row_stop[i], col_start[j]:col_stop[j]]
        y[:, i, j] = window.sum(axis=(1, 2)) / int(row_div[i] * col_div[j])
    return y


def _average_backward(dy, rows, cols, h, w):
    """The adjoint of _average: each dy[:, i, j] / divisor added to every cell of its window."""
    (row_start, row_stop, row_div), (col_start, col_stop, col_div) = rows, cols
    dx = np.zeros((dy.shape[0], h, w, dy.shape[3]), dtype=dy.dtype)
    for i, j in np.ndindex(row_start.size, col_start.size):
        share = dy[:, i, j] / int(row_div[i] * col_div[j])  # a Python int keeps the dtype
        dx[:, row_start[i]:row_stop[i], col_start[j]:col_stop[j]] += share[:, None, None, :]
    return dx


def avg_pool2d(x, g, count_include_pad, nchw):
    """Window means."""
    rows, cols = _windows(g, count_include_pad)
    return _average(x, rows, cols)


def avg_pool2d_backward(dy, g, count_include_pad, nchw):
    """The adjoint of avg_pool2d."""
    rows, cols = _windows(g, count_include_pad)
    return _average_backward(dy, rows, cols, g.h, g.w)


def adaptive_avg_pool2d(x, oh, ow, nchw):
    """Bin means."""
    _, h, w, _ = x.shape
    return _average(x, _geometry.adaptive_bins(h, oh), _geometry.adaptive_bins(w, ow))


def adaptive_avg_pool2d_backward(dy, h, w, nchw):
    """The adjoint of adaptive_avg_pool2d."""
    _, oh, ow, _ = dy.shape
    return _average_backward(dy, _geometry.adaptive_bins(h, oh), _geometry.adaptive_bins(w, ow), h, w)
