"""Output sizes, padding rules, pooling windows and the geometry the kernels see (pure functions).

Normalized geometry
-------------------
The contract allows any stride, padding and dilation up to int64. Kernels
size their loops from the output shape and index in int64, so the validation
layer hands them an equivalent geometry with bounded ints (``kernel_step``)
and refuses what no normalization can bound (``INDEX_LIMIT``):

- **Stride along an axis with one output position.** Position 0 starts at
  ``-pad_before`` whatever the stride, so the stride cannot change the
  answer: the kernels get stride 1. This holds for every op, because every
  op's geometry is that of a forward window (conv, pooling, im2col) or the
  adjoint of one (transpose, col2im, where that axis is the *input* of
  length 1 and the output size has already been computed from the real
  stride). A stride larger than the padded input therefore behaves like one
  that just fits.
- **Dilation along an axis with a window of 1.** The only tap sits at offset
  ``0 * dilation``: the kernels get dilation 1 (SAME padding, which depends
  on ``(k - 1) * dilation``, is resolved before).
- **The padded extent** ``size + pad_before + pad_after`` (for a transpose:
  its output size plus the padding) must stay below ``INDEX_LIMIT = 2**62``.
  Once the stride is normalized, every row or column index a kernel forms
  (``o * stride - pad_before + i * dilation``) lies within twice that
  extent, so it fits in int64.

The functions here are ``register_jitable``: plain Python for the public
API, compiled into ``numbaconv.kernels``' nopython code when a user calls it.

The reference (``numbaconv.reference``) computes with the caller's stride and
dilation (``Geometry.stride``, ``Geometry.dilation``), so the tests that hold
the kernels to the reference also check this normalization.
"""

import numpy as np
from numba.extending import register_jitable

# Every index a kernel forms is below twice the padded extent (see above).
INDEX_LIMIT = 2 ** 62


@register_jitable
def conv_out_size(size, k, stride, dilation, pad_before, pad_after):
    """Output length of a convolution/pooling window sliding along one axis."""
    return (size + pad_before + pad_after - dilation * (k - 1) - 1) // stride + 1


@register_jitable
def same_padding(size, k, stride, dilation):
    """TensorFlow's SAME rule: (before, after), the odd extra cell goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


@register_jitable
def transpose_out_size(size, k, stride, dilation, pad_before, pad_after, output_padding):
    """Output length of a transposed convolution (the input length of its forward conv)."""
    return (size - 1) * stride - pad_before - pad_after + dilation * (k - 1) + 1 + output_padding


@register_jitable
def kernel_step(out, k, stride, dilation):
    """(stride, dilation) the kernels use along an axis: 1 where it cannot change the answer.

    ``out`` is the number of window positions along the axis (the forward
    geometry's output length), ``k`` the window length.
    """
    return (stride if out > 1 else 1), (dilation if k > 1 else 1)


@register_jitable
def pool_out_size(size, k, stride, dilation, pad_before, pad_after, ceil_mode):
    """Output length of a pooling window along one axis, with PyTorch's ``ceil_mode``.

    With ``ceil_mode`` the length rounds up, and a last window that would
    start in the after-padding (or past it) is dropped: every window starts
    inside the input or its before-padding.
    """
    if not ceil_mode:
        return conv_out_size(size, k, stride, dilation, pad_before, pad_after)
    span = size + pad_before + pad_after - dilation * (k - 1) - 1
    out = -(-span // stride) + 1
    if out > 0 and (out - 1) * stride >= size + pad_before:
        out -= 1
    return out


@register_jitable
def pool_windows(size, out, k, stride, pad_before, pad_after, count_include_pad):
    """Average-pooling windows along one axis, as (start, stop, divisor) int arrays.

    Output index ``o`` reads input cells [start[o], stop[o]). The divisor
    counts those cells, or with ``count_include_pad`` the window's cells
    inside the padded input (ceil_mode's last window may reach past the
    after-padding; that part is not counted).
    """
    first = np.arange(out, dtype=np.int64) * stride - pad_before
    start, stop = np.maximum(first, 0), np.minimum(first + k, size)
    if count_include_pad:
        return start, stop, np.minimum(first + k, size + pad_after) - first
    return start, stop, stop - start


@register_jitable
def window_readers(start, stop, size):
    """Per input index along an axis: the windows [first, stop) that read it (int64 arrays).

    ``start``/``stop`` are the windows' cells (``pool_windows``,
    ``adaptive_bins``); the readers are contiguous, because window starts
    and stops never decrease along the axis.
    """
    cells = np.arange(size)
    return (np.searchsorted(stop, cells, side="right").astype(np.int64),
            np.searchsorted(start, cells, side="right").astype(np.int64))


@register_jitable
def adaptive_bins(size, out):
    """Adaptive-pooling bins along one axis, as (start, stop, divisor) int arrays.

    Bin ``i`` is [floor(i * size / out), ceil((i + 1) * size / out)) (PyTorch's bins).
    """
    i = np.arange(out, dtype=np.int64)
    start, stop = i * size // out, -(-(i + 1) * size // out)
    return start, stop, stop - start
