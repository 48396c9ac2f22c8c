"""Output sizes and padding rules shared by every op (pure functions on ints)."""


def conv_out_size(size, k, stride, dilation, pad_before, pad_after):
    """Output length of a convolution/pooling window sliding along one axis."""
    return (size + pad_before + pad_after - dilation * (k - 1) - 1) // stride + 1


def same_padding(size, k, stride, dilation):
    """TensorFlow's SAME rule: (before, after), the odd extra cell goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def transpose_out_size(size, k, stride, dilation, pad_before, pad_after, output_padding):
    """Output length of a transposed convolution (the input length of its forward conv)."""
    return (size - 1) * stride - pad_before - pad_after + dilation * (k - 1) + 1 + output_padding
