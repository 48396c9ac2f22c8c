"""@njit kernels only: no validation, no Python objects, NHWC layout.

Each kernel's docstring says what one ``prange`` iteration owns; no two
iterations ever write the same element.
"""
