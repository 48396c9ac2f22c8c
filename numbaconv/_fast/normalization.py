"""Placeholder until the Numba kernels land: the NumPy reference cores."""
from ..reference.normalization import *  # noqa: F401,F403
