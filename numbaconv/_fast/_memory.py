"""How the drivers see an NHWC-indexed array's memory (shared by every driver)."""
import numpy as np


def contiguous(a):
    """``a`` as a C-contiguous, writable array (a copy only when it is not one already).

    Read-only arrays are a separate Numba type: passing one through would
    compile every kernel a second time.
    """
    return np.ascontiguousarray(a) if a.flags.writeable else np.array(a, order="C")


def in_nchw_memory(a):
    """Is the NHWC-indexed ``a`` a view of a C-contiguous NCHW array (and not NHWC-contiguous too)?"""
    return not a.flags.c_contiguous and a.transpose(0, 3, 1, 2).flags.c_contiguous
