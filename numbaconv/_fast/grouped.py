"""Grouped convolution drivers: the ``grouped_*`` cores of ``numbaconv._api.Backend``.

``groups = C_in`` (one input channel per filter) is depthwise convolution and
runs the depthwise kernels (``_fast.depthwise``). Any other ``groups > 1``
runs the dense convolution cores once per group, on the group's channel
slices, each result written into its channel slice of the output: a group is
an ordinary convolution of ``C_in // groups`` to ``C_out // groups``
channels, so the dense kernels' speed carries over without kernels of its
own. With NCHW data (``nchw``) a group's channels are one contiguous block of
the caller's memory, so the slices cost no copy; the result is allocated in
NCHW memory too.
"""
import numpy as np

from . import convolution as dense
from . import depthwise
from ._memory import deliver


def _group_slices(channels, groups):
    step = channels // groups
    return [slice(i * step, (i + 1) * step) for i in range(groups)]


def _empty(shape, dtype, nchw):
    """An NHWC-indexed result of ``shape``, in NCHW memory when ``nchw``."""
    if nchw:
        n, h, w, c = shape
        return np.empty((n, c, h, w), dtype).transpose(0, 2, 3, 1)
    return np.empty(shape, dtype)


def grouped_conv2d(x, w, b, g, groups, nchw, out=None):
    """``out`` (an NHWC-indexed view of the caller's buffer) gets a copy of the result."""
    if w.shape[2] == 1:
        return deliver(depthwise.conv2d(x, w, b, g, groups, nchw), out)
    c_out = w.shape[3]
    y = _empty((x.shape[0], g.oh, g.ow, c_out), x.dtype, nchw)
    for ins, outs in zip(_group_slices(x.shape[3], groups), _group_slices(c_out, groups), strict=True):
        y[..., outs] = dense.conv2d(x[..., ins], w[..., outs], None if b is None else b[outs], g, nchw)
    return deliver(y, out)


def grouped_conv2d_transpose(x, w, b, g, groups, nchw, out=None):
    """Groups split x's channels (the forward conv's C_out) and the result's (its C_in) alike."""
    if w.shape[2] == 1:
        return deliver(depthwise.conv2d_transpose(x, w, b, g, groups, nchw), out)
    c_in = w.shape[2] * groups
    y = _empty((x.shape[0], g.h, g.w, c_in), x.dtype, nchw)
    for ins, outs in zip(_group_slices(c_in, groups), _group_slices(x.shape[3], groups), strict=True):
        y[..., ins] = dense.conv2d_transpose(x[..., outs], w[..., outs], None if b is None else b[ins],
                                             g, nchw)
    return deliver(y, out)


def grouped_conv2d_backward_filter(x, dy, g, groups, nchw, out=None):
    if x.shape[3] == groups:
        return deliver(depthwise.conv2d_backward_filter(x, dy, g, groups, nchw), out)
    c_out = dy.shape[3]
    dw = np.empty((g.kh, g.kw, x.shape[3] // groups, c_out), x.dtype)
    for ins, outs in zip(_group_slices(x.shape[3], groups), _group_slices(c_out, groups), strict=True):
        dw[..., outs] = dense.conv2d_backward_filter(x[..., ins], dy[..., outs], g, nchw)
    return deliver(dw, out)
