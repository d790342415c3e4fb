"""afb_urr.ops: the fused local_refine op (compiled CPU/CUDA kernels) against the plain
PyTorch formulation, its autograd and fake kernels, backend selection and the fallback."""
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from afb_urr import ops
from afb_urr.model.decoder import Decoder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

needs_ext = pytest.mark.skipif(ops._C is None, reason="afb_urr._C is not built")
needs_cuda = pytest.mark.skipif(not (torch.cuda.is_available() and ops.compiled_with_cuda()),
                                reason="needs a GPU and the CUDA kernel")


def _inputs(n, c, h, w, dtype=torch.float64, zero_regions=False, seed=0, device="cpu"):
    """Random feat N x C x H x W (normal) and weight N x 1 x H x W in [0, 1); with
    zero_regions, blocks of exactly zero weight (one object entirely)."""
    g = torch.Generator().manual_seed(seed)
    feat = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    weight = torch.rand(n, 1, h, w, generator=g, dtype=torch.float64)
    if zero_regions:
        weight[:, :, : h // 2, : w // 3] = 0
        weight[-1, :, h // 3:, w // 2:] = 0
        if n > 2:
            weight[0] = 0
    return feat.to(device=device, dtype=dtype), weight.to(device=device, dtype=dtype)


def _fused(feat, weight, k, eps=1e-8):
    return torch.ops.afb_urr.local_refine(feat, weight, k, eps)


def _close(actual, expected, rel):
    """|actual - expected| <= rel * (|expected| + max |expected|) elementwise."""
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual.double(), expected.double(), rtol=rel, atol=rel * max(scale, 1e-30))


def _grads(fn, feat, weight, k, grad_avg, grad_max):
    feat = feat.detach().clone().requires_grad_(True)
    weight = weight.detach().clone().requires_grad_(True)
    avg, local_max = fn(feat, weight, k)
    torch.autograd.backward([avg, local_max], [grad_avg.to(avg.dtype), grad_max.to(avg.dtype)])
    return feat.grad, weight.grad


SHAPES = [  # n, c, h, w, k
    (2, 3, 13, 17, 1), (2, 3, 13, 17, 3), (2, 3, 13, 17, 5), (2, 3, 13, 17, 7), (2, 3, 13, 17, 9),
    (3, 4, 33, 40, 7),  # several row bands
    (1, 2, 5, 4, 9),  # window larger than the image
    (2, 2, 1, 1, 7),  # one pixel
    (1, 5, 70, 9, 11),  # tall and narrow
]


@needs_ext
@pytest.mark.parametrize("n,c,h,w,k", SHAPES)
@pytest.mark.parametrize("zero_regions", [False, True])
def test_forward_matches_reference_fp32(n, c, h, w, k, zero_regions):
    feat, weight = _inputs(n, c, h, w, torch.float32, zero_regions, seed=k)
    avg, local_max = _fused(feat, weight, k)
    ref_avg, ref_max = ops.local_refine_reference(feat, weight, k)
    truth_avg, _ = ops.local_refine_reference(feat.double(), weight.double(), k)
    assert avg.dtype == torch.float32 and avg.shape == feat.shape and local_max.shape == weight.shape
    _close(avg, ref_avg, 1e-5)
    _close(avg, truth_avg, 1e-6)
    assert torch.equal(local_max, ref_max)
    zero = ref_avg == 0  # windows of zero weight give (numerically) zero averages, as the reference
    if zero_regions and zero.any():
        assert avg[zero].abs().max().item() < 1e-6


@needs_ext
@pytest.mark.parametrize("n,c,h,w,k", SHAPES)
def test_forward_matches_reference_fp64(n, c, h, w, k):
    feat, weight = _inputs(n, c, h, w, torch.float64, zero_regions=True, seed=k)
    avg, local_max = _fused(feat, weight, k)
    ref_avg, ref_max = ops.local_refine_reference(feat, weight, k)
    _close(avg, ref_avg, 1e-12)
    assert torch.equal(local_max, ref_max)


def _with_non_finite(feat, weight):
    feat, weight = feat.clone(), weight.clone()
    feat[0, 1, 5, 7] = float("nan")
    feat[1, 2, 30, 3] = float("inf")
    feat[1, 0, 20, 10] = -float("inf")
    feat[1, 0, 22, 12] = float("inf")  # +inf and -inf in one window: NaN
    weight[0, 0, 35, 20] = float("inf")
    weight[1, 0, 2, 2] = float("nan")
    return feat, weight


@needs_ext
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_non_finite_values_propagate_like_the_reference(dtype):
    """inf and NaN reach exactly the windows that contain them (the running sums switch
    to direct sums for the rest of a band once one enters)."""
    feat, weight = _with_non_finite(*_inputs(2, 3, 40, 23, dtype, seed=6))
    for k in (3, 7):
        avg, local_max = _fused(feat, weight, k)
        ref_avg, ref_max = ops.local_refine_reference(feat, weight, k)
        assert torch.equal(avg.isnan(), ref_avg.isnan()) and torch.equal(avg.isinf(), ref_avg.isinf())
        torch.testing.assert_close(avg, ref_avg, equal_nan=True, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(local_max, ref_max, equal_nan=True, rtol=0, atol=0)


@needs_ext
@pytest.mark.parametrize("n,c,h,w,k", [(2, 3, 13, 17, 3), (3, 4, 33, 40, 7), (1, 2, 5, 4, 9),
                                       (1, 5, 70, 9, 11)])
@pytest.mark.parametrize("zero_regions", [False, True])
def test_backward_matches_reference(n, c, h, w, k, zero_regions):
    feat, weight = _inputs(n, c, h, w, torch.float64, zero_regions, seed=10 + k)
    if not zero_regions:
        weight = weight + 0.05  # well-conditioned: gradients O(1), compared elementwise
    g = torch.Generator().manual_seed(k)
    grad_avg = torch.randn(feat.shape, generator=g, dtype=torch.float64)
    grad_max = torch.randn(weight.shape, generator=g, dtype=torch.float64)
    truth = _grads(ops.local_refine_reference, feat, weight, k, grad_avg, grad_max)
    got64 = _grads(_fused, feat, weight, k, grad_avg, grad_max)
    # Zero-weight windows make grad_avg / D ~ 1e8: the running sums then carry ~1e-16 of that.
    for a, b in zip(got64, truth):
        _close(a, b, 1e-7 if zero_regions else 1e-10)
    got32 = _grads(_fused, feat.float(), weight.float(), k, grad_avg, grad_max)
    ref32 = _grads(ops.local_refine_reference, feat.float(), weight.float(), k, grad_avg, grad_max)
    for a, b, t in zip(got32, ref32, truth):
        assert a.dtype == torch.float32
        _close(a, t, 1e-6)
        _close(a, b, 1e-5)


@needs_ext
def test_max_gradient_ties_follow_max_pool2d():
    """Plateaus of equal weights: each window's gradient goes to the first maximum in
    row-major scan order, exactly as max_pool2d routes it."""
    g = torch.Generator().manual_seed(3)
    weight = (torch.rand(2, 1, 15, 19, generator=g, dtype=torch.float64) * 3).round() / 3
    feat = torch.randn(2, 4, 15, 19, generator=g, dtype=torch.float64)
    grad_max = torch.randn(weight.shape, generator=g, dtype=torch.float64)
    for k in (3, 5, 7):
        w = weight.clone().requires_grad_(True)
        F.max_pool2d(w, k, stride=1, padding=k // 2).backward(grad_max)
        _, gw = _grads(_fused, feat, weight, k, torch.zeros_like(feat), grad_max)
        torch.testing.assert_close(gw, w.grad, rtol=0, atol=1e-12)


@needs_ext
@pytest.mark.parametrize("shape,k", [((2, 3, 5, 6), 3), ((1, 2, 6, 7), 5), ((1, 1, 4, 3), 7)])
def test_gradcheck_float64(shape, k):
    n, c, h, w = shape
    feat, weight = _inputs(n, c, h, w, torch.float64, seed=k)
    feat.requires_grad_(True)
    weight = (weight + 0.1).requires_grad_(True)  # distinct values: no ties under perturbation
    assert torch.autograd.gradcheck(lambda f, m: _fused(f, m, k), (feat, weight))
    assert torch.autograd.gradcheck(lambda f, m: ops.local_refine(f, m, k), (feat, weight))


@needs_ext
@pytest.mark.parametrize("k", [3, 7])
def test_opcheck(k):
    feat, weight = _inputs(2, 3, 9, 11, torch.float32, seed=k)
    torch.library.opcheck(torch.ops.afb_urr.local_refine.default, (feat, weight, k, 1e-8))
    torch.library.opcheck(torch.ops.afb_urr.local_refine.default,
                          (feat.requires_grad_(True), weight.requires_grad_(True), k, 1e-8))
    grad_avg, grad_max = torch.randn_like(feat), torch.randn_like(weight)
    avg = torch.randn_like(feat)
    torch.library.opcheck(torch.ops.afb_urr.local_refine_backward.default,
                          (grad_avg, grad_max, feat.detach(), weight.detach(), avg, k, 1e-8))


@needs_ext
def test_torch_compile_traces_the_op():
    feat, weight = _inputs(2, 3, 10, 12, torch.float32, seed=5)
    compiled = torch.compile(lambda f, m: ops.local_refine(f, m, 5), fullgraph=True, backend="aot_eager")
    f1, w1 = feat.clone().requires_grad_(True), weight.clone().requires_grad_(True)
    avg, local_max = compiled(f1, w1)
    (avg.square().sum() + local_max.sum()).backward()
    f2, w2 = feat.clone().requires_grad_(True), weight.clone().requires_grad_(True)
    ref_avg, ref_max = ops.local_refine_reference(f2, w2, 5)
    (ref_avg.square().sum() + ref_max.sum()).backward()
    _close(avg.detach(), ref_avg.detach(), 1e-5)
    assert torch.equal(local_max, ref_max)
    _close(f1.grad, f2.grad, 1e-5)
    _close(w1.grad, w2.grad, 1e-5)


@needs_ext
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_types_on_cpu(dtype):
    feat, weight = _inputs(2, 3, 12, 14, torch.float64, seed=7)
    weight = weight + 0.05
    avg, local_max = _fused(feat.to(dtype), weight.to(dtype), 7)
    truth_avg, _ = ops.local_refine_reference(feat.to(dtype).double(), weight.to(dtype).double(), 7)
    ref_max = F.max_pool2d(weight.to(dtype), 7, stride=1, padding=3)
    assert avg.dtype == dtype and local_max.dtype == dtype
    _close(avg, truth_avg, 1e-2 if dtype == torch.bfloat16 else 2e-3)
    assert torch.equal(local_max, ref_max)


@needs_ext
def test_layouts_mixed_dtypes_and_empty_inputs():
    feat, weight = _inputs(2, 4, 11, 13, torch.float32, seed=8)
    ref_avg, ref_max = ops.local_refine_reference(feat, weight, 7)
    # channels_last feat and a strided weight view give the same result
    wide = torch.zeros(2, 1, 11, 26)
    wide[..., ::2] = weight
    avg, local_max = ops.local_refine(feat.to(memory_format=torch.channels_last), wide[..., ::2])
    _close(avg, ref_avg, 1e-5)
    assert torch.equal(local_max, ref_max)
    # feat in float16 with a float32 weight promotes like the PyTorch formulation
    avg, local_max = ops.local_refine(feat.half(), weight)
    ref_avg, _ = ops.local_refine_reference(feat.half(), weight)
    assert avg.dtype == ref_avg.dtype == torch.float32
    _close(avg, ref_avg, 1e-5)
    # empty batches and zero channels
    avg, local_max = _fused(torch.zeros(0, 3, 5, 5), torch.zeros(0, 1, 5, 5), 7)
    assert avg.shape == (0, 3, 5, 5) and local_max.shape == (0, 1, 5, 5)
    avg, local_max = _fused(torch.zeros(2, 0, 5, 5), weight[:, :, :5, :5].contiguous(), 3)
    assert avg.shape == (2, 0, 5, 5)
    assert torch.equal(local_max, F.max_pool2d(weight[:, :, :5, :5], 3, stride=1, padding=1))


def test_bad_inputs_are_named():
    feat, weight = _inputs(2, 3, 8, 8, torch.float32)
    with pytest.raises(ValueError, match="kernel_size"):
        ops.local_refine(feat, weight, 4)
    with pytest.raises(ValueError, match="kernel_size"):
        ops.local_refine(feat, weight, 0)
    with pytest.raises(ValueError, match="N x 1 x H x W"):
        ops.local_refine(feat, weight.expand(2, 2, 8, 8))
    with pytest.raises(ValueError, match="agree in N, H and W"):
        ops.local_refine(feat, weight[:, :, :7])
    with pytest.raises(ValueError, match="N x C x H x W"):
        ops.local_refine(feat[0], weight)
    with pytest.raises(TypeError, match="floating point"):
        ops.local_refine(feat, (weight > 0.5).long())
    with pytest.raises(ValueError, match="eps"):
        ops.local_refine(feat, weight, 7, -1.0)
    if ops._C is not None:  # the op itself checks too (direct torch.ops calls)
        with pytest.raises(RuntimeError, match="kernel_size must be a positive odd number"):
            _fused(feat, weight, 6)
        with pytest.raises(RuntimeError, match="same dtype"):
            _fused(feat, weight.double(), 7)
        with pytest.raises(RuntimeError, match="grad_avg has shape"):
            torch.ops.afb_urr.local_refine_backward(feat[:1], weight, feat, weight, feat, 7, 1e-8)


@needs_ext
def test_backend_selection(monkeypatch):
    monkeypatch.delenv(ops.BACKEND_ENV, raising=False)
    assert ops.backend("cpu") == "cpu"
    assert ops.backend("cuda") == ("cuda" if ops.compiled_with_cuda() else "torch")
    assert ops.backend() == ("cuda" if torch.cuda.is_available() and ops.compiled_with_cuda() else "cpu")
    with ops.use_backend("torch"):
        assert ops.backend("cpu") == "torch"
    assert ops.backend("cpu") == "cpu"
    monkeypatch.setenv(ops.BACKEND_ENV, "torch")
    assert ops.backend("cpu") == "torch"
    with ops.use_backend("auto"):  # set_backend takes precedence over the variable
        assert ops.backend("cpu") == "cpu"
    monkeypatch.setenv(ops.BACKEND_ENV, "fast")
    with pytest.raises(ValueError, match=ops.BACKEND_ENV):
        ops.backend("cpu")
    with pytest.raises(ValueError, match="unknown local_refine backend"):
        ops.set_backend("cuda-please")


@needs_ext
def test_forced_torch_backend_runs_the_reference(monkeypatch):
    feat, weight = _inputs(1, 2, 9, 9, torch.float32)
    feat.requires_grad_(True)
    with ops.use_backend("torch"):
        avg, _ = ops.local_refine(feat, weight)
    # the reference graph ends in a division; the fused op's node is the custom op
    assert "Div" in type(avg.grad_fn).__name__
    avg, _ = ops.local_refine(feat, weight)
    assert "Div" not in type(avg.grad_fn).__name__


def test_without_extension_warns_once_and_uses_torch():
    """With afb_urr._C unimportable the package imports, warns once and runs plain PyTorch."""
    script = r"""
import importlib.abc, sys, warnings
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "afb_urr._C":
            raise ImportError("blocked for the test")
        return None
sys.meta_path.insert(0, Block())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import torch
    from afb_urr import ops
    feat, weight = torch.randn(1, 3, 8, 9), torch.rand(1, 1, 8, 9)
    a1, m1 = ops.local_refine(feat, weight)
    a2, m2 = ops.local_refine(feat, weight, 5)
ours = [w for w in caught if "afb_urr._C" in str(w.message)]
ref = ops.local_refine_reference(feat, weight)
assert ops.backend() == "torch" and ops.backend("cpu") == "torch", ops.backend()
assert torch.equal(a1, ref[0]) and torch.equal(m1, ref[1])
print(len(ours))
"""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "1"


@needs_ext
def test_decoder_gives_the_same_output_on_either_backend():
    torch.manual_seed(0)
    dec = Decoder(read_ch=16, r3_ch=8, r2_ch=8, r1_ch=8, mid_ch=16, local_ch=8).eval()
    b, k, h, w = 1, 3, 3, 4
    read = torch.randn(b * k, 16, h, w)
    r3 = torch.randn(b * k, 8, 2 * h, 2 * w)
    r2 = torch.randn(b * k, 8, 4 * h, 4 * w)
    r1 = torch.randn(b * k, 8, 8 * h, 8 * w, requires_grad=True)
    outs, grads = {}, {}
    for name in ("torch", "auto"):
        with ops.use_backend(name):
            assert ops.backend("cpu") == ("torch" if name == "torch" else "cpu")
            dec.zero_grad()
            r1.grad = None
            out = dec(read, r3, r2, r1, k)
            out.square().sum().backward()
            outs[name] = out.detach()
            grads[name] = [r1.grad.clone()] + [p.grad.clone() for p in dec.parameters()]
    assert outs["auto"].shape == (b, k, 16 * h, 16 * w)
    torch.testing.assert_close(outs["auto"], outs["torch"], rtol=1e-5, atol=1e-6)
    for a, t in zip(grads["auto"], grads["torch"]):
        torch.testing.assert_close(a, t, rtol=1e-4, atol=1e-5 * max(t.abs().max().item(), 1e-6))


# ---- CUDA (skipped without a GPU; run on a lent one) --------------------------------------

CUDA_SHAPES = [(2, 3, 13, 17, 7), (1, 64, 70, 45, 7), (3, 5, 33, 65, 3), (2, 2, 5, 4, 9),
               (1, 3, 40, 37, 15)]


@needs_cuda
@pytest.mark.parametrize("n,c,h,w,k", CUDA_SHAPES)
@pytest.mark.parametrize("zero_regions", [False, True])
def test_cuda_forward_backward_match_reference(n, c, h, w, k, zero_regions):
    feat, weight = _inputs(n, c, h, w, torch.float32, zero_regions, seed=k, device="cuda")
    avg, local_max = _fused(feat, weight, k)
    ref_avg, ref_max = ops.local_refine_reference(feat, weight, k)
    truth_avg, _ = ops.local_refine_reference(feat.double(), weight.double(), k)
    _close(avg, ref_avg, 1e-5)
    _close(avg, truth_avg, 1e-5)
    assert torch.equal(local_max, ref_max)
    g = torch.Generator().manual_seed(k)
    grad_avg = torch.randn(feat.shape, generator=g, dtype=torch.float64).cuda()
    grad_max = torch.randn(weight.shape, generator=g, dtype=torch.float64).cuda()
    truth = _grads(ops.local_refine_reference, feat.double(), weight.double(), k, grad_avg, grad_max)
    got = _grads(_fused, feat, weight, k, grad_avg, grad_max)
    for a, t in zip(got, truth):
        _close(a, t, 1e-5)
    got64 = _grads(_fused, feat.double(), weight.double(), k, grad_avg, grad_max)
    for a, t in zip(got64, truth):
        _close(a, t, 1e-10)
    cpu = _grads(_fused, feat.cpu(), weight.cpu(), k, grad_avg.cpu(), grad_max.cpu())
    for a, b in zip(got, cpu):
        _close(a.cpu(), b, 1e-5)


@needs_cuda
def test_cuda_non_finite_values_propagate_like_the_reference():
    feat, weight = _with_non_finite(*_inputs(2, 3, 40, 23, torch.float32, seed=6))
    avg, local_max = _fused(feat.cuda(), weight.cuda(), 7)
    ref_avg, ref_max = ops.local_refine_reference(feat, weight, 7)
    torch.testing.assert_close(avg.cpu(), ref_avg, equal_nan=True, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(local_max.cpu(), ref_max, equal_nan=True, rtol=0, atol=0)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_half_types(dtype):
    feat, weight = _inputs(2, 8, 37, 41, torch.float32, seed=4, device="cuda")
    weight = weight + 0.05
    f, m = feat.to(dtype), weight.to(dtype)
    avg, local_max = _fused(f, m, 7)
    truth_avg, _ = ops.local_refine_reference(f.double(), m.double(), 7)
    assert avg.dtype == dtype
    _close(avg, truth_avg, 1e-2 if dtype == torch.bfloat16 else 2e-3)
    assert torch.equal(local_max, F.max_pool2d(m, 7, stride=1, padding=3))
    grad_avg = torch.randn_like(feat)
    grad_max = torch.randn_like(weight)
    got = _grads(_fused, f, m, 7, grad_avg, grad_max)
    truth = _grads(ops.local_refine_reference, f.double(), m.double(), 7, grad_avg.double(), grad_max.double())
    for a, t in zip(got, truth):
        assert a.dtype == dtype
        _close(a, t, 2e-2)


@needs_cuda
def test_cuda_gradcheck_opcheck_and_ties():
    feat, weight = _inputs(2, 3, 9, 11, torch.float64, seed=2, device="cuda")
    feat.requires_grad_(True)
    weight = (weight + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f, m: _fused(f, m, 5), (feat, weight))
    torch.library.opcheck(torch.ops.afb_urr.local_refine.default, (feat.float(), weight.float(), 7, 1e-8))
    tied = (weight.detach() * 3).round() / 3
    grad_max = torch.randn_like(tied)
    w = tied.clone().requires_grad_(True)
    F.max_pool2d(w, 7, stride=1, padding=3).backward(grad_max)
    _, gw = _grads(_fused, feat.detach(), tied, 7, torch.zeros_like(feat), grad_max)
    torch.testing.assert_close(gw, w.grad, rtol=0, atol=1e-12)


@needs_cuda
def test_cuda_decoder_same_output_on_either_backend():
    torch.manual_seed(0)
    dec = Decoder(read_ch=16, r3_ch=8, r2_ch=8, r1_ch=8, mid_ch=16, local_ch=8).cuda().eval()
    k, h, w = 3, 3, 4
    args = (torch.randn(k, 16, h, w, device="cuda"), torch.randn(k, 8, 2 * h, 2 * w, device="cuda"),
            torch.randn(k, 8, 4 * h, 4 * w, device="cuda"), torch.randn(k, 8, 8 * h, 8 * w, device="cuda"))
    assert ops.backend("cuda") == "cuda"
    with torch.no_grad():
        fused = dec(*args, k)
        with ops.use_backend("torch"):
            ref = dec(*args, k)
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-6)


@needs_cuda
def test_cuda_window_too_large_for_shared_memory_uses_the_reference():
    # fp64, 151 x 151 window on a 200 x 200 image: the staged tiles need ~576 KB of
    # shared memory, more than any GPU has, so local_refine falls back to PyTorch.
    feat, weight = _inputs(1, 2, 200, 200, torch.float64, seed=5, device="cuda")
    assert ops.cuda_kernel_fits(feat, 7)
    assert not ops.cuda_kernel_fits(feat, 151)
    avg, local_max = ops.local_refine(feat, weight, 151)
    truth_avg, truth_max = ops.local_refine_reference(feat, weight, 151)
    _close(avg, truth_avg, 1e-12)
    assert torch.equal(local_max, truth_max)


def test_cuda_kernel_choice(monkeypatch):
    monkeypatch.delenv(ops.CUDA_KERNEL_ENV, raising=False)
    assert ops.cuda_kernel() == "tile"  # the default until a GPU run confirms the streaming one
    monkeypatch.setenv(ops.CUDA_KERNEL_ENV, "Stream")
    assert ops.cuda_kernel() == "stream"
    ops.set_cuda_kernel("tile")
    try:
        assert ops.cuda_kernel() == "tile"
        with pytest.raises(ValueError, match="unknown CUDA kernel"):
            ops.set_cuda_kernel("warp")
    finally:
        ops.set_cuda_kernel(None)
    monkeypatch.setenv(ops.CUDA_KERNEL_ENV, "fast")
    with pytest.raises(ValueError, match="AFB_URR_CUDA_KERNEL"):
        ops.cuda_kernel()


_DIRECT_BAD_CALL = """
import sys, torch
from afb_urr import ops
device = sys.argv[1]
f, w = torch.randn(2, 3, 8, 8, device=device), torch.rand(2, 1, 8, 8, device=device)
for name in sys.argv[2:]:
    try:
        getattr(torch.ops.afb_urr, name)(f, w, 6, 1e-8)
    except RuntimeError as e:
        print(name, "raised:", str(e).splitlines()[0])
"""


@needs_ext
def test_direct_op_call_with_a_bad_argument_raises_in_a_fresh_process():
    """A crash (the GPU machine's toolchain once segfaulted here) fails this test, not the run."""
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and ops.compiled_with_cuda() else [])
    for device in devices:
        names = ["local_refine"] + (["local_refine_stream"] if device == "cuda" else [])
        proc = subprocess.run([sys.executable, "-c", _DIRECT_BAD_CALL, device, *names], cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{device}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
        for name in names:
            assert f"{name} raised: local_refine" in proc.stdout and "kernel_size" in proc.stdout


STREAM_SHAPES = [  # n, c, h, w, k: several strips and row chunks, odd C, every radius up to 7
    (2, 3, 13, 17, 7), (1, 64, 150, 70, 7), (3, 5, 33, 65, 3), (2, 2, 5, 4, 9), (1, 3, 40, 37, 15),
    (2, 1, 70, 33, 1), (1, 4, 129, 97, 5), (1, 2, 66, 40, 11), (2, 3, 20, 300, 13)]


@needs_cuda
@pytest.mark.parametrize("n,c,h,w,k", STREAM_SHAPES)
@pytest.mark.parametrize("zero_regions", [False, True])
def test_cuda_stream_forward_matches_reference(n, c, h, w, k, zero_regions):
    feat, weight = _inputs(n, c, h, w, torch.float32, zero_regions, seed=k, device="cuda")
    avg, local_max = torch.ops.afb_urr.local_refine_stream(feat, weight, k, 1e-8)
    ref_avg, ref_max = ops.local_refine_reference(feat, weight, k)
    truth_avg, _ = ops.local_refine_reference(feat.double(), weight.double(), k)
    _close(avg, ref_avg, 1e-5)
    _close(avg, truth_avg, 1e-5)
    assert torch.equal(local_max, ref_max)
    if zero_regions:  # zero-weight windows give exact zeros, as in the reference
        assert torch.equal(avg[ref_avg == 0], ref_avg[ref_avg == 0])
    avg64, _ = torch.ops.afb_urr.local_refine_stream(feat.double(), weight.double(), k, 1e-8)
    _close(avg64, truth_avg, 1e-10)
    tile_avg, tile_max = _fused(feat, weight, k)
    _close(avg, tile_avg, 1e-5)
    assert torch.equal(local_max, tile_max)


@needs_cuda
def test_cuda_stream_non_finite_half_types_and_autograd():
    feat, weight = _with_non_finite(*_inputs(2, 3, 40, 23, torch.float32, seed=6))
    avg, local_max = torch.ops.afb_urr.local_refine_stream(feat.cuda(), weight.cuda(), 7, 1e-8)
    ref_avg, ref_max = ops.local_refine_reference(feat, weight, 7)
    torch.testing.assert_close(avg.cpu(), ref_avg, equal_nan=True, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(local_max.cpu(), ref_max, equal_nan=True, rtol=0, atol=0)
    feat, weight = _inputs(2, 8, 37, 41, torch.float32, seed=4, device="cuda")
    weight = weight + 0.05
    for dtype, tol in ((torch.bfloat16, 1e-2), (torch.float16, 2e-3)):
        f, m = feat.to(dtype), weight.to(dtype)
        avg, local_max = torch.ops.afb_urr.local_refine_stream(f, m, 7, 1e-8)
        truth_avg, _ = ops.local_refine_reference(f.double(), m.double(), 7)
        assert avg.dtype == dtype
        _close(avg, truth_avg, tol)
        assert torch.equal(local_max, F.max_pool2d(m, 7, stride=1, padding=3))
    ops.set_cuda_kernel("stream")
    try:
        grad_avg, grad_max = torch.randn_like(feat), torch.randn_like(weight)
        got = _grads(ops.local_refine, feat, weight, 7, grad_avg, grad_max)
        truth = _grads(ops.local_refine_reference, feat.double(), weight.double(), 7, grad_avg.double(),
                       grad_max.double())
        for a, t in zip(got, truth):
            _close(a, t, 1e-5)
        torch.library.opcheck(torch.ops.afb_urr.local_refine_stream.default, (feat, weight, 7, 1e-8))
        assert ops.local_refine(feat, weight, 17)[0].shape == feat.shape  # k > 15: the tile kernel
    finally:
        ops.set_cuda_kernel(None)
