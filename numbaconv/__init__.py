"""numbaconv: fast CPU kernels for classic CNN layers, with Numba.

The functions here run Numba ``@njit(parallel=True)`` loop kernels;
``numbaconv.reference`` has the same functions in vectorized NumPy.
See the README for the API at a glance and its mapping to TensorFlow and
PyTorch.
"""
from . import _ops
from ._fast import convolution, normalization, patches, pooling
from ._warmup import warmup

_ops.Ops(convolution, patches, pooling, normalization).bind(globals())
__all__ = [*_ops.PUBLIC, "warmup"]
__version__ = "0.1.0"
