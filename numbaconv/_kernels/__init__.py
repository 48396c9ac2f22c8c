"""@njit kernels only: no validation, no Python objects.

Kernels take C-contiguous arrays in NHWC memory, or in NCHW memory where a
channels-first form pays (the convolution kernels read either through
``convolution.Image`` steps; pooling backward and LRN have ``*_nchw``
kernels). Each kernel's docstring says what one ``prange`` iteration owns;
no two iterations ever write the same element.
"""
