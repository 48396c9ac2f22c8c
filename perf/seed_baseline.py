"""The seed's own NumPy code: the baseline every speed-up in perf/ is quoted against.

``conv_backward`` below is copied VERBATIM from the seed notebook
``/work/shared/seeds/000_9b5af76a53c1a3b7.txt`` ("07-05: Efficient
Convolution Backward Pass using col2im", cell In [121], "Generalized
efficient convolution backward using col2im"). Do not edit it: it is the
code that took 693 ms (``%%timeit -n3 -r3``, cell In [126]) on X (128, 28,
28, 3) float32, W (3, 3, 3, 16), P=1, S=1 and ``dY = np.ones((128, 28, 28,
16))`` (float64). perf/bench.py runs it the same way: float64 dY of ones;
its im2col/col2im buffers are float64 (``np.zeros`` default), so it
computes in float64.

The seed has no separate forward function. ``conv_forward`` is the seed's
im2col forward part (the "forward" block of ``conv_backward``, copied
verbatim) followed by the matrix product the seed's notebook describes
(Y = X_col . W_col + b); only the output-size lines and the final product
are not the seed's text.
"""
import numpy as np


# ---- verbatim from the seed (cell In [121]) ---------------------------------
def conv_backward(dY, X, W, b, P=0, S=1):
    N_batch, H_in, W_in, C_in = X.shape
    H_filter, W_filter, _, C_out = W.shape
    _, H_out, W_out, _ = dY.shape
    
    if P > 0:
        X = np.pad(X, ((0, 0), (P, P), (P, P), (0, 0)), 'constant')
    
    #================== forward ==================
    X_col = np.zeros((N_batch * H_out * W_out, H_filter*W_filter*C_in))
    X_col_row_index = 0
    for n_batch in range(N_batch): # TODO: Maybe I can remove this loop over N_batch?
        for h in range(H_out):
            for w in range(W_out):
                h_start = h * S
                h_end   = h_start + H_filter
                w_start = w * S
                w_end   = w_start + W_filter

                X_slice = X[n_batch, h_start:h_end, w_start:w_end, :].transpose(2, 0, 1)
                X_col[X_col_row_index, :] = X_slice.reshape(1, -1)
                
                X_col_row_index += 1 # X_col_row_index = n_batch * (H_out * W_out) + h * W_out + w

    W_col = W.transpose(2, 0, 1, 3).reshape(-1, C_out)
    
    
    #================== dY ==================
    dY_col = dY.reshape(-1, C_out)
    
    #================== db ==================
    db = np.sum(dY, axis=(0,1,2))

    
    #================== dW ==================
    dW_col = np.dot(X_col.T, dY_col)
    dW = dW_col.reshape(C_in, H_filter, W_filter, C_out).transpose(1, 2, 0, 3)


    #================== dX ==================
    dX_col = np.dot(dY_col, W_col.T)
    dX = np.zeros((N_batch, H_in+2*P, W_in+2*P, C_in))
    dX_col_row_index = 0
    for n_batch in range(N_batch):
        for h in range(H_out):
            for w in range(W_out):
                h_start = h * S
                h_end   = h_start + H_filter
                w_start = w * S
                w_end   = w_start + W_filter

                dX_col_slice = dX_col[dX_col_row_index, :]
                dX[n_batch, h_start:h_end, w_start:w_end, :] += dX_col_slice.reshape(C_in, H_filter, W_filter).transpose(1, 2, 0)

                dX_col_row_index += 1 # dX_col_row_index = n_batch * (H_out * W_out) + h * W_out + w

    if P > 0:
        dX = dX[:, P:-P, P:-P, :]
    
    return (dX, dW, db)
# ---- end of the verbatim copy -----------------------------------------------


def conv_forward(X, W, b, P=0, S=1):
    """Y = conv(X, W) + b with the seed's im2col loop (NHWC, HWIO, symmetric padding P)."""
    N_batch, H_in, W_in, C_in = X.shape
    H_filter, W_filter, _, C_out = W.shape
    H_out = (H_in + 2*P - H_filter) // S + 1  # the seed's earlier cells' output size
    W_out = (W_in + 2*P - W_filter) // S + 1

    # The seed's im2col forward part, verbatim from conv_backward.
    if P > 0:
        X = np.pad(X, ((0, 0), (P, P), (P, P), (0, 0)), 'constant')
    
    #================== forward ==================
    X_col = np.zeros((N_batch * H_out * W_out, H_filter*W_filter*C_in))
    X_col_row_index = 0
    for n_batch in range(N_batch): # TODO: Maybe I can remove this loop over N_batch?
        for h in range(H_out):
            for w in range(W_out):
                h_start = h * S
                h_end   = h_start + H_filter
                w_start = w * S
                w_end   = w_start + W_filter

                X_slice = X[n_batch, h_start:h_end, w_start:w_end, :].transpose(2, 0, 1)
                X_col[X_col_row_index, :] = X_slice.reshape(1, -1)
                
                X_col_row_index += 1 # X_col_row_index = n_batch * (H_out * W_out) + h * W_out + w

    W_col = W.transpose(2, 0, 1, 3).reshape(-1, C_out)

    # Not the seed's text: the product its notebook's forward pass computes.
    return (np.dot(X_col, W_col) + b).reshape(N_batch, H_out, W_out, C_out)
