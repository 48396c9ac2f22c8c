"""Drivers of the Numba kernels: contiguous inputs -> allocate -> kernel.

Each driver is a core of the ``numbaconv._api.Backend`` interface. Arguments
arrive validated (``numbaconv._validate``), cast to the compute dtype and
indexed NHWC/HWIO, with the caller's layout as the ``nchw`` flag. A driver
picks the kernel's memory order from that flag (NHWC, or NCHW where the
kernel has a channels-first form), makes the inputs C-contiguous and
writable in it, allocates the result (or takes the caller's ``out=``
buffer, ``_memory.result``/``deliver``) and calls the kernel.
"""
