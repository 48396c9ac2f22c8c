"""Max pooling with argmax routing (NHWC; the cores ignore the caller's layout, ``nchw``)."""
import numpy as np

from ._patches import pad, windows


def max_pool2d_argmax(x, g, nchw):
    """Window maxima and the flat (h * W + w) index of the first maximum (or first NaN)."""
    win = windows(pad(x, g, value=-np.inf), g)  # (N, OH, OW, T, C)
    inside = windows(pad(np.ones((1, g.h, g.w, 1), dtype=bool), g, value=False), g)
    y = win.max(axis=3)  # NaN propagates, as np.max does
    # Padding can tie only with a -inf input, and must never win; a NaN wins.
    hit = inside & ((win == y[:, :, :, None, :]) | np.isnan(win))
    t = hit.argmax(axis=3)  # first hit in row-major window order
    kh, kw = np.divmod(t, g.kw)
    sh, sw = g.stride  # the caller's (see patches.tap)
    rows = np.arange(g.oh)[None, :, None, None] * sh - g.pt + kh
    cols = np.arange(g.ow)[None, None, :, None] * sw - g.pl + kw
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
