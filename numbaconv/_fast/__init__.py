"""NHWC drivers of the Numba kernels: contiguous inputs -> allocate -> kernel.

Arguments arrive validated (``numbaconv._validate``) and cast to the compute
dtype; each driver makes them C-contiguous, allocates the result and calls
one kernel from ``numbaconv._kernels``.
"""
