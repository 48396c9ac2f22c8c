"""Drivers of the convolution kernels (see ``numbaconv._api`` for the core interface).

Cores get arrays indexed NHWC. An NCHW caller's arrays (``nchw`` True)
arrive as NHWC views of NCHW memory: the kernels read those in place (through
``_kernels.convolution.Image``) and the drivers allocate the result in NCHW
memory too, returned as an NHWC view, which the public layer's transpose back
to NCHW turns into a C-contiguous array without a copy. On the
benchmark shape the transposing copies would otherwise cost about as much as
the NHWC convolution itself.
"""
import functools
import math
from typing import NamedTuple

import numpy as np
from numba.extending import register_jitable

from .. import _plan as plan
from .._kernels import convolution as k
from .._kernels import dots
from .._kernels import filter_taps as ft
from .._kernels import patch_gemm as pg
from .._kernels import winograd as wg
from .._numba import direct
from .._validate import Geometry
from ._memory import aligned_empty, channels_last, contiguous, deliver, result


def image(a, nchw):
    """The kernels' view of an NHWC-indexed array: its NHWC or NCHW memory, flat, with element steps.

    The order is NCHW when ``nchw``; an array not C-contiguous in it is copied first.
    Images of one pixel get NHWC steps in either case (the two memories are
    one then), so that the kernels take their paths for runs of channels.
    """
    if nchw and a.shape[1] * a.shape[2] != 1:
        flat = contiguous(a.transpose(0, 3, 1, 2)).reshape(-1)
        n, h, w, c = a.shape
        return k.Image(flat, n, h, w, c, c * h * w, w, 1, h * w)
    n, h, w, c = a.shape
    a = channels_last(a)
    return k.Image(a.reshape(-1), n, h, w, c, h * w * c, w * c, c, 1)


def empty_like_layout(shape, dtype, nchw, out=None, zeros=False):
    """An NHWC-indexed result of ``shape``, in NCHW memory when ``nchw``: ``out`` when it is one.

    A fresh one is zeroed when ``zeros``.
    """
    if out is not None and (out.transpose(0, 3, 1, 2) if nchw else out).flags.c_contiguous:
        return out
    # Results the patch GEMM stores past the caches start on a 64-byte
    # line (_memory.aligned_empty); the alignment costs ~6 us, too much
    # for small ones (a batch-1 layer takes 40).
    streamed = math.prod(shape) * np.dtype(dtype).itemsize >= pg.STREAM_MIN_BYTES
    new = np.zeros if zeros else aligned_empty if streamed else np.empty
    if nchw:
        n, h, w, c = shape
        return new((n, c, h, w), dtype).transpose(0, 2, 3, 1)
    return new(shape, dtype)


def _bias(b, c, dtype):
    """The kernels always add a bias; none is a zero one (C floats, not a second kernel)."""
    return np.zeros(c, dtype) if b is None else contiguous(b)


# ------------------------------------------------------------------ strategies
#
# Three strategies, chosen from the shape alone by ``numbaconv._plan`` (the
# plan arithmetic shared with ``numbaconv.kernels``' nopython drivers):
# "planes" (``_kernels.convolution``), "patch GEMM" (``_kernels.patch_gemm``)
# and "Winograd" (``_kernels.winograd``, 3x3 stride 1). The input gradient
# and the transpose run the forward kernel of any strategy on the stride
# phases of their output.


def _filter_memory(w, nchw):
    """The filters' flat memory and the element steps of their (kh, kw, ci, co) indices.

    OIHW filters (an NCHW caller's) are read in place; nothing is transposed.
    """
    kh, kw, ci, co = w.shape
    if nchw:
        oihw = contiguous(w.transpose(3, 2, 0, 1))
        return oihw.reshape(-1), (kw, 1, kh * kw, ci * kh * kw)
    return contiguous(w).reshape(-1), (kw * ci * co, ci * co, co, 1)


def _packed(w, nchw, taps_h, taps_w, swap):
    """Filters as the patch GEMM's (K, C_out) matrix in panels, zero-padded to a multiple of OUT columns.

    ``taps_h``, ``taps_w``: the taps packed, int64 arrays.
    """
    n_out = w.shape[2] if swap else w.shape[3]
    n_in = w.shape[3] if swap else w.shape[2]
    out = np.empty(plan.panels_shape(len(taps_h) * len(taps_w) * n_in, n_out), w.dtype)
    data, steps = _filter_memory(w, nchw)
    direct(pg.pack_filters, w.dtype, data, steps, taps_h, taps_w, swap, n_out, out)
    return out


def _winograd(x, w, b, y_img, pad, nchw, route, swap):
    """y_img = the 3x3 stride-1 correlation of x with w (+ b) by Winograd; False if an output is not finite.

    (The caller then recomputes the call by a direct method: see ``_kernels.winograd``.)
    """
    n_in = w.shape[3] if swap else w.shape[2]
    c_pad = plan.padded_channels(y_img.c)
    u = np.zeros((16,) + plan.panels_shape(n_in, y_img.c), w.dtype)
    data, steps = _filter_memory(w, nchw)
    direct(wg.transform_filters, w.dtype, data, steps, route.taps_h, route.taps_w, swap, y_img.c, u)
    rows, cols, outs, units = plan.winograd_units(y_img.n, y_img.h, y_img.w, c_pad)
    bad = np.zeros(units, np.int64)
    # NCHW data are read in place: the block fill transposes them on the
    # way (one core, 8x56x56x64 -> 64, NCHW / NHWC time: 1.46 with a NumPy
    # copy to NHWC memory first, 1.15 without).
    direct(wg.conv2d_winograd, x.dtype, image(x, nchw), u, b, y_img, rows, cols, outs, pad[0], pad[1], bad)
    return not bad.any()


