"""The NumPy reference: numbaconv's executable specification.

Same functions, signatures and results (to float tolerance) as ``numbaconv``,
written as vectorized NumPy to be read. Validation is shared with the fast
path (``numbaconv._validate``); the cores in this package work on NHWC arrays.
"""
from .. import _ops
from . import convolution, normalization, patches, pooling

_ops.Ops(convolution, patches, pooling, normalization).bind(globals())
__all__ = list(_ops.PUBLIC)
