"""The public functions on the Numba kernels (re-exported by ``numbaconv``).

Each is a plain function: its signature and docstring here are the API's,
its body calls the shared body in ``_api`` with this backend's cores.
"""
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import _api, _threads
from ._api import Gradients, IntOrPair, Padding
from ._fast import convolution as _convolution
from ._fast import grouped as _grouped
from ._fast import normalization as _normalization
from ._fast import patches as _patches
from ._fast import pooling as _pooling

# Each core runs serially when its estimated work is too small to share
# (see ``numbaconv._threads``).
_small = _threads.serial_when_small
_BACKEND = _api.Backend(
    conv2d=_small(_convolution.conv2d, _threads.conv_cost),
    conv2d_transpose=_small(_convolution.conv2d_transpose, _threads.transpose_cost),
    conv2d_backward_filter=_small(_convolution.conv2d_backward_filter, _threads.filter_cost),
    bias_backward=_small(_convolution.bias_backward, _threads.bias_cost),
    grouped_conv2d=_small(_grouped.grouped_conv2d, _threads.conv_cost),
    grouped_conv2d_transpose=_small(_grouped.grouped_conv2d_transpose, _threads.transpose_cost),
    grouped_conv2d_backward_filter=_small(_grouped.grouped_conv2d_backward_filter,
                                          _threads.grouped_filter_cost),
    im2col=_small(_patches.im2col, _threads.window_cost),
    col2im=_small(_patches.col2im, _threads.col2im_cost),
    max_pool2d=_small(_pooling.max_pool2d, _threads.window_cost),
    max_pool2d_argmax=_small(_pooling.max_pool2d_argmax, _threads.window_cost),
    max_pool2d_backward=_small(_pooling.max_pool2d_backward, _threads.scatter_cost),
    lrn=_small(_normalization.lrn, _threads.lrn_cost),
    lrn_backward=_small(_normalization.lrn_backward, _threads.lrn_backward_cost),
    max_unpool2d=_small(_pooling.max_unpool2d, _threads.scatter_cost),
    avg_pool2d=_small(_pooling.avg_pool2d, _threads.window_cost),
    avg_pool2d_backward=_small(_pooling.avg_pool2d_backward, _threads.window_cost),
    adaptive_avg_pool2d=_small(_pooling.adaptive_avg_pool2d, _threads.adaptive_cost),
    adaptive_avg_pool2d_backward=_small(_pooling.adaptive_avg_pool2d_backward,
                                        _threads.adaptive_backward_cost),
)

# --------------------------------------------------------------- convolution


