"""Drop-in modules that give numbaconv's kernels the API of other code bases.

- :mod:`numbaconv.compat.cs231n`: the layer functions of the cs231n
  assignments (``conv_forward_fast``, ``max_pool_backward_naive``,
  ``rel_error``, ``eval_numerical_gradient_array``, ...), NCHW data and
  ``(F, C, HH, WW)`` filters, with no Cython build.
"""
from . import cs231n

__all__ = ["cs231n"]
