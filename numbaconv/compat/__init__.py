"""Drop-in modules that give numbaconv's kernels the API of other code bases.

- :mod:`numbaconv.compat.cs231n`: the fast layers of the cs231n assignments
  (everything ``cs231n/fast_layers.py`` defines: ``conv_forward_fast``,
  ``max_pool_backward_reshape``, ...), NCHW data and ``(F, C, HH, WW)``
  filters, with no Cython build. Its star-import never shadows a student's
  own naive layers; numbaconv's versions of those, ``rel_error`` and the
  numerical-gradient helpers are importable by name.
"""
from . import cs231n

__all__ = ["cs231n"]