@_api.public("numbaconv")
def conv2d(x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *, stride: IntOrPair = 1,
           padding: Padding = 0, dilation: IntOrPair = 1, groups: int = 1,
           data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """2-D cross-correlation plus bias (what TensorFlow and PyTorch call conv2d), grouped or depthwise too.

    ``y[n, oh, ow, o] = b[o] + sum(x[n, oh * sh - top + kh * dh, ow * sw - left + kw * dw, i]
    * w[kh, kw, i, o])`` over the window, padded cells reading as zero. With
    ``groups > 1``, output channel ``o`` reads only the ``C_in // groups``
    input channels of its group ``o // (C_out // groups)``.

    Parameters
    ----------
    x : array_like of shape (N, H, W, C_in), or (N, C_in, H, W) with NCHW
        The input batch.
    w : array_like of shape (KH, KW, C_in // groups, C_out), or (C_out, C_in // groups, KH, KW) with NCHW
        The filters: HWIO with NHWC data, OIHW with NCHW data.
    b : array_like of shape (C_out,), optional
        The bias, added to every output position.
    stride : int or (int, int), default 1
        Step of the window along (H, W); each >= 1.
    padding : {'SAME', 'VALID'}, int, (int, int) or ((int, int), (int, int)), default 0
        ``'SAME'`` (TensorFlow's rule: ``OH = ceil(H / stride)``, an odd extra
        padding row/column at the bottom/right), ``'VALID'`` (none), the same
        padding on all sides, ``(ph, pw)``, or ``((top, bottom), (left, right))``.
    dilation : int or (int, int), default 1
        Spacing of the window taps along (H, W); each >= 1.
    groups : int, default 1
        Split the channels into this many groups (it must divide C_in and
        C_out), each convolved with its own ``C_out // groups`` filters.
        ``groups = C_in`` is depthwise convolution (channel multiplier
        ``C_out // C_in``).
    data_format : {'NHWC', 'NCHW'}, default 'NHWC'
        The layout of ``x`` and of the result (any case).
    out : ndarray, optional
        A buffer to write the result into instead of a fresh array: of the
        result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input (``ValueError``/``TypeError`` naming it
        otherwise, before any computation). It is returned.

    Returns
    -------
    y : ndarray of shape (N, OH, OW, C_out), or (N, C_out, OH, OW) with NCHW
        ``OH = (H + top + bottom - dilation * (KH - 1) - 1) // stride + 1`` (OW
        alike), dtype ``np.result_type(x, w, b, np.float32)``; a fresh
        C-contiguous array.

    Raises
    ------
    ValueError
        If an array has the wrong number of dimensions, ``x``'s channels do not
        match ``w`` and ``groups``, ``groups`` does not divide C_in and C_out,
        ``b`` is not of shape (C_out,), ``w`` has an empty window, the output
        would be empty, or a stride, dilation, padding, groups or data format
        is out of range.
    TypeError
        If an array is complex, object or string, or a stride, dilation,
        padding or groups is not an int.

    See Also
    --------
    conv2d_backward : The gradients with respect to x, w and b.
    conv2d_transpose : The adjoint (transposed convolution).

    Notes
    -----
    TensorFlow: ``tf.nn.bias_add(tf.nn.conv2d(x, w, strides, padding,
    dilations=dilation), b)`` with NHWC data and HWIO filters; ``'SAME'`` is the
    same rule, explicit padding is TensorFlow's ``[[0, 0], [top, bottom], [left,
    right], [0, 0]]``. PyTorch: ``torch.nn.functional.conv2d(x, w, b, stride,
    padding, dilation)`` with ``data_format='NCHW'`` and OIHW filters;
    asymmetric padding, which PyTorch's ``conv2d`` does not take, is
    ``((top, bottom), (left, right))`` here. ``groups`` is PyTorch's
    ``groups``, and the grouped filters of TensorFlow's ``conv2d`` (whose
    gradients TensorFlow refuses to compute on CPU). TensorFlow's
    ``tf.nn.depthwise_conv2d(x, w_dw, ...)`` with a ``(KH, KW, C_in, M)``
    filter is ``conv2d(x, w_dw.reshape(KH, KW, 1, C_in * M), groups=C_in)``
    (output channel ``c * M + m``).

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)  # NHWC
    >>> w = np.ones((2, 2, 1, 1), np.float32)  # HWIO: a 2x2 box sum
    >>> y = nc.conv2d(x, w, stride=2)
    >>> y[0, :, :, 0]
    array([[10., 18.],
           [42., 50.]], dtype=float32)
    >>> nc.conv2d(x, w, padding="SAME").shape
    (1, 4, 4, 1)
    >>> x_nchw, w_oihw = x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1)
    >>> nc.conv2d(x_nchw, w_oihw, stride=2, data_format="NCHW").shape
    (1, 1, 2, 2)

    Depthwise (``groups = C_in``): channel c is convolved with filter c only.

    >>> x2 = np.concatenate([x, np.ones_like(x)], axis=3)  # (1, 4, 4, 2)
    >>> w_dw = np.ones((2, 2, 1, 2), np.float32)  # (KH, KW, C_in // groups, C_out)
    >>> w_dw[..., 1] = 2
    >>> y2 = nc.conv2d(x2, w_dw, stride=2, groups=2)
    >>> y2[0, :, :, 0]
    array([[10., 18.],
           [42., 50.]], dtype=float32)
    >>> y2[0, :, :, 1]
    array([[8., 8.],
           [8., 8.]], dtype=float32)
    """
    return _api.conv2d(_BACKEND, x, w, b, stride, padding, dilation, groups, data_format, out=out)


@_api.public("numbaconv")
def conv2d_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike, *, stride: IntOrPair = 1,
                    padding: Padding = 0, dilation: IntOrPair = 1, groups: int = 1,
                    data_format: str = "NHWC",
                    out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Gradients:
    """Gradients of ``sum(conv2d(x, w, b) * dy)`` with respect to x, w and b.

    Parameters
    ----------
    dy : array_like of shape (N, OH, OW, C_out), or (N, C_out, OH, OW) with NCHW
        The gradient of the loss with respect to ``conv2d``'s output.
    x : array_like of shape (N, H, W, C_in), or (N, C_in, H, W) with NCHW
        The forward call's input.
    w : array_like of shape (KH, KW, C_in // groups, C_out), or (C_out, C_in // groups, KH, KW) with NCHW
        The forward call's filters.
    stride, padding, dilation, groups, data_format
        As in :func:`conv2d`, the forward call's.
    out : tuple of 3 ndarrays (dx, dw, db), optional
        Buffers to write the results into instead of fresh arrays: each of
        its result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input or another buffer (``ValueError``/``TypeError``
        naming it otherwise, before any computation). The tuple is returned.

    Returns
    -------
    dx : ndarray of x's shape
        The gradient with respect to ``x`` (the transposed convolution of ``dy``).
    dw : ndarray of w's shape
        The gradient with respect to ``w``.
    db : ndarray of shape (C_out,)
        The gradient with respect to the bias, ``dy`` summed over N, OH, OW;
        returned even when the forward call had no bias.

    Raises
    ------
    ValueError
        As :func:`conv2d`, and if ``dy`` does not have the shape of the forward
        output.
    TypeError
        As :func:`conv2d`.

    See Also
    --------
    conv2d : The forward pass.
    conv2d_backward_input, conv2d_backward_filter : dx and dw alone.

    Notes
    -----
    TensorFlow: ``tf.raw_ops.Conv2DBackpropInput``, ``Conv2DBackpropFilter``
    and ``BiasAddGrad`` (or ``tf.GradientTape`` on ``tf.nn.conv2d``). PyTorch:
    ``torch.nn.grad.conv2d_input`` and ``conv2d_weight`` (or autograd on
    ``torch.nn.functional.conv2d``) with ``data_format='NCHW'``.

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
    >>> w = np.ones((2, 2, 1, 1))
    >>> dy = np.ones((1, 2, 2, 1))  # the gradient of sum(conv2d(x, w, stride=2))
    >>> dx, dw, db = nc.conv2d_backward(dy, x, w, stride=2)
    >>> dx[0, :, :, 0]  # each pixel is in one window
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]])
    >>> dw[:, :, 0, 0]  # the sum of what each tap reads
    array([[20., 24.],
           [36., 40.]])
    >>> db
    array([4.])
    """
    return _api.conv2d_backward(_BACKEND, dy, x, w, stride, padding, dilation, groups, data_format, out=out)


@_api.public("numbaconv")
def conv2d_backward_input(dy: ArrayLike, w: ArrayLike, x_shape: Sequence[int], *,
                          stride: IntOrPair = 1, padding: Padding = 0, dilation: IntOrPair = 1,
                          groups: int = 1, data_format: str = "NHWC",
                          out: np.ndarray | None = None) -> np.ndarray:
    """The gradient of ``sum(conv2d(x, w) * dy)`` with respect to x, without computing dw.

    Parameters
    ----------
    dy : array_like of shape (N, OH, OW, C_out), or (N, C_out, OH, OW) with NCHW
        The gradient of the loss with respect to ``conv2d``'s output.
    w : array_like of shape (KH, KW, C_in // groups, C_out), or (C_out, C_in // groups, KH, KW) with NCHW
        The forward call's filters.
    x_shape : tuple of 4 ints
        The forward input's shape, (N, H, W, C_in), or (N, C_in, H, W) with
        NCHW; ``'SAME'`` padding is resolved from it.
    stride, padding, dilation, groups, data_format
        As in :func:`conv2d`, the forward call's.
    out : ndarray, optional
        A buffer to write the result into instead of a fresh array: of the
        result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input (``ValueError``/``TypeError`` naming it
        otherwise, before any computation). It is returned.

    Returns
    -------
    dx : ndarray of shape x_shape
        The ``dx`` of :func:`conv2d_backward`, dtype ``np.result_type(dy, w,
        np.float32)``.

    Raises
    ------
    ValueError
        As :func:`conv2d_backward`, with ``x_shape`` in the place of ``x``.
    TypeError
        As :func:`conv2d`, or if ``x_shape`` is not a tuple of ints.

    See Also
    --------
    conv2d_backward : dx, dw and db together.
    conv2d_transpose : The same computation, with the output size given by
        ``output_padding`` instead of ``x_shape``.

    Notes
    -----
    TensorFlow: ``tf.raw_ops.Conv2DBackpropInput(input_sizes=x_shape, ...)``
    (NHWC). PyTorch: ``torch.nn.grad.conv2d_input(x_shape, w, dy, stride,
    padding, dilation, groups)`` with ``data_format='NCHW'``.

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> w = np.ones((2, 2, 1, 1))
    >>> dy = np.ones((1, 2, 2, 1))
    >>> nc.conv2d_backward_input(dy, w, (1, 3, 3, 1))[0, :, :, 0]  # windows covering each pixel
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    return _api.conv2d_backward_input(_BACKEND, dy, w, x_shape, stride, padding, dilation, groups,
                                      data_format, out=out)


@_api.public("numbaconv")
def conv2d_backward_filter(dy: ArrayLike, x: ArrayLike, w_shape: Sequence[int], *,
                           stride: IntOrPair = 1, padding: Padding = 0, dilation: IntOrPair = 1,
                           groups: int = 1, data_format: str = "NHWC",
                           out: np.ndarray | None = None) -> np.ndarray:
    """The gradient of ``sum(conv2d(x, w) * dy)`` with respect to w, without computing dx.

    Parameters
    ----------
    dy : array_like of shape (N, OH, OW, C_out), or (N, C_out, OH, OW) with NCHW
        The gradient of the loss with respect to ``conv2d``'s output.
    x : array_like of shape (N, H, W, C_in), or (N, C_in, H, W) with NCHW
        The forward call's input.
    w_shape : tuple of 4 ints
        The filters' shape, (KH, KW, C_in // groups, C_out), or (C_out, C_in //
        groups, KH, KW) with NCHW.
    stride, padding, dilation, groups, data_format
        As in :func:`conv2d`, the forward call's.
    out : ndarray, optional
        A buffer to write the result into instead of a fresh array: of the
        result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input (``ValueError``/``TypeError`` naming it
        otherwise, before any computation). It is returned.

    Returns
    -------
    dw : ndarray of shape w_shape
        The ``dw`` of :func:`conv2d_backward`, dtype ``np.result_type(dy, x,
        np.float32)``.

    Raises
    ------
    ValueError
        As :func:`conv2d_backward`, with ``w_shape`` in the place of ``w``.
    TypeError
        As :func:`conv2d`, or if ``w_shape`` is not a tuple of ints.

    See Also
    --------
    conv2d_backward : dx, dw and db together.

    Notes
    -----
    TensorFlow: ``tf.raw_ops.Conv2DBackpropFilter(filter_sizes=w_shape, ...)``
    (NHWC/HWIO). PyTorch: ``torch.nn.grad.conv2d_weight(x, w_shape, dy,
    stride, padding, dilation, groups)`` with ``data_format='NCHW'``.

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> x = np.arange(9.0).reshape(1, 3, 3, 1)
    >>> dy = np.ones((1, 2, 2, 1))
    >>> nc.conv2d_backward_filter(dy, x, (2, 2, 1, 1))[:, :, 0, 0]  # what each tap reads, summed
    array([[ 8., 12.],
           [20., 24.]])
    """
    return _api.conv2d_backward_filter(_BACKEND, dy, x, w_shape, stride, padding, dilation, groups,
                                       data_format, out=out)


@_api.public("numbaconv")
def conv2d_transpose(x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *,
                     stride: IntOrPair = 1, padding: Padding = 0,
                     output_padding: IntOrPair = 0, dilation: IntOrPair = 1, groups: int = 1,
                     data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """Transposed convolution: the adjoint of :func:`conv2d` with the same w and geometry.

    Each input entry spreads its filter taps over the output plane; overlaps
    add up. ``conv2d_transpose(dy, w, ...)`` is ``conv2d``'s input gradient.
    With ``groups > 1`` it is the adjoint of the grouped conv: ``groups``
    splits this function's input channels (the forward conv's C_out).

    Parameters
    ----------
    x : array_like of shape (N, H, W, C_out), or (N, C_out, H, W) with NCHW
        The input; it has the channel count of the forward conv's *output*.
    w : array_like of shape (KH, KW, C_in // groups, C_out), or (C_out, C_in // groups, KH, KW) with NCHW
        The forward conv's filters (HWIO with NHWC, OIHW with NCHW).
    b : array_like of shape (C_in,), optional
        The bias, added to every output position.
    stride, dilation : int or (int, int), default 1
        Those of the forward conv; each >= 1.
    padding : int, (int, int), ((int, int), (int, int)) or {'VALID', 'SAME'}, default 0
        The forward conv's padding, removed from the output. ``'VALID'`` is no
        padding; ``'SAME'`` gives ``OH = H * stride`` (TensorFlow's rule).
    output_padding : int or (int, int), default 0
        Extra rows/columns at the bottom/right, to pick one of the input sizes
        a strided forward conv maps to the same output size; each must be
        smaller than the stride or the dilation along its axis (PyTorch's
        rule), and 0 with ``'SAME'``.
    groups : int, default 1
        The forward conv's groups; it must divide C_out (``x``'s channels).
    data_format : {'NHWC', 'NCHW'}, default 'NHWC'
        The layout of ``x`` and of the result (any case).
    out : ndarray, optional
        A buffer to write the result into instead of a fresh array: of the
        result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input (``ValueError``/``TypeError`` naming it
        otherwise, before any computation). It is returned.

    Returns
    -------
    y : ndarray of shape (N, OH, OW, C_in), or (N, C_in, OH, OW) with NCHW
        ``OH = (H - 1) * stride - top - bottom + dilation * (KH - 1) + 1 +
        output_padding`` (OW alike), dtype ``np.result_type(x, w, b,
        np.float32)``; a fresh C-contiguous array.

    Raises
    ------
    ValueError
        As :func:`conv2d` (with ``x``'s channels checked against C_out and
        ``b`` against C_in), and if ``output_padding`` is not smaller than the
        stride or the dilation, or is nonzero with ``'SAME'``.
    TypeError
        As :func:`conv2d`.

    See Also
    --------
    conv2d_transpose_backward : The gradients with respect to x, w and b.
    conv2d : The forward conv this is the adjoint of.

    Notes
    -----
    TensorFlow: ``tf.nn.conv2d_transpose(x, w, output_shape, strides, padding,
    dilations=dilation)``; TensorFlow takes the output shape where this takes
    ``output_padding``. PyTorch: ``torch.nn.functional.conv_transpose2d(x,
    w, b, stride, padding, output_padding, dilation=dilation)`` with
    ``data_format='NCHW'``: the same formula; PyTorch's weight, shaped
    ``(in_channels, out_channels // groups, KH, KW)`` in the transpose's own
    terms, is the OIHW filter here as it is (also with ``groups``).

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> x = np.ones((1, 2, 2, 1))
    >>> w = np.ones((2, 2, 1, 1))
    >>> nc.conv2d_transpose(x, w)[0, :, :, 0]  # overlapping taps add up
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> up = nc.conv2d_transpose(np.ones((1, 4, 4, 8)), np.ones((3, 3, 3, 8)),
    ...                          stride=2, padding=1, output_padding=1)
    >>> up.shape  # twice the input plane, C_in = 3 channels
    (1, 8, 8, 3)
    """
    return _api.conv2d_transpose(_BACKEND, x, w, b, stride, padding, output_padding, dilation,
                                 groups, data_format, out=out)


@_api.public("numbaconv")
def conv2d_transpose_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike, *,
                              stride: IntOrPair = 1, padding: Padding = 0,
                              output_padding: IntOrPair = 0, dilation: IntOrPair = 1,
                              groups: int = 1,
                              data_format: str = "NHWC",
                              out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Gradients:
    """Gradients of ``sum(conv2d_transpose(x, w, b) * dy)`` with respect to x, w and b.

    Parameters
    ----------
    dy : array_like of shape (N, OH, OW, C_in), or (N, C_in, OH, OW) with NCHW
        The gradient of the loss with respect to ``conv2d_transpose``'s output.
    x : array_like of shape (N, H, W, C_out), or (N, C_out, H, W) with NCHW
        The forward call's input.
    w : array_like of shape (KH, KW, C_in // groups, C_out), or (C_out, C_in // groups, KH, KW) with NCHW
        The forward call's filters.
    stride, padding, output_padding, dilation, groups, data_format
        As in :func:`conv2d_transpose`, the forward call's.
    out : tuple of 3 ndarrays (dx, dw, db), optional
        Buffers to write the results into instead of fresh arrays: each of
        its result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input or another buffer (``ValueError``/``TypeError``
        naming it otherwise, before any computation). The tuple is returned.

    Returns
    -------
    dx : ndarray of x's shape
        The gradient with respect to ``x`` (the convolution of ``dy``).
    dw : ndarray of w's shape
        The gradient with respect to ``w``.
    db : ndarray of shape (C_in,)
        ``dy`` summed over N, OH, OW; returned even without a forward bias.

    Raises
    ------
    ValueError
        As :func:`conv2d_transpose`, and if ``dy`` does not have the shape of
        the forward output.
    TypeError
        As :func:`conv2d_transpose`.

    See Also
    --------
    conv2d_transpose : The forward pass.

    Notes
    -----
    TensorFlow and PyTorch compute these through autograd
    (``tf.GradientTape`` on ``tf.nn.conv2d_transpose``, ``backward`` through
    ``torch.nn.functional.conv_transpose2d``): ``dx`` is ``conv2d(dy, w)``
    of the same geometry.

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> x = np.ones((1, 2, 2, 1))
    >>> w = np.ones((2, 2, 1, 1))
    >>> y = nc.conv2d_transpose(x, w)  # (1, 3, 3, 1)
    >>> dx, dw, db = nc.conv2d_transpose_backward(np.ones_like(y), x, w)
    >>> dx[0, :, :, 0]  # each x entry reaches four outputs
    array([[4., 4.],
           [4., 4.]])
    >>> db
    array([9.])
    """
    return _api.conv2d_transpose_backward(_BACKEND, dy, x, w, stride, padding, output_padding,
                                          dilation, groups, data_format, out=out)


# ------------------------------------------------------------------- patches


@_api.public("numbaconv")
def im2col(x: ArrayLike, kernel_size: IntOrPair, *, stride: IntOrPair = 1,
           padding: Padding = 0, dilation: IntOrPair = 1,
           data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """Every window of ``x`` as one row of a matrix (the patches of a convolution).

    Parameters
    ----------
    x : array_like of shape (N, H, W, C), or (N, C, H, W) with NCHW
        The input batch.
    kernel_size : int or (int, int)
        The window (KH, KW); each >= 1.
    stride, padding, dilation, data_format
        As in :func:`conv2d`.
    out : ndarray, optional
        A buffer to write the result into instead of a fresh array: of the
        result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input (``ValueError``/``TypeError`` naming it
        otherwise, before any computation). It is returned.

    Returns
    -------
    cols : ndarray of shape (N * OH * OW, KH * KW * C)
        Rows in (n, oh, ow) order, columns in (kh, kw, c) order for both data
        formats; padded positions read as zero. ``conv2d(x, w)`` is ``cols @
        w.reshape(KH * KW * C, C_out)`` with HWIO filters.

    Raises
    ------
    ValueError
        If ``x`` is not 4-D, the output would be empty, or a size, stride,
        dilation, padding or data format is out of range.
    TypeError
        If ``x`` is complex, object or string, or a size is not an int.

    See Also
    --------
    col2im : Its adjoint.

    Notes
    -----
    TensorFlow: ``tf.image.extract_patches(x, [1, KH, KW, 1], [1, sh, sw, 1],
    [1, dh, dw, 1], padding)`` reshaped to ``(-1, KH * KW * C)`` is the same
    matrix. PyTorch: ``torch.nn.functional.unfold`` returns ``(N, C * KH * KW,
    L)`` with columns in (c, kh, kw) order: ``u.reshape(N, C, KH * KW,
    L).permute(0, 3, 2, 1).reshape(N * L, -1)`` is this matrix.

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> x = np.arange(9.0).reshape(1, 3, 3, 1)
    >>> nc.im2col(x, 2)  # four 2x2 windows, one per row
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    return _api.im2col(_BACKEND, x, kernel_size, stride, padding, dilation, data_format, out=out)


@_api.public("numbaconv")
def col2im(cols: ArrayLike, x_shape: Sequence[int], kernel_size: IntOrPair, *,
           stride: IntOrPair = 1, padding: Padding = 0, dilation: IntOrPair = 1,
           data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """The exact adjoint of :func:`im2col`: patches summed back into an array of ``x_shape``.

    Parameters
    ----------
    cols : array_like of shape (N * OH * OW, KH * KW * C)
        Patches laid out as :func:`im2col` returns them.
    x_shape : tuple of 4 ints
        The shape of the image, (N, H, W, C), or (N, C, H, W) with NCHW.
    kernel_size, stride, padding, dilation, data_format
        As in :func:`im2col`.
    out : ndarray, optional
        A buffer to write the result into instead of a fresh array: of the
        result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input (``ValueError``/``TypeError`` naming it
        otherwise, before any computation). It is returned.

    Returns
    -------
    x : ndarray of shape x_shape
        Each pixel is the sum of every ``cols`` entry read from it;
        entries that fall on padding are dropped.

    Raises
    ------
    ValueError
        If ``cols`` does not have the shape ``im2col`` gives for ``x_shape``,
        or as :func:`im2col`.
    TypeError
        As :func:`im2col`, or if ``x_shape`` is not a tuple of ints.

    See Also
    --------
    im2col : Its adjoint.

    Notes
    -----
    PyTorch: ``torch.nn.functional.fold`` (columns in (c, kh, kw) order; see
    :func:`im2col`). TensorFlow has no public op; it is the gradient of
    ``tf.image.extract_patches``.

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> x = np.ones((1, 3, 3, 1))
    >>> cols = nc.im2col(x, 2)
    >>> nc.col2im(cols, x.shape, 2)[0, :, :, 0]  # how many windows cover each pixel
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    return _api.col2im(_BACKEND, cols, x_shape, kernel_size, stride, padding, dilation,
                       data_format, out=out)


# ------------------------------------------------------------------- pooling


@_api.public("numbaconv")
def max_pool2d(x: ArrayLike, pool_size: IntOrPair, *, stride: IntOrPair | None = None,
               padding: Padding = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
               data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """Max pooling: the maximum of each window, per sample and channel.

    Parameters
    ----------
    x : array_like of shape (N, H, W, C), or (N, C, H, W) with NCHW
        The input batch; H and W must be >= 1.
    pool_size : int or (int, int)
        The window (KH, KW); each >= 1.
    stride : int or (int, int), optional
        Step of the window; ``None`` (default) means ``pool_size``.
    padding : {'SAME', 'VALID'}, int, (int, int) or ((int, int), (int, int)), default 0
        As in :func:`conv2d`; padded cells never win, and each explicit side
        must be smaller than the window along its axis.
    dilation : int or (int, int), default 1
        Spacing of the window taps along (H, W): the window of output ``oh``
        reads rows ``oh * stride - top + i * dilation``, ``i < KH``; each >= 1.
    ceil_mode : bool, default False
        Round the output size up instead of down, ``OH = ceil((H + top +
        bottom - dilation * (KH - 1) - 1) / stride) + 1``, dropping a last
        window that would start in the bottom/right padding (PyTorch's rule).
    data_format : {'NHWC', 'NCHW'}, default 'NHWC'
        The layout of ``x`` and of the result (any case).
    out : ndarray, optional
        A buffer to write the result into instead of a fresh array: of the
        result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input (``ValueError``/``TypeError`` naming it
        otherwise, before any computation). It is returned.

    Returns
    -------
    y : ndarray of shape (N, OH, OW, C), or (N, C, OH, OW) with NCHW
        The window maxima over the cells inside the input; a NaN in a window
        makes its output NaN.

    Raises
    ------
    ValueError
        If ``x`` is not 4-D or has an empty plane, a padding side is not
        smaller than the window, the output would be empty, some window holds
        no input cell (possible with dilation), or a size, stride, dilation,
        padding or data format is out of range.
    TypeError
        If ``x`` is complex, object or string, a size is not an int, or
        ``ceil_mode`` is not a bool.

    See Also
    --------
    max_pool2d_argmax : The same, with the position of each maximum.

    Notes
    -----
    TensorFlow: ``tf.nn.max_pool2d(x, pool_size, stride, padding)`` (which
    does not propagate NaN, and has no dilation or ceil_mode). PyTorch:
    ``torch.nn.functional.max_pool2d(x, pool_size, stride, padding, dilation,
    ceil_mode)`` with ``data_format='NCHW'`` (PyTorch allows symmetric
    padding of at most half the dilated window).

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> x = np.array([[1., 5., 2., 0.],
    ...               [3., 4., 8., 6.],
    ...               [0., 1., 2., 3.],
    ...               [7., 2., 9., 1.]]).reshape(1, 4, 4, 1)
    >>> nc.max_pool2d(x, 2)[0, :, :, 0]
    array([[5., 8.],
           [7., 9.]])
    >>> nc.max_pool2d(x, 3, stride=2, ceil_mode=True)[0, :, :, 0]  # a partial last window
    array([[8., 8.],
           [9., 9.]])
    >>> nc.max_pool2d(x, 2, stride=1, dilation=2)[0, :, :, 0]  # taps two cells apart
    array([[2., 5.],
           [9., 6.]])
    """
    return _api.max_pool2d(_BACKEND, x, pool_size, stride, padding, dilation, ceil_mode,
                           data_format, out=out)


@_api.public("numbaconv")
def max_pool2d_argmax(x: ArrayLike, pool_size: IntOrPair, *, stride: IntOrPair | None = None,
                      padding: Padding = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
                      data_format: str = "NHWC",
                      out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling that also returns where each maximum came from.

    Parameters
    ----------
    x, pool_size, stride, padding, dilation, ceil_mode, data_format
        As in :func:`max_pool2d`.
    out : tuple of 2 ndarrays (y, argmax), optional
        Buffers to write the results into instead of fresh arrays: each of
        its result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input or another buffer (``ValueError``/``TypeError``
        naming it otherwise, before any computation). The tuple is returned.

    Returns
    -------
    y : ndarray
        As :func:`max_pool2d` returns it.
    argmax : ndarray of int64, of y's shape
        The flat index ``h * W + w`` of each maximum in the unpadded (H, W)
        plane of the same sample and channel. Ties go to the first maximum in
        row-major window order; a NaN wins (the first NaN).

    Raises
    ------
    ValueError
        As :func:`max_pool2d`.
    TypeError
        As :func:`max_pool2d`.

    See Also
    --------
    max_pool2d_backward : Routes a gradient through ``argmax``.
    max_unpool2d : Puts the maxima back where they came from.

    Notes
    -----
    PyTorch: ``torch.nn.functional.max_pool2d(..., return_indices=True)``, the
    same index convention. TensorFlow: ``tf.nn.max_pool_with_argmax`` numbers
    positions ``((n * H + h) * W + w) * C + c`` instead.

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> x = np.array([[1., 5., 2., 0.],
    ...               [3., 4., 8., 6.],
    ...               [0., 1., 2., 3.],
    ...               [7., 2., 9., 1.]]).reshape(1, 4, 4, 1)
    >>> y, argmax = nc.max_pool2d_argmax(x, 2)
    >>> argmax[0, :, :, 0]  # h * 4 + w of 5, 8, 7 and 9
    array([[ 1,  6],
           [12, 14]])
    """
    return _api.max_pool2d_argmax(_BACKEND, x, pool_size, stride, padding, dilation, ceil_mode,
                                  data_format, out=out)


@_api.public("numbaconv")
def max_pool2d_backward(dy: ArrayLike, argmax: ArrayLike, x_shape: Sequence[int], *,
                        data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of max pooling: each ``dy`` entry added at its argmax.

    Parameters
    ----------
    dy : array_like of shape (N, OH, OW, C), or (N, C, OH, OW) with NCHW
        The gradient of the loss with respect to the pooled output.
    argmax : array_like of ints, of dy's shape
        As :func:`max_pool2d_argmax` returns it.
    x_shape : tuple of 4 ints
        The shape of the pooled input.
    data_format : {'NHWC', 'NCHW'}, default 'NHWC'
        The layout of ``dy``, ``argmax``, ``x_shape`` and the result.
    out : ndarray, optional
        A buffer to write the result into instead of a fresh array: of the
        result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input (``ValueError``/``TypeError`` naming it
        otherwise, before any computation). It is returned.

    Returns
    -------
    dx : ndarray of shape x_shape
        Zero except at the argmax positions; where windows overlap and share a
        maximum, their gradients add up.

    Raises
    ------
    ValueError
        If ``argmax``'s shape differs from ``dy``'s, an index falls outside
        the (H, W) plane of ``x_shape``, or the batch or channel sizes of
        ``dy`` and ``x_shape`` differ.
    TypeError
        If ``argmax`` is not an integer array, ``dy`` is not real, or
        ``x_shape`` is not a tuple of ints.

    See Also
    --------
    max_pool2d_argmax : The forward pass that gives ``argmax``.

    Notes
    -----
    PyTorch: the gradient of ``torch.nn.functional.max_pool2d`` (also what
    ``max_unpool2d`` computes, without the sum over overlaps). TensorFlow:
    ``tf.raw_ops.MaxPoolGradWithArgmax`` with TensorFlow's index convention.

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> x = np.array([[1., 5., 2., 0.],
    ...               [3., 4., 8., 6.],
    ...               [0., 1., 2., 3.],
    ...               [7., 2., 9., 1.]]).reshape(1, 4, 4, 1)
    >>> y, argmax = nc.max_pool2d_argmax(x, 2)
    >>> nc.max_pool2d_backward(np.ones_like(y), argmax, x.shape)[0, :, :, 0]
    array([[0., 1., 0., 0.],
           [0., 0., 1., 0.],
           [0., 0., 0., 0.],
           [1., 0., 1., 0.]])
    """
    return _api.max_pool2d_backward(_BACKEND, dy, argmax, x_shape, data_format, out=out)


@_api.public("numbaconv")
def max_unpool2d(y: ArrayLike, argmax: ArrayLike, x_shape: Sequence[int], *,
                 data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """Partial inverse of max pooling: ``y`` written into zeros at its ``argmax`` positions.

    Parameters
    ----------
    y : array_like of shape (N, OH, OW, C), or (N, C, OH, OW) with NCHW
        The values to place (usually pooled maxima, or a decoder's features).
    argmax : array_like of ints, of y's shape
        Flat ``h * W + w`` positions in the (H, W) plane of the same sample and
        channel, as :func:`max_pool2d_argmax` returns them.
    x_shape : tuple of 4 ints
        The shape of the result (the pooled input's).
    data_format : {'NHWC', 'NCHW'}, default 'NHWC'
        The layout of ``y``, ``argmax``, ``x_shape`` and the result.
    out : ndarray, optional
        A buffer to write the result into instead of a fresh array: of the
        result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input (``ValueError``/``TypeError`` naming it
        otherwise, before any computation). It is returned.

    Returns
    -------
    x : ndarray of shape x_shape
        Zero except at the argmax positions. Entries of one plane that share
        a position write the same cell; the last in row-major order of ``y``
        wins (with an argmax from :func:`max_pool2d_argmax` they hold the same
        value anyway). dtype ``np.result_type(y, np.float32)``.

    Raises
    ------
    ValueError
        As :func:`max_pool2d_backward` (with ``y`` in place of ``dy``).
    TypeError
        As :func:`max_pool2d_backward`.

    See Also
    --------
    max_pool2d_argmax : Gives ``argmax``.
    max_pool2d_backward : The same routing, but sums entries that share a position.

    Notes
    -----
    PyTorch: ``torch.nn.functional.max_unpool2d(y, argmax, kernel_size,
    stride, padding, output_size=x_shape[-2:])`` with ``data_format='NCHW'``
    (PyTorch does not specify which of several entries sharing a position
    lands). TensorFlow has no unpooling op (tensorflow#2169); the usual
    workaround is ``tf.scatter_nd``.

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> x = np.array([[1., 5., 2., 0.],
    ...               [3., 4., 8., 6.],
    ...               [0., 1., 2., 3.],
    ...               [7., 2., 9., 1.]]).reshape(1, 4, 4, 1)
    >>> y, argmax = nc.max_pool2d_argmax(x, 2)
    >>> nc.max_unpool2d(y, argmax, x.shape)[0, :, :, 0]
    array([[0., 5., 0., 0.],
           [0., 0., 8., 0.],
           [0., 0., 0., 0.],
           [7., 0., 9., 0.]])
    """
    return _api.max_unpool2d(_BACKEND, y, argmax, x_shape, data_format, out=out)


@_api.public("numbaconv")
def avg_pool2d(x: ArrayLike, pool_size: IntOrPair, *, stride: IntOrPair | None = None,
               padding: Padding = 0, ceil_mode: bool = False, count_include_pad: bool = False,
               data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """Average pooling: the mean of each window, per sample and channel.

    Parameters
    ----------
    x : array_like of shape (N, H, W, C), or (N, C, H, W) with NCHW
        The input batch; H and W must be >= 1.
    pool_size : int or (int, int)
        The window (KH, KW); each >= 1.
    stride : int or (int, int), optional
        Step of the window; ``None`` (default) means ``pool_size``.
    padding : {'SAME', 'VALID'}, int, (int, int) or ((int, int), (int, int)), default 0
        As in :func:`max_pool2d`: each explicit side must be smaller than the
        window along its axis.
    ceil_mode : bool, default False
        Round the output size up, as in :func:`max_pool2d`.
    count_include_pad : bool, default False
        False: divide each window's sum by the number of input cells in it
        (TensorFlow's ``avg_pool``, also with ``'SAME'``). True: by the
        number of window cells inside the padded input (PyTorch's default;
        with ``ceil_mode``, the part of a window beyond the bottom/right
        padding is not counted).
    data_format : {'NHWC', 'NCHW'}, default 'NHWC'
        The layout of ``x`` and of the result (any case).
    out : ndarray, optional
        A buffer to write the result into instead of a fresh array: of the
        result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input (``ValueError``/``TypeError`` naming it
        otherwise, before any computation). It is returned.

    Returns
    -------
    y : ndarray of shape (N, OH, OW, C), or (N, C, OH, OW) with NCHW
        The window means; ``OH`` as in :func:`max_pool2d`; dtype
        ``np.result_type(x, np.float32)``.

    Raises
    ------
    ValueError
        If ``x`` is not 4-D or has an empty plane, a padding side is not
        smaller than the window, the output would be empty, or a size, stride,
        padding or data format is out of range.
    TypeError
        If ``x`` is complex, object or string, a size is not an int, or
        ``ceil_mode`` or ``count_include_pad`` is not a bool.

    See Also
    --------
    avg_pool2d_backward : The gradient with respect to x.
    adaptive_avg_pool2d : Average pooling to a given output size.

    Notes
    -----
    TensorFlow: ``tf.nn.avg_pool2d(x, pool_size, stride, padding)`` with
    ``'SAME'`` or ``'VALID'`` is ``count_include_pad=False``. PyTorch:
    ``torch.nn.functional.avg_pool2d(x, pool_size, stride, padding,
    ceil_mode, count_include_pad)`` with ``data_format='NCHW'`` (symmetric
    padding of at most half the window; note PyTorch's default
    ``count_include_pad=True``).

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> x = np.arange(9.0).reshape(1, 3, 3, 1)
    >>> nc.avg_pool2d(x, 2, stride=1)[0, :, :, 0]
    array([[2., 3.],
           [5., 6.]])
    >>> nc.avg_pool2d(x, 2, padding=((1, 0), (1, 0)))[0, :, :, 0]  # input cells only
    array([[0. , 1.5],
           [4.5, 6. ]])
    >>> nc.avg_pool2d(x, 2, padding=((1, 0), (1, 0)), count_include_pad=True)[0, :, :, 0]
    array([[0.  , 0.75],
           [2.25, 6.  ]])
    """
    return _api.avg_pool2d(_BACKEND, x, pool_size, stride, padding, ceil_mode, count_include_pad,
                           data_format, out=out)


@_api.public("numbaconv")
def avg_pool2d_backward(dy: ArrayLike, x_shape: Sequence[int], pool_size: IntOrPair, *,
                        stride: IntOrPair | None = None, padding: Padding = 0,
                        ceil_mode: bool = False, count_include_pad: bool = False,
                        data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of ``sum(avg_pool2d(x) * dy)`` with respect to x (the adjoint of avg_pool2d).

    Parameters
    ----------
    dy : array_like of shape (N, OH, OW, C), or (N, C, OH, OW) with NCHW
        The gradient of the loss with respect to ``avg_pool2d``'s output.
    x_shape : tuple of 4 ints
        The shape of the pooled input.
    pool_size, stride, padding, ceil_mode, count_include_pad, data_format
        As in :func:`avg_pool2d`, the forward call's.
    out : ndarray, optional
        A buffer to write the result into instead of a fresh array: of the
        result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input (``ValueError``/``TypeError`` naming it
        otherwise, before any computation). It is returned.

    Returns
    -------
    dx : ndarray of shape x_shape
        Each input cell receives ``dy / divisor`` of every window that reads
        it (zero if none does); dtype ``np.result_type(dy, np.float32)``.

    Raises
    ------
    ValueError
        As :func:`avg_pool2d` (for the plane of ``x_shape``), and if ``dy``
        does not have the forward output's shape.
    TypeError
        As :func:`avg_pool2d`, or if ``x_shape`` is not a tuple of ints.

    See Also
    --------
    avg_pool2d : The forward pass.

    Notes
    -----
    TensorFlow: ``tf.raw_ops.AvgPoolGrad(orig_input_shape, dy, ksize,
    strides, padding)``. PyTorch: autograd through
    ``torch.nn.functional.avg_pool2d``.

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> dy = np.ones((1, 2, 2, 1))  # the gradient of sum(avg_pool2d(x, 2, stride=1))
    >>> nc.avg_pool2d_backward(dy, (1, 3, 3, 1), 2, stride=1)[0, :, :, 0]
    array([[0.25, 0.5 , 0.25],
           [0.5 , 1.  , 0.5 ],
           [0.25, 0.5 , 0.25]])
    """
    return _api.avg_pool2d_backward(_BACKEND, dy, x_shape, pool_size, stride, padding, ceil_mode,
                                    count_include_pad, data_format, out=out)


@_api.public("numbaconv")
def adaptive_avg_pool2d(x: ArrayLike, output_size: IntOrPair, *,
                        data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """Average pooling to a given output size (``output_size=1``: global average pooling).

    Output cell ``i`` along an axis of length ``L`` averages the input cells
    ``[floor(i * L / out), ceil((i + 1) * L / out))``: bins that tile the axis,
    overlapping by a cell where ``out`` does not divide ``L``.

    Parameters
    ----------
    x : array_like of shape (N, H, W, C), or (N, C, H, W) with NCHW
        The input batch; H and W must be >= 1.
    output_size : int or (int, int)
        (OH, OW); each >= 1 (larger than the input is allowed: bins repeat cells).
    data_format : {'NHWC', 'NCHW'}, default 'NHWC'
        The layout of ``x`` and of the result (any case).
    out : ndarray, optional
        A buffer to write the result into instead of a fresh array: of the
        result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input (``ValueError``/``TypeError`` naming it
        otherwise, before any computation). It is returned.

    Returns
    -------
    y : ndarray of shape (N, OH, OW, C), or (N, C, OH, OW) with NCHW
        The bin means; dtype ``np.result_type(x, np.float32)``.

    Raises
    ------
    ValueError
        If ``x`` is not 4-D or has an empty plane, an output size is < 1 or
        not a pair, or the data format is unknown.
    TypeError
        If ``x`` is complex, object or string, or an output size is not an int.

    See Also
    --------
    adaptive_avg_pool2d_backward : The gradient with respect to x.
    avg_pool2d : Fixed windows.

    Notes
    -----
    PyTorch: ``torch.nn.functional.adaptive_avg_pool2d(x, output_size)`` with
    ``data_format='NCHW'``, the same bins. TensorFlow: ``tf.reduce_mean(x,
    axis=(1, 2), keepdims=True)`` for ``output_size=1``; otherwise no core op.

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> x = np.arange(10.0).reshape(1, 1, 5, 2)  # one row of 5 pixels, 2 channels
    >>> nc.adaptive_avg_pool2d(x, (1, 2))[0, 0]  # bins [0, 3) and [2, 5)
    array([[2., 3.],
           [6., 7.]])
    >>> nc.adaptive_avg_pool2d(x, 1)[0, 0, 0]  # global average pooling
    array([4., 5.])
    """
    return _api.adaptive_avg_pool2d(_BACKEND, x, output_size, data_format, out=out)


@_api.public("numbaconv")
def adaptive_avg_pool2d_backward(dy: ArrayLike, x_shape: Sequence[int], *,
                                 data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of ``sum(adaptive_avg_pool2d(x, output_size) * dy)`` with respect to x.

    Parameters
    ----------
    dy : array_like of shape (N, OH, OW, C), or (N, C, OH, OW) with NCHW
        The gradient of the loss with respect to the pooled output; its plane
        is the forward call's ``output_size``.
    x_shape : tuple of 4 ints
        The shape of the pooled input.
    data_format : {'NHWC', 'NCHW'}, default 'NHWC'
        The layout of ``dy``, ``x_shape`` and the result.
    out : ndarray, optional
        A buffer to write the result into instead of a fresh array: of the
        result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input (``ValueError``/``TypeError`` naming it
        otherwise, before any computation). It is returned.

    Returns
    -------
    dx : ndarray of shape x_shape
        Each input cell receives ``dy / bin size`` of every bin that holds it;
        dtype ``np.result_type(dy, np.float32)``.

    Raises
    ------
    ValueError
        If ``dy`` is not 4-D or has an empty plane, ``x_shape`` has an empty
        plane, or their batch or channel sizes differ.
    TypeError
        If ``dy`` is complex, object or string, or ``x_shape`` is not a tuple
        of ints.

    See Also
    --------
    adaptive_avg_pool2d : The forward pass.

    Notes
    -----
    PyTorch: autograd through ``torch.nn.functional.adaptive_avg_pool2d``.

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> dy = np.array([1.0, 2.0]).reshape(1, 1, 2, 1)  # output_size (1, 2) of a 1x5 plane
    >>> nc.adaptive_avg_pool2d_backward(dy, (1, 1, 5, 1))[0, 0, :, 0]  # cell 2 is in both bins
    array([0.33333333, 0.33333333, 1.        , 0.66666667, 0.66666667])
    """
    return _api.adaptive_avg_pool2d_backward(_BACKEND, dy, x_shape, data_format, out=out)


# ----------------------------------------------------------------------- LRN


@_api.public("numbaconv")
def lrn(x: ArrayLike, *, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1.0,
        beta: float = 0.5, data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """Local response normalization across channels (TensorFlow's semantics and defaults).

    ``sqr_sum[c] = sum(x[c'] ** 2 for c' in [c - r, c + r] clipped to the
    channels)`` and ``y[c] = x[c] / (bias + alpha * sqr_sum[c]) ** beta``,
    at every (n, h, w).

    Parameters
    ----------
    x : array_like of shape (N, H, W, C), or (N, C, H, W) with NCHW
        The input batch.
    depth_radius : int, default 5
        The half-width ``r`` of the channel window; >= 0.
    bias, alpha, beta : float, defaults 1.0, 1.0, 0.5
        Finite reals. ``alpha`` multiplies the raw sum of squares (not its mean).
    data_format : {'NHWC', 'NCHW'}, default 'NHWC'
        The layout of ``x`` and of the result (any case).
    out : ndarray, optional
        A buffer to write the result into instead of a fresh array: of the
        result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input (``ValueError``/``TypeError`` naming it
        otherwise, before any computation). It is returned.

    Returns
    -------
    y : ndarray of x's shape
        dtype ``np.result_type(x, np.float32)``.

    Raises
    ------
    ValueError
        If ``x`` is not 4-D, ``depth_radius`` is negative, or a scalar is not
        finite.
    TypeError
        If ``x`` is complex, object or string, ``depth_radius`` is not an int
        or a scalar is not a real number.

    See Also
    --------
    lrn_backward : The gradient with respect to x.

    Notes
    -----
    TensorFlow: ``tf.nn.local_response_normalization(x, depth_radius, bias,
    alpha, beta)``, the same parameters. PyTorch:
    ``torch.nn.LocalResponseNorm(size, alpha, beta, k)`` with odd ``size`` is
    ``depth_radius=(size - 1) // 2, alpha=alpha / size, bias=k`` here, with
    ``data_format='NCHW'``.

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> x = np.array([0.0, 3.0, 4.0]).reshape(1, 1, 1, 3)  # one pixel, 3 channels
    >>> nc.lrn(x, depth_radius=1, bias=0.0, alpha=1.0, beta=0.5)[0, 0, 0]  # x / sqrt([9, 25, 25])
    array([0. , 0.6, 0.8])
    """
    return _api.lrn(_BACKEND, x, depth_radius, bias, alpha, beta, data_format, out=out)


@_api.public("numbaconv")
def lrn_backward(dy: ArrayLike, x: ArrayLike, *, depth_radius: int = 5, bias: float = 1.0,
                 alpha: float = 1.0, beta: float = 0.5, data_format: str = "NHWC",
                 out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of ``sum(lrn(x) * dy)`` with respect to x.

    Parameters
    ----------
    dy : array_like of x's shape
        The gradient of the loss with respect to ``lrn``'s output.
    x : array_like of shape (N, H, W, C), or (N, C, H, W) with NCHW
        The forward call's input.
    depth_radius, bias, alpha, beta, data_format
        As in :func:`lrn`, the forward call's.
    out : ndarray, optional
        A buffer to write the result into instead of a fresh array: of the
        result's shape and dtype, C-contiguous, writable and sharing no
        memory with an input (``ValueError``/``TypeError`` naming it
        otherwise, before any computation). It is returned.

    Returns
    -------
    dx : ndarray of x's shape
        dtype ``np.result_type(x, dy, np.float32)``.

    Raises
    ------
    ValueError
        As :func:`lrn`, and if ``dy``'s shape differs from ``x``'s.
    TypeError
        As :func:`lrn`.

    See Also
    --------
    lrn : The forward pass.

    Notes
    -----
    TensorFlow: ``tf.raw_ops.LRNGrad(dy, x, lrn(x), depth_radius, bias, alpha,
    beta)``. PyTorch: autograd through ``torch.nn.LocalResponseNorm`` (with
    the parameter mapping of :func:`lrn`).

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> x = np.array([0.0, 3.0, 4.0]).reshape(1, 1, 1, 3)
    >>> dx = nc.lrn_backward(np.ones_like(x), x, depth_radius=1, bias=0.0, alpha=1.0, beta=0.5)
    >>> dx[0, 0, 0]
    array([ 0.33333333,  0.032     , -0.024     ])
    """
    return _api.lrn_backward(_BACKEND, dy, x, depth_radius, bias, alpha, beta, data_format, out=out)
