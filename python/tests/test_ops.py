"""The functional convolution matches a direct numpy implementation, forward and backward."""
import numpy as np
import pytest

from medsynth import ops


def reference_conv(x, w, b, stride, pad, dil, groups):
    n, cin, h, wd = x.shape
    cout, cpg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    wo = (wd + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    y = np.zeros((n, cout, ho, wo), np.float64)
    opg = cout // groups
    for co in range(cout):
        g = co // opg
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, g * cpg:(g + 1) * cpg, i * dil:i * dil + stride * ho:stride, j * dil:j * dil + stride * wo:stride]
                y[:, co] += np.einsum("nchw,c->nhw", patch, w[co, :, i, j])
        if b is not None:
            y[:, co] += b[co]
    return y


@pytest.mark.parametrize("cin,cout,k,stride,pad,dil,groups", [
    (3, 8, 3, 1, 1, 1, 1), (4, 4, 3, 2, 1, 1, 4), (6, 4, 1, 1, 0, 1, 2), (2, 5, 5, 1, 4, 2, 1)])
def test_conv2d_forward_and_backward(cin, cout, k, stride, pad, dil, groups):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, cin, 9, 8)).astype(np.float32)
    w = rng.standard_normal((cout, cin // groups, k, k)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    y = ops.conv2d(x, w, b, stride, pad, dil, groups)
    np.testing.assert_allclose(y, reference_conv(x, w, b, stride, pad, dil, groups), rtol=1e-4, atol=1e-4)

    # backward against the adjoint identity <dy, conv(x)> linear in x and in w
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = ops.conv2d_backward(x, w, dy, stride, pad, dil, groups)
    lin = lambda xx, ww: float(np.sum(dy * reference_conv(xx, ww, None, stride, pad, dil, groups)))
    eps = 1e-3
    for _ in range(5):
        d = rng.standard_normal(x.shape)
        numeric = (lin(x + eps * d, w) - lin(x - eps * d, w)) / (2 * eps)
        assert abs(numeric - np.sum(dx * d)) <= 1e-3 * (1 + abs(numeric))
        e = rng.standard_normal(w.shape)
        numeric = (lin(x, w + eps * e) - lin(x, w - eps * e)) / (2 * eps)
        assert abs(numeric - np.sum(dw * e)) <= 1e-3 * (1 + abs(numeric))
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2, 3)), rtol=1e-4, atol=1e-4)


def test_conv2d_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="a 3x3 kernel does not fit a 2x2 input with padding 0"):
        ops.conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="input channels times groups must equal x's channels"):
        ops.conv2d(np.zeros((1, 3, 8, 8)), np.zeros((2, 2, 3, 3)))