class _Route(NamedTuple):
    """How :func:`_forward` computes one geometry: the strategy and its integers, from the shapes alone."""

    strategy: str  # "dots", "nchw_1x1", "patches" or "planes", after Winograd when ``winograd``
    winograd: bool
    taps_h: np.ndarray  # the taps as int64 arrays (packed filters, Winograd's transform)
    taps_w: np.ndarray
    padded_rows: bool  # patches: read padded rows of x in place (plan.padded_rows)
    x_nchw: bool  # patches: read x in its NCHW memory (else an NHWC copy)
    merged: bool  # patches: all pixels as rows of PIX (plan.merged_rows)
    across: bool  # patches: tiles of PIX images at one output position (plan.across_images)
    rows: int  # patches: rows (merged rows, positions) per work unit; planes: rows per block
    outs: int  # patches: channels per work unit
    # patches: read the filter in place, not packed (plan.filters_in_place): an
    # HWIO one as k-major rows; an NCHW caller's OIHW one as the rows of W @ patches.
    w_in_place: bool = False


@plan.kept
@functools.lru_cache(maxsize=1024)
def _route(kernel_size, stride, dilation, pad, x_shape, y_geometry, nchw, taps_h, taps_w, itemsize):
    """The :class:`_Route` of a forward call (or input-gradient phase): the rules of ``numbaconv._plan``.

    Arguments are hashable: shapes, the result Image's sizes and steps
    (``y_geometry``), tap tuples, the dtype's size. Kept per geometry: the rules cost 6-7 us
    of Python per call, the look-up under 1 us (a batch-1 seed layer
    forward is 60-70 us in all).
    """
    (kh, kw), (sh, sw), (dh, dw), (pt, pl) = kernel_size, stride, dilation, pad
    _, x_h, x_w, c_in = x_shape
    n, h, w, c, n_step, h_step, w_step, c_step = y_geometry
    taps = np.asarray(taps_h, np.int64), np.asarray(taps_w, np.int64)
    if plan.by_dots(kh, kw, sh, sw, dw, c_in, c, h, w):
        return _Route("dots", False, *taps, False, False, False, False, 0, 0)
    winograd = plan.by_winograd(kh, kw, sh, sw, dh, dw, c_in, c, n, h, w)
    # Stride-1 NCHW results the patch GEMM would store past the caches in
    # whole lines take the NHWC results' rules (see _nchw_stores_stream).
    nchw_rules = nchw and not (sh == sw == 1 and _nchw_stores_stream(x_shape, kh * kw * c_in, y_geometry, itemsize))
    if plan.forward_by_patches(kh, kw, sh, sw, dh, dw, c_in, c, h, w, nchw_rules):
        pixels = h * w
        if (nchw and plan.nchw_1x1_by_images(kh, kw, sh, sw, pt, pl, c_in, c, pixels, n)
                and h == x_h and w == x_w
                and w_step == 1 and h_step == w and c_step == pixels and n_step == c * pixels):
            return _Route("nchw_1x1", winograd, *taps, False, False, False, False, 0, 0)
        c_pad = plan.padded_channels(c)
        padded_rows = plan.padded_rows(kh, kw, sh, sw, dh, dw, w, c_pad)
        merged, across, rows, outs = patch_units(x_h, x_w, c_in, n, h, w, n_step, h_step, w_step, kh, kw, sh, sw,
                                                 dh, dw, pt, pl, c_pad)
        # Patches read in place from padded rows of x, which the kernel
        # copies a unit at a time, from either memory; gathered patches
        # from NCHW memory in place when a pixel has enough channels, else
        # from an NHWC copy (plan.NCHW_GATHER_MIN_IN), and so when x's planes
        # are a whole number of 4 KB pages apart (k.page_aliased); tiles
        # across images read NHWC memory in place, a copy for NCHW callers.
        x_nchw = nchw and not across and ((padded_rows and kh * kw > 1)
                                           or (c_in >= plan.NCHW_GATHER_MIN_IN
                                               and not k.page_aliased(x_h * x_w, itemsize)))
        n_run, h_run, w_run = (1, n * h * w // pg.PIX, pg.PIX) if merged else (n, h, w)  # (the Image run over)
        # (W @ patches: Y[0] a (C_out, OH * OW) matrix.)
        in_place = (plan.filters_in_place(n_run, h_run, w_run, c, across, rows, nchw)
                    and (not nchw or (w_step == 1 and h_step == w and c_step == h * w)))
        return _Route("patches", winograd, *taps, padded_rows, x_nchw, merged, across, rows, outs, in_place)
    pitch = w + (kw - 1) * dw // sw
    rows = plan.plane_rows(n, h, pitch, kh * kw * c_in * c)
    return _Route("planes", winograd, *taps, False, False, False, False, rows, 0)


def _nchw_stores_stream(x_shape, k_len, y_geometry, itemsize):
    """Whether the patch GEMM would store an NCHW result past the caches, in runs of whole lines.

    Its units store NCHW results through a buffer, a plane per channel
    (``_kernels.patch_gemm._store``); short reductions (K below
    ``plan.NCHW_SHORT_MIN_K``) stay with the planes for that, except where
    those stores stream (``patch_gemm.streams``; planes' rows of whole
    64-byte lines). 2 threads, fresh processes, 2 runs each, patches /
    planes time, 3x3 from 3 channels: 2x224x224 -> 64 0.77-0.80, 8x112x112
    -> 64 0.74-0.76, 4x112x112 -> 64 0.77-0.81, 16x112x112 -> 32 0.79,
    32x112x112 -> 16 0.86-0.93, 4x224x224 -> 32 0.84, 8x80x80 -> 64
    0.72-0.90; not streamed, rows of part lines: 8x120x120 -> 64 0.99-1.02,
    64x56x56 -> 64 1.12-1.37; not streamed, too small: 32x32x32 -> 64
    1.18-1.21, 8x56x56 -> 48 1.09-1.11. Asked of stride-1 calls only (the
    measured ones; their patches are read from padded rows): a DCGAN
    discriminator's first layer, 64x64x64x3 -> 64 4x4 stride 2, took
    4.3-4.4 ms by patches, 3.6-4.0 on the planes.
    """
    n, h, w, c = y_geometry[:4]
    return (pg.streams(math.prod(x_shape), k_len * plan.padded_channels(c), n * h * w * c, itemsize)
            and w * itemsize % 64 == 0)


def _forward(x, w, b, y_img, kernel_size, stride, dilation, pad, nchw, taps=None, swap=False, copies=None):
    """y_img = correlation of x with w (+ b) by the strategy the shape calls for (:func:`_route`).

    ``x`` is NHWC-indexed (a view of NCHW memory when ``nchw``). ``taps``
    (rows, cols: tuples) and ``swap`` select a sub-filter (the stride
    phases of the input gradient); ``kernel_size`` is its size.
    ``copies``: a dict that keeps the NHWC copy of an NCHW x for the
    calls of the same x after this one (:func:`_nhwc_image`).
    """
    (kh, kw), (sh, sw), (dh, dw), (pt, pl) = kernel_size, stride, dilation, pad
    taps_h, taps_w = taps if taps is not None else (tuple(range(kh)), tuple(range(kw)))
    route = _route(kernel_size, stride, dilation, pad, x.shape, tuple(y_img[1:]), nchw, taps_h, taps_w,
                   x.dtype.itemsize)
    if route.strategy == "dots":
        # The filter as (C_out, KH, KW * C_in) rows, in one copy from the taps'
        # slice (C_in and C_out swapped for an input-gradient phase); x in
        # NHWC memory (a copy for NCHW callers).
        rows = _dots_rows(w[_taps_slice(taps_h), _taps_slice(taps_w)], swap)
        direct(dots.conv2d_dots, x.dtype, _nhwc_image(x, nchw, copies), rows, b, y_img, sh, sw, dh, pt, pl)
        return
    if route.winograd and _winograd(x, w, b, y_img, pad, nchw, route, swap):
        return
    if route.strategy == "nchw_1x1":
        _forward_1x1_nchw(x, w, b, y_img, swap)
    elif route.strategy == "patches":
        # In place: the forward's own filter (an input-gradient phase swaps it, or takes some of its taps).
        in_place = route.w_in_place and taps is None and not swap
        if in_place and nchw:
            _w_at_patches(x, w, b, y_img, kernel_size, stride, dilation, pad)
            return
        if in_place:
            wk = contiguous(w).reshape(-1, w.shape[3] // pg.OUT, pg.OUT)
        elif not nchw and taps is None and not swap and w.shape[3] == pg.OUT:
            # One panel: a whole HWIO filter of OUT channels is already the
            # packed (1, K, OUT) memory, which pack_filters would copy in a
            # parallel region of its own (batch-1 seed layer: 5 us of 55).
            wk = contiguous(w).reshape(1, -1, pg.OUT)
        else:
            wk = _packed(w, nchw, route.taps_h, route.taps_w, swap)
        x_img = image(x, True) if route.x_nchw else _nhwc_image(x, nchw, copies)
        if route.merged:
            x_img, y_img = k.merged_images(x_img, pg.PIX), k.merged_images(y_img, pg.PIX)
        direct(pg.conv2d_patch_gemm, x.dtype, x_img, wk, b, y_img, kh, kw, route.rows, route.outs, sh, sw, dh, dw,
               pt, pl, False, route.padded_rows, route.across, pg.WK_HWIO if in_place else pg.WK_PANELS)
    else:
        direct(k.conv2d_nhwc, x.dtype, image(x, nchw), _hwio(w, taps, taps_h, taps_w, swap), b, y_img, route.rows,
               sh, sw, dh, dw, pt, pl)


def _nhwc_image(x, nchw, copies):
    """``image(x, False)``: for NCHW memory a copy, made once per ``copies`` dict (None: no keeping).

    The input gradient's and the transpose's stride phases are forward
    calls on the same x: a 4x4 stride-2 layer's four phases each copied
    an NCHW dy to NHWC memory (2 threads, 64x64x30x30 -> 128, NCHW
    backward: 7 of its 55 ms).
    """
    if not nchw or copies is None:
        return image(x, False)
    if "nhwc" not in copies:
        copies["nhwc"] = image(x, False)
    return copies["nhwc"]


def _hwio(w, taps, taps_h, taps_w, swap):
    """The C-contiguous HWIO filter of the taps (the planes' operand).

    The whole filter, as given, for the forward: no gather copy on the
    small calls the planes serve.
    """
    if taps is None and not swap:
        return contiguous(w)
    # The taps of a phase are evenly spaced: a slice, not a fancy-index
    # gather (np.ix_ costs ~5 us on a batch-1 input gradient).
    hwio = w[_taps_slice(taps_h), _taps_slice(taps_w)]
    return contiguous(hwio.transpose(0, 1, 3, 2) if swap else hwio)  # (writable: read-only is a second Numba type)


@register_jitable
def patch_units(x_h, x_w, c_in, n, oh, ow, n_step, h_step, w_step, kh, kw, sh, sw, dh, dw, pt, pl, c_pad):
    """(merged, across, rows_per_unit, out_per_unit) of a patch-GEMM forward call over an x plane (x_h, x_w).

    ``merged`` (``plan.merged_rows``: 1x1 layers on small planes, into
    plain NHWC memory, whose steps the result's are): the units run over
    all N * OH * OW pixels as rows of PIX, and ``rows_per_unit`` counts
    those rows. Shared with the ``@njit`` drivers of ``numbaconv.kernels``
    (through :func:`patch_grid`).
    """
    if (plan.merged_rows(kh, kw, sh, sw, pt, pl, n, oh, ow, x_h, x_w)
            and n_step == oh * h_step and h_step == ow * w_step):
        rows, outs = plan.merged_units(n * oh * ow, c_pad)
        return True, False, rows, outs
    if plan.across_images(kh, kw, sh, sw, dh, dw, pt, pl, n, oh, ow, x_h, x_w, c_pad):
        rows, outs = plan.across_units(n, oh, ow, kh * kw * c_in, c_pad)
        return False, True, rows, outs
    rows, outs = plan.patch_units(n, oh, ow, c_pad)
    return False, False, rows, outs


@register_jitable
def patch_grid(x_img, y_img, kh, kw, sh, sw, dh, dw, pt, pl, c_pad):
    """(x_img, y_img, across, rows_per_unit, out_per_unit): the Images a patch-GEMM forward call runs over, its units.

    The Images as they are, or (merged, see :func:`patch_units`) all their
    pixels as rows of PIX; ``across``: tiles of PIX images at one position. Used by the ``@njit`` drivers of
    ``numbaconv.kernels``; the public driver keeps the units per geometry
    (:func:`_route`).
    """
    merged, across, rows, outs = patch_units(x_img.h, x_img.w, x_img.c, y_img.n, y_img.h, y_img.w, y_img.n_step,
                                             y_img.h_step, y_img.w_step, kh, kw, sh, sw, dh, dw, pt, pl, c_pad)
    if merged:
        return k.merged_images(x_img, pg.PIX), k.merged_images(y_img, pg.PIX), across, rows, outs
    return x_img, y_img, across, rows, outs


def _forward_1x1_nchw(x, w, b, y_img, swap):
    """An NCHW 1x1 stride-1 layer as Y[n] = W @ X[n] (+ b) (``plan.nchw_1x1_by_images``).

    In NCHW memory X[n] is a (C_in, H * W) matrix and Y[n] a (C_out, H * W)
    one, so the patch GEMM runs with the roles of pixels and channels
    swapped: W (C_out, C_in) is its "patches" operand, read in place, and
    X[n] its "filter" operand, each work unit packing its block of pixels
    into panels; Y[n] is written in place, the unit's block of pixels of
    every channel, with the bias per row. One kernel call for all images,
    and no transposing copy of X or Y (the NHWC route copies X to NHWC
    memory and stores Y a value at a time, a plane apart).
    """
    n, h, wd, c_in = x.shape
    c_out, pixels = y_img.c, h * wd
    # W as (C_out, C_in) (W^T for the input gradient), its rows padded to
    # whole register tiles: the kernel then reads it in place, the same
    # matrix for every image.
    a = np.zeros((-(-c_out // pg.PIX) * pg.PIX, c_in), x.dtype)
    if swap:
        # W^T of the OIHW filter: a transposing copy by the kernel that turns
        # filter gradients into OIHW memory (NumPy's took 0.80 ms for 256 x
        # 1024 float32 values, 3.0 for 512 x 2048, on 2 threads).
        oihw = contiguous(w.transpose(3, 2, 0, 1)).reshape(1, c_in, c_out)
        direct(k.filters_to_oihw, x.dtype, oihw, a[:c_out].reshape(c_out, c_in, 1))
    else:
        a[:c_out] = w[0, 0].T
    a_img = k.Image(a.reshape(-1), n, 1, c_out, c_in, 0, c_out * c_in, c_in, 1)
    planes = contiguous(x.transpose(0, 3, 1, 2)).reshape(n, c_in, pixels)
    # Y as N images of one row of C_out "pixels" (the channels) with H * W
    # "channels" (the plane's pixels).
    y_rows = k.Image(y_img.data, n, 1, c_out, pixels, y_img.n_step, c_out * pixels, pixels, 1)
    rows, outs = plan.nchw_1x1_units(n, plan.padded_channels(pixels))
    direct(pg.conv2d_patch_gemm, x.dtype, a_img, planes, b, y_rows, 1, 1, rows, outs, 1, 1, 1, 1, 0, 0, True, True,
           False, pg.WK_COLUMNS)


def _w_at_patches(x, w, b, y_img, kernel_size, stride, dilation, pad):
    """A batch-1 NCHW layer as Y = W @ patches (+ b), its OIHW filter read in place (``plan.filters_in_place``).

    An OIHW filter's output channels are C_in * KH * KW apart, so the
    NHWC route's in-place read (k-major rows of C_out values) does not
    apply to it; but each of its rows is one output channel's K values in
    (ci, kh, kw) order. So the patch GEMM runs with the roles swapped, as
    the 1x1 W @ X route does: the filter is its "patches" operand, read in
    place, and the image's patches, packed once into panels of 16 pixels
    (``pack_patch_columns``: K x OH * OW values, a tenth of the filter's
    on a 7x7 plane of 512 channels), its "filter" operand, which every
    unit reads. A unit is a block of output channels (whole register
    tiles), every pixel; Y[0] is a (C_out, OH * OW) matrix of its rows.
    """
    (kh, kw), (sh, sw), (dh, dw), (pt, pl) = kernel_size, stride, dilation, pad
    c_out, pixels = y_img.c, y_img.h * y_img.w
    k_len = kh * kw * x.shape[3]
    rows = _filter_memory(w, True)[0]  # OIHW: (C_out, K)
    units = math.gcd(c_out // pg.PIX, plan.MIN_UNITS)
    per = c_out // units  # output channels a unit
    a_img = k.Image(rows, 1, units, per, k_len, 0, per * k_len, k_len, 1)
    panels = np.empty(plan.panels_shape(k_len, pixels), x.dtype)
    direct(pg.pack_patch_columns, x.dtype, image(x, True), panels, 0, y_img.h, y_img.w, kh, kw, sh, sw, dh, dw, pt,
           pl)
    y_rows = k.Image(y_img.data, 1, units, per, pixels, y_img.n_step, per * pixels, pixels, 1)
    direct(pg.conv2d_patch_gemm, x.dtype, a_img, panels, b, y_rows, 1, 1, 1, panels.shape[0] * pg.OUT, 1, 1, 1, 1, 0,
           0, True, True, False, pg.WK_PANELS)


# A window that covers the whole input (one output pixel, nothing padded
# before it: DCGAN's last layer, a classifier layer written as a conv) is a
# 1x1 layer over one pixel of K = H * W * C_in channels per image, in either
# memory: x[n]'s K values in (h, w, ci) order for NHWC memory, (ci, h, w)
# for NCHW, and the filter the (K, C_out) matrix of the same order in its
# HWIO or OIHW memory. Views, not copies: an NCHW caller's x is not
# transposed to NHWC memory (2 threads, DCGAN's 64x4x4x512 -> 1 4x4, NCHW
# / NHWC time: forward 3.35 and backward 3.21 before).
_ONE_PIXEL = Geometry(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, (1, 1), (1, 1))


def _whole_window(g):
    """Whether g's window covers its whole input, of more than one pixel (see _ONE_PIXEL)."""
    return g.oh == 1 and g.ow == 1 and g.pt == 0 and g.pl == 0 and g.kh == g.h and g.kw == g.w and g.h * g.w > 1


def _as_pixel(x, nchw):
    """An NHWC-indexed (N, H, W, C) array as (N, 1, 1, H * W * C), in its own memory (a view where it can be)."""
    n, h, w, c = x.shape
    if nchw:
        return x.transpose(0, 3, 1, 2).reshape(n, h * w * c, 1, 1).transpose(0, 2, 3, 1)
    return x.reshape(n, 1, 1, h * w * c)


def _from_pixel(y, shape, nchw):
    """:func:`_as_pixel` undone: (N, 1, 1, K) as the NHWC-indexed ``shape``."""
    n, h, w, c = shape
    if nchw:
        return y.transpose(0, 3, 1, 2).reshape(n, c, h, w).transpose(0, 2, 3, 1)
    return y.reshape(shape)


def _filter_as_pixel(w, nchw):
    """An HWIO-indexed filter (OIHW memory when ``nchw``) as (1, 1, KH * KW * C_in, C_out), K as :func:`_as_pixel`'s."""
    kh, kw, c_in, c_out = w.shape
    if nchw:
        return w.transpose(3, 2, 0, 1).reshape(c_out, kh * kw * c_in, 1, 1).transpose(2, 3, 1, 0)
    return w.reshape(1, 1, kh * kw * c_in, c_out)


def _filter_from_pixel(w, shape, nchw):
    """:func:`_filter_as_pixel` undone: (1, 1, K, C_out) as the HWIO-indexed ``shape``."""
    kh, kw, c_in, c_out = shape
    if nchw:
        return w.transpose(3, 2, 0, 1).reshape(c_out, c_in, kh, kw).transpose(2, 3, 1, 0)
    return w.reshape(shape)


def _strided_1x1_by_images(g, n, c_in, c_out, nchw):
    """Whether an NCHW forward call is a strided 1x1 layer run as W @ X over x's strided pixels (:func:`conv2d`).

    Unpadded, every pixel it reads inside x, from STRIDED_1X1_MIN_IN input
    channels, and the stride-1 layer over those pixels one for W @ X
    (``plan.nchw_1x1_by_images``). 2 threads, NCHW forward, 11 interleaved
    rounds, NCHW / NHWC time before -> with this, stride 2: 8x56x56x256 ->
    512 1.60 -> 1.26, -> 128 2.05 -> 1.82, 2x112x112x128 -> 256 2.05 ->
    1.45, 1x56x56x256 -> 512 1.40 -> 1.19, 8x40x40x128 -> 256 1.80 ->
    1.42; from 64 channels mixed (8x56x56x64 -> 128 1.91 -> 1.68, 2x112x112x64
    -> 128 1.50 -> 1.71). Once the W @ X pack prefetched its rows
    (``_kernels.patch_gemm._pack_columns``), from 32 channels: fresh
    processes alternated, 3 pairs, 11 calls each, NCHW time before -> with
    this (ms), stride 2: 8x112x112x32 -> 64 4.0-4.4 -> 1.7-1.8 (NHWC 1.0),
    8x28x28x32 -> 64 0.28 -> 0.12, 4x64x64x48 -> 96 0.67-0.97 -> 0.32-0.43,
    4x56x56x64 -> 128 0.44 -> 0.39, 2x112x112x64 -> 128 0.94-0.99 ->
    0.77-1.18 (two of three pairs faster); from 16 or 24 channels (the
    planes take those, at the NHWC time) no faster: 8x112x112x16 -> 32
    0.73-0.92 -> 0.74-1.06.
    """
    return (nchw and g.kh == 1 and g.kw == 1 and g.sh * g.sw > 1 and g.pt == 0 and g.pl == 0
            and c_in >= plan.STRIDED_1X1_MIN_IN and (g.oh - 1) * g.sh < g.h and (g.ow - 1) * g.sw < g.w
            and plan.forward_by_patches(1, 1, 1, 1, 1, 1, c_in, c_out, g.oh, g.ow, True)
            and plan.nchw_1x1_by_images(1, 1, 1, 1, 0, 0, c_in, c_out, g.oh * g.ow, n))


def _strided_pixels(x, g):
    """x's pixels a strided 1x1 filter reads, (N, OH, OW, C) in NCHW memory (``k.subsample_planes``)."""
    n, h, w, c = x.shape
    planes = contiguous(x.transpose(0, 3, 1, 2)).reshape(n * c, h, w)
    pixels = np.empty((n, c, g.oh, g.ow), x.dtype)
    direct(k.subsample_planes, x.dtype, planes, pixels.reshape(n * c, g.oh, g.ow), g.sh, g.sw)
    return pixels.transpose(0, 2, 3, 1)


def conv2d(x, w, b, g, nchw, out=None):
    if _whole_window(g):
        return conv2d(_as_pixel(x, nchw), _filter_as_pixel(w, nchw), b, _ONE_PIXEL, nchw, out)
    if _strided_1x1_by_images(g, x.shape[0], x.shape[3], w.shape[3], nchw):
        stride_one = Geometry(g.oh, g.ow, g.oh, g.ow, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, (1, 1), (1, 1))
        return conv2d(_strided_pixels(x, g), w, b, stride_one, nchw, out)
    n, c_out = x.shape[0], w.shape[3]
    y = empty_like_layout((n, g.oh, g.ow, c_out), x.dtype, nchw, out)
    _forward(x, w, _bias(b, c_out, x.dtype), image(y, nchw), (g.kh, g.kw), (g.sh, g.sw),
             (g.dh, g.dw), (g.pt, g.pl), nchw)
    return deliver(y, out)


def _phases(size, pad, s):
    return [int(r) for r in plan.phases(size, pad, s)]


def _phase_taps(k, d, s, r):
    taps, step, shift = plan.phase_taps(k, d, s, r)
    return [int(t) for t in taps], step, shift


def _taps_slice(taps):
    """``taps`` (evenly spaced: a stride phase's, decreasing, or the forward's) as a slice of the filter axis."""
    step = taps[1] - taps[0] if len(taps) > 1 else -1
    stop = taps[-1] + step
    return slice(taps[0], None if stop < 0 else stop, step)


def _phase_plan(h, pt, sh, kh, dh, w, pl, sw, kw, dw):
    """The stride phases of a transpose, as (r, j0, rows, taps_h, dil_h, shift_h, c, i0, cols, taps_w, dil_w, shift_w).

    Integers of the geometry alone; the tap lists are tuples, each checked
    to be what :func:`_taps_slice` reads.
    """
    phases = []
    for r in _phases(h, pt, sh):
        j0, rows = plan.phase_rows(h, pt, sh, r)
        taps_h, dil_h, shift_h = _phase_taps(kh, dh, sh, r)
        for c in _phases(w, pl, sw):
            i0, cols = plan.phase_rows(w, pl, sw, c)
            taps_w, dil_w, shift_w = _phase_taps(kw, dw, sw, c)
            if rows and cols:
                phases.append((r, j0, rows, tuple(taps_h), dil_h, shift_h,
                               c, i0, cols, tuple(taps_w), dil_w, shift_w))
    for p in phases:
        for taps, size in ((p[3], kh), (p[9], kw)):
            if taps and list(range(size)[_taps_slice(taps)]) != list(taps):
                raise AssertionError(f"phase taps {taps} are not a slice")  # (never: they are evenly spaced)
    return tuple(phases)


# Computed once per geometry (6-8 us of Python per batch-1 stride-1 input
# gradient otherwise), for strides of at most 64 phases (a plan holds one
# entry per phase: larger strides are rare and their plans are not kept).
_cached_phase_plan = plan.kept(functools.lru_cache(maxsize=256)(_phase_plan))


def conv2d_transpose(x, w, b, g, nchw, out=None):
    """x lives on g's output plane (g.oh, g.ow); the result on its input plane (g.h, g.w).

    The result splits into the stride phases ``(r, c)`` of its rows and
    columns; each phase is a stride-1 correlation of x with the swapped,
    reversed filter taps that reach it, written through a strided Image.
    """
    n, c_in = x.shape[0], w.shape[2]
    if _whole_window(g):
        if b is not None:  # one per K: (h, w, ci) or (ci, h, w) order
            b = np.repeat(b, g.h * g.w) if nchw else np.tile(b, g.h * g.w)
        y = conv2d_transpose(x, _filter_as_pixel(w, nchw), b, _ONE_PIXEL, nchw)
        return deliver(_from_pixel(y, (n, g.h, g.w, c_in), nchw), out)
    if plan.by_dots(g.kh, g.kw, g.sh, g.sw, g.dw, c_in, w.shape[3], g.oh, g.ow):
        return deliver(_transpose_dots(x, w, b, g, nchw, out), out)
    plan_of = _cached_phase_plan if g.sh * g.sw <= plan.PLANE_MAX_PHASES else _phase_plan
    phases = plan_of(g.h, g.pt, g.sh, g.kh, g.dh, g.w, g.pl, g.sw, g.kw, g.dw)
    unreached = any(not p[3] or not p[9] for p in phases)
    # Outputs that no tap reaches (3 of 4 for a 1x1 stride-2 filter) hold
    # the bias alone: with no bias (the input gradient), a fresh result is
    # allocated zeroed instead of filled (one core, 8x56x56x64: 0.24 ms to
    # fill, 0.08 more to zero; the 1x1 stride-2 input gradient took 1.5 ms).
    y = empty_like_layout((n, g.h, g.w, c_in), x.dtype, nchw, out, zeros=unreached and b is None)
    bias = _bias(b, c_in, x.dtype)
    y_img = image(y, nchw)
    if unreached and not (b is None and y is not out):
        y[...] = bias
    copies: dict[str, k.Image] = {}  # (x's NHWC copy, made by the first phase that reads one)
    for r, j0, rows, taps_h, dil_h, shift_h, c, i0, cols, taps_w, dil_w, shift_w in phases:
        if not taps_h or not taps_w:
            continue
        start = (j0 * g.sh + r - g.pt) * y_img.h_step + (i0 * g.sw + c - g.pl) * y_img.w_step
        phase = k.Image(y_img.data[start:], n, rows, cols, c_in, y_img.n_step,
                        g.sh * y_img.h_step, g.sw * y_img.w_step, y_img.c_step)
        _forward(x, w, bias, phase, (len(taps_h), len(taps_w)), (1, 1), (dil_h, dil_w),
                 (shift_h - j0, shift_w - i0), nchw, (taps_h, taps_w), swap=True, copies=copies)
    return deliver(y, out)


def _dots_rows(w, swap=False):
    """The HWIO filter (or taps' slice) as the dots' (C_out, KH, KW * C_in) rows, in one copy (``_kernels.dots``).

    With ``swap``, C_in and C_out trade places (an input-gradient phase).
    """
    kh, kw, c_in, c_out = w.shape
    if swap:
        c_in, c_out = c_out, c_in
    return contiguous(w.transpose(2, 0, 1, 3) if swap else w.transpose(3, 0, 1, 2)).reshape(c_out, kh, kw * c_in)


def _transpose_dots(x, w, b, g, nchw, out):
    """The transpose by dots, where the forward of its geometry goes by dots (``plan.by_dots``).

    Filter rows scaled by x are added into runs of the result's NHWC
    memory: no stride phases, and nothing computed for the taps that fall
    on padding (all but one of a 4x4 kernel's 16 per pixel in a GAN
    discriminator's last layer, which the phases' forward would multiply
    by zeros). An NCHW caller's result is copied to its memory after
    (unless it is one pixel per image: the two memories are then one).
    """
    n, c_in = x.shape[0], w.shape[2]
    in_place = not nchw or g.h * g.w == 1
    y = result(out if in_place else None, (n, g.h, g.w, c_in), x.dtype)
    direct(dots.conv2d_transpose_dots, x.dtype, image(x, nchw), _dots_rows(w), _bias(b, c_in, x.dtype),
           image(y, False), g.sh, g.sw, g.dh, g.pt, g.pl)
    if in_place:
        return y
    y_nchw = empty_like_layout(y.shape, y.dtype, True, out)
    y_nchw[...] = y
    return y_nchw


def conv2d_backward_filter(x, dy, g, nchw, out=None):
    """dw, HWIO-indexed: in OIHW memory when ``nchw`` (the public layer's transpose back is then free)."""
    if _whole_window(g):
        dw = conv2d_backward_filter(_as_pixel(x, nchw), dy, _ONE_PIXEL, nchw)
        return deliver(_filter_from_pixel(dw, (g.kh, g.kw, x.shape[3], dw.shape[3]), nchw), out)
    if not nchw:
        return deliver(_backward_filter(x, dy, g, nchw, out), out)
    dw = _backward_filter(x, dy, g, nchw, None)  # (an NCHW caller's out is an HWIO view of OIHW memory)
    if dw.transpose(3, 2, 0, 1).flags.c_contiguous:
        return deliver(dw, out)
    kh, kw, c_in, c_out = dw.shape
    oihw = out.transpose(3, 2, 0, 1) if out is not None else None
    if oihw is None or not oihw.flags.c_contiguous:
        oihw = np.empty((c_out, c_in, kh, kw), dw.dtype)
    k.filters_to_oihw(contiguous(dw).reshape(kh * kw, c_in, c_out), oihw.reshape(c_out, c_in, kh * kw))
    return deliver(oihw.transpose(2, 3, 1, 0), out)


@plan.kept
@functools.lru_cache(maxsize=1024)
def _filter_strategy(g, n, c_in, c_out):
    """(winograd, strategy) of a filter gradient: Winograd first when ``winograd``, then the strategy.

    The strategy is "dots", "taps", "patches" or "planes" (``plan.by_dots``,
    ``plan.dw_by_winograd``, ``plan.dw_by_taps``, ``plan.dw_by_patches``).
    Kept per geometry (``g`` is hashable), as :func:`_route`.
    """
    if plan.by_dots(g.kh, g.kw, g.sh, g.sw, g.dw, c_in, c_out, g.oh, g.ow):
        return False, "dots"
    winograd = plan.dw_by_winograd(g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, c_in, c_out, n, g.oh, g.ow)
    if plan.dw_by_taps(n, g.oh, g.ow, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, c_in, c_out):
        return winograd, "taps"
    if (plan.dw_by_patches(n, g.oh, g.ow, g.kh, g.kw, g.sh, g.sw, g.dw, c_in, c_out)
            or not plan.planes_fit(g.kh, g.kw, g.sh, g.sw, g.dh, g.dw)):
        return winograd, "patches"
    return winograd, "planes"


def _backward_filter(x, dy, g, nchw, out):
    """Compute dw by dots, Winograd, taps, the plane kernel, or the patch GEMM (:func:`_filter_strategy`)."""
    winograd, strategy = _filter_strategy(g, x.shape[0], x.shape[3], dy.shape[3])
    if strategy == "dots":
        return _backward_filter_dots(x, dy, g, nchw)
    if winograd and (dw := _backward_filter_winograd(x, dy, g, nchw, out)) is not None:
        return dw
    if strategy == "taps":
        return _backward_filter_taps(x, dy, g, nchw)
    if strategy == "patches":
        return _backward_filter_patches(x, dy, g, nchw)
    return _backward_filter_planes(x, dy, g, nchw, out)


def _backward_filter_dots(x, dy, g, nchw):
    """dw by dots, where the forward goes by dots: runs of x (NHWC memory, a copy for NCHW callers) scaled by dy."""
    c_in, c_out = x.shape[3], dy.shape[3]
    row_len = g.kw * c_in
    dwt = np.empty((c_out, g.kh, row_len), x.dtype)
    direct(dots.conv2d_backward_filter_dots, x.dtype, image(x, False), image(dy, nchw), dwt,
           plan.dots_filter_part(g.kh, row_len), g.sh, g.sw, g.dh, g.pt, g.pl)
    return np.ascontiguousarray(dwt.reshape(c_out, g.kh, g.kw, c_in).transpose(1, 2, 3, 0))


def _backward_filter_winograd(x, dy, g, nchw, out):
    """dw by Winograd (3x3, stride 1); None if a value is not finite (then a direct kernel redoes it)."""
    n, c_in, c_out = x.shape[0], x.shape[3], dy.shape[3]
    rows, cols, parts, blocks, block_co, c_pad = plan.dw_winograd_plan(n, g.oh, g.ow, c_in, c_out)
    partial = np.empty((parts, blocks, 16, block_co, c_pad), x.dtype)
    # x and dy in their own layout: the fills transpose on the way (one core,
    # 8x56x56x64 -> 64 backward, NCHW / NHWC time: 1.31 with a NumPy copy of
    # an NCHW x to NHWC memory first, 1.03 without).
    direct(wg.conv2d_backward_filter_winograd, x.dtype, image(x, nchw), image(dy, nchw), partial, rows, cols,
           g.pt, g.pl)
    if nchw:
        # OIHW memory, what the caller gets (conv2d_backward_filter): written in place.
        oihw = np.empty((c_out, c_in, 3, 3), x.dtype)
        dw, flat, steps = oihw.transpose(2, 3, 1, 0), oihw.reshape(-1), (3, 1, 9, 9 * c_in)
    else:
        dw = result(out, (3, 3, c_in, c_out), x.dtype)
        flat, steps = dw.reshape(-1), (3 * c_in * c_out, c_in * c_out, c_out, 1)
    direct(wg.filter_gradient_from_winograd, x.dtype, partial, flat, 3, c_in, c_out, steps)
    return dw if np.isfinite(dw).all() else None


def _backward_filter_planes(x, dy, g, nchw, out):
    n = x.shape[0]
    dw = result(out, (g.kh, g.kw, x.shape[3], dy.shape[3]), x.dtype)
    parts, rows = plan.dw_planes_plan(n, g.oh, g.ow, g.kw, g.sw, g.dw, g.kh * g.kw * x.shape[3] * dy.shape[3])
    direct(k.conv2d_backward_filter_nhwc, x.dtype, image(x, nchw), image(dy, nchw), dw, parts, rows,
           g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
    return dw


def _backward_filter_taps(x, dy, g, nchw):
    n, c_in, c_out = x.shape[0], x.shape[3], dy.shape[3]
    # Parts from the shape alone (bit-identical at any thread count).
    k_pad, c_pad, parts, chunk_rows = plan.dw_taps_plan(n, g.oh, g.ow, g.kh, g.kw, c_in, c_out)
    partial = np.empty((parts, k_pad, c_pad), x.dtype)
    direct(ft.conv2d_backward_filter_taps, x.dtype, image(x, nchw), image(dy, nchw), partial, g.kh, g.kw, chunk_rows,
           g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
    dw = partial[0] if parts == 1 else partial.sum(axis=0)
    return np.ascontiguousarray(dw.reshape(g.kh, g.kw, -1, c_pad)[:, :, :c_in, :c_out])


def _backward_filter_patches(x, dy, g, nchw):
    n, c_in, c_out = x.shape[0], x.shape[3], dy.shape[3]
    k_len = g.kh * g.kw * c_in
    if plan.dw_swapped(n, g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, g.h, g.w, g.oh, g.ow, c_in, c_out, nchw):
        # dw^T = dy^T @ x: dy as the 1x1 stride-1 "input", x's strided
        # pixels as the "gradient" (plan.dw_swapped).
        if nchw:
            # dy's channel planes are read in place (_kernels.patch_gemm), as for dw^T of more taps.
            k_pad, c_pad, parts, k_block, col_block, chunk = plan.dw_transposed_plan(n, g.oh, g.ow, c_out, c_in)
        else:
            k_pad, c_pad, parts, k_block, chunk = plan.dw_patches_plan(n, g.oh, g.ow, 1, 1, c_out, c_in)
            col_block = c_pad
        partial = np.empty((parts, k_pad, c_pad), x.dtype)
        x_img = image(x, nchw)
        pixels = k.Image(x_img.data, n, g.oh, g.ow, c_in, x_img.n_step, g.sh * x_img.h_step,
                         g.sw * x_img.w_step, x_img.c_step)
        dy_img = image(dy, nchw)
        rows = pg.filter_gradient_rows(dy_img, pixels, 1, 1, 1, 1, 0, 0, False)
        direct(pg.conv2d_backward_filter_patch_gemm, x.dtype, dy_img, pixels, partial, 1, 1, k_block,
               col_block, chunk, 1, 1, 1, 1, 0, 0, False, rows)
        dw = partial[0] if parts == 1 else partial.sum(axis=0)
        hwio = dw[:c_out, :c_in].T.reshape(1, 1, c_in, c_out)
        # NCHW callers get OIHW filters: dw^T's own layout, with no transpose.
        return hwio if nchw else np.ascontiguousarray(hwio)
    if nchw and g.kh * g.kw > 1:
        # dw^T = dy^T @ patches, K in (ci, kh, kw) order: the OIHW filters
        # the caller gets, dy's channel planes read in place as A, x's
        # patches gathered from its planes as B (_kernels.patch_gemm). Before,
        # x was copied to NHWC memory, dy gathered from its planes and dw
        # copied to OIHW memory (2 threads, filter gradient, NCHW / NHWC
        # time before -> now: 1x7x7x512 -> 512 3x3 1.94 -> 1.03, 8x7x7x512
        # 1.30 -> 1.09, 8x14x14x256 -> 512 stride 2 1.30 -> 1.11, 8x28x28x128
        # -> 256 stride 2 1.22 -> 1.03).
        k_pad, c_pad, parts, k_block, col_block, chunk = plan.dw_transposed_plan(n, g.oh, g.ow, c_out, k_len)
        partial = np.empty((parts, k_pad, c_pad), x.dtype)
        dy_img, x_img = image(dy, True), image(x, True)
        no_rows = pg.filter_gradient_rows(dy_img, x_img, g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, True)  # (empty)
        direct(pg.conv2d_backward_filter_patch_gemm, x.dtype, dy_img, x_img, partial, g.kh, g.kw, k_block,
               col_block, chunk, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, True, no_rows)
        dwt = partial[0] if parts == 1 else partial.sum(axis=0)
        return np.ascontiguousarray(dwt[:c_out, :k_len]).reshape(c_out, c_in, g.kh, g.kw).transpose(2, 3, 1, 0)
    # Parts from the shape alone (bit-identical at any thread count).
    k_pad, c_pad, parts, k_block, chunk = plan.dw_patches_plan(n, g.oh, g.ow, g.kh, g.kw, c_in, c_out)
    if nchw and g.sh * g.sw == 1 and g.pt + g.pl == 0:
        chunk = plan.dw_in_place_chunk(n * g.oh * g.ow, g.ow, c_pad)  # x's planes read in place
    partial = np.empty((parts, k_pad, c_pad), x.dtype)
    x_img, dy_img = image(x, nchw), image(dy, nchw)
    rows = pg.filter_gradient_rows(x_img, dy_img, g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, False)
    direct(pg.conv2d_backward_filter_patch_gemm, x.dtype, x_img, dy_img, partial, g.kh, g.kw, k_block, c_pad, chunk,
           g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, False, rows)
    dw = partial[0] if parts == 1 else partial.sum(axis=0)
    return np.ascontiguousarray(dw[:k_len, :c_out]).reshape(g.kh, g.kw, c_in, c_out)


def bias_backward(dy, nchw, out=None):
    n, oh, ow, c = dy.shape
    db = result(out, (c,), dy.dtype)
    if nchw:
        rows, channel_step = contiguous(dy.transpose(0, 3, 1, 2)).reshape(n, c * oh * ow), oh * ow
    else:
        # (Rows of OW pixels within BIAS_ROW_VALUES are what the rule gives:
        # no plan call on small calls.)
        m = max(1, ow) if ow * c <= plan.BIAS_ROW_VALUES else plan.bias_row_pixels(n * oh * ow, ow, c)
        rows, channel_step = contiguous(dy).reshape(n * oh * ow // m, m * c), 1
    # Parts from the shape, not the thread count: bit-identical at any thread count.
    parts = plan.bias_parts(rows.shape[0])
    direct(k.bias_backward_rows, dy.dtype, rows, db, channel_step, parts)
    return deliver(db, out)
