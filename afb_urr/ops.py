"""Entry point for the uncertain-region refinement kernel.

``local_refine(feat, weight, kernel_size, eps)`` computes, over a
``kernel_size`` x ``kernel_size`` window (stride 1, zero padding, division by
the full window area at borders too, i.e. ``count_include_pad``)::

    average = box(feat * weight) / (box(weight) + eps)   # N x C x H x W
    local_max = maxpool(weight)                          # N x 1 x H x W

``feat`` is N x C x H x W (the 1/2-scale query features r1, C = 64) and
``weight`` is N x 1 x H x W (one object's probability map per row). The max
is taken over in-bounds pixels only (padding acts as -inf, as in
``max_pool2d``).

This module is the one entry the decoder calls. It dispatches to the compiled
op ``torch.ops.afb_urr.local_refine`` (from ``afb_urr._C``, built from csrc/:
a CPU kernel and, when built with CUDA, a CUDA kernel), which fuses the five
PyTorch passes into one and has its own backward op, autograd formula and fake
(meta) kernel, so training and ``torch.compile`` use it too. Without the
extension (or with ``AFB_URR_OPS_BACKEND=torch`` / ``set_backend("torch")``)
it runs :func:`local_refine_reference`, the plain PyTorch formulation.

On CUDA two forward kernels exist: the tile kernel (default) and a streaming
kernel (``AFB_URR_CUDA_KERNEL=stream`` or ``set_cuda_kernel("stream")``, windows up
to 15), which stays opt-in until a GPU run confirms it; both share the backward.

Gradient of the local max: like ``max_pool2d``, each window's gradient goes to
its argmax; on ties the first maximum in row-major scan order of the window
wins, and a NaN always counts as the maximum.
"""
from __future__ import annotations

import contextlib
import numbers
import os
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F

BACKEND_ENV = "AFB_URR_OPS_BACKEND"
"""Environment variable that forces the implementation: "torch" or "auto" (the default)."""

_CHOICES = ("auto", "torch")

CUDA_KERNEL_ENV = "AFB_URR_CUDA_KERNEL"
"""Environment variable that picks the CUDA forward kernel: "tile" (the default) or "stream"."""

_CUDA_KERNELS = ("tile", "stream")
# The streaming kernel (csrc/local_refine_cuda.cu, forward_stream_kernel) is opt-in: it has
# not run on a GPU yet. The default moves to it once scripts/gpu_check.sh confirms it.
_DEFAULT_CUDA_KERNEL = "tile"
_STREAM_MAX_RADIUS = 7

try:
    from . import _C  # loading the library registers torch.ops.afb_urr.*
except (ImportError, OSError) as _exc:  # not built, or built against another torch
    _C = None
    warnings.warn(
        f"afb_urr: the compiled extension afb_urr._C is not available ({_exc}); local_refine runs the "
        "plain PyTorch formulation (slower, more memory). Build it with "
        "`pip install --no-build-isolation -e .` or `python setup.py build_ext --inplace`.",
        RuntimeWarning, stacklevel=2)

_override: str | None = None
_cuda_kernel_override: str | None = None


def local_refine_reference(feat: torch.Tensor, weight: torch.Tensor, kernel_size: int = 7,
                           eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain PyTorch formulation of :func:`local_refine` (the numerical reference)."""
    pad = kernel_size // 2
    num = F.avg_pool2d(feat * weight, kernel_size, stride=1, padding=pad, count_include_pad=True)
    den = F.avg_pool2d(weight, kernel_size, stride=1, padding=pad, count_include_pad=True)
    local_max = F.max_pool2d(weight, kernel_size, stride=1, padding=pad)
    return num / (den + eps), local_max


def _check_choice(name: str | None, source: str) -> str:
    choice = "auto" if name is None or name == "" else str(name).strip().lower()
    if choice not in _CHOICES:
        raise ValueError(f"{source}: unknown local_refine backend {name!r}; expected one of {_CHOICES}")
    return choice


def set_backend(name: str | None) -> None:
    """Force the implementation for this process: "torch" (plain PyTorch) or "auto"/None
    (the compiled kernel where available). Takes precedence over ``AFB_URR_OPS_BACKEND``."""
    global _override
    _override = None if name is None else _check_choice(name, "set_backend")


@contextlib.contextmanager
def use_backend(name: str | None) -> Iterator[None]:
    """Context manager form of :func:`set_backend`; restores the previous choice on exit."""
    global _override
    previous = _override
    set_backend(name)
    try:
        yield
    finally:
        _override = previous


def _requested() -> str:
    if _override is not None:
        return _override
    return _check_choice(os.environ.get(BACKEND_ENV), BACKEND_ENV)


def _check_cuda_kernel(name: str | None, source: str) -> str:
    choice = _DEFAULT_CUDA_KERNEL if name is None or name == "" else str(name).strip().lower()
    if choice not in _CUDA_KERNELS:
        raise ValueError(f"{source}: unknown CUDA kernel {name!r}; expected one of {_CUDA_KERNELS}")
    return choice


def set_cuda_kernel(name: str | None) -> None:
    """Pick the CUDA forward kernel for this process: "tile" (default, verified on GPUs) or
    "stream" (a warp per column strip, opt-in until a GPU run confirms it); None restores
    the default. Takes precedence over ``AFB_URR_CUDA_KERNEL``."""
    global _cuda_kernel_override
    _cuda_kernel_override = None if name is None else _check_cuda_kernel(name, "set_cuda_kernel")


def cuda_kernel() -> str:
    """The CUDA forward kernel in use: "tile" or "stream" (the backward is shared)."""
    if _cuda_kernel_override is not None:
        return _cuda_kernel_override
    return _check_cuda_kernel(os.environ.get(CUDA_KERNEL_ENV), CUDA_KERNEL_ENV)


def stream_kernel_fits(feat: torch.Tensor, kernel_size: int) -> bool:
    """Whether the streaming CUDA kernel takes this input: window radius (clipped to the
    image) at most 7, i.e. k <= 15; the others use the tile kernel."""
    r = min(int(kernel_size) // 2, max(feat.shape[2], feat.shape[3], 1) - 1)
    return r <= _STREAM_MAX_RADIUS and hasattr(torch.ops.afb_urr, "local_refine_stream")


def compiled_with_cuda() -> bool:
    """True when the compiled extension is present and contains the CUDA kernel."""
    return _C is not None and bool(_C.with_cuda)


def backend(device: torch.device | str | None = None) -> str:
    """Which implementation :func:`local_refine` uses for tensors on ``device``: "cuda",
    "cpu" (the compiled kernels) or "torch" (plain PyTorch). With no device: the default
    one, CUDA when a GPU is available, else the CPU."""
    if _requested() == "torch" or _C is None:
        return "torch"
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    kind = torch.device(device).type
    if kind == "cpu":
        return "cpu"
    if kind == "cuda" and compiled_with_cuda():
        return "cuda"
    return "torch"


def _validate(feat: torch.Tensor, weight: torch.Tensor, kernel_size: int, eps: float) -> None:
    if not isinstance(feat, torch.Tensor) or not isinstance(weight, torch.Tensor):
        raise TypeError(f"local_refine: feat and weight must be tensors, got {type(feat).__name__} and "
                        f"{type(weight).__name__}")
    if feat.dim() != 4:
        raise ValueError(f"local_refine: feat must be N x C x H x W, got shape {tuple(feat.shape)}")
    if weight.dim() != 4 or weight.shape[1] != 1:
        raise ValueError(f"local_refine: weight must be N x 1 x H x W, got shape {tuple(weight.shape)}")
    if (feat.shape[0], feat.shape[2], feat.shape[3]) != (weight.shape[0], weight.shape[2], weight.shape[3]):
        raise ValueError(f"local_refine: feat {tuple(feat.shape)} and weight {tuple(weight.shape)} must agree "
                         "in N, H and W")
    if not feat.is_floating_point() or not weight.is_floating_point():
        raise TypeError(f"local_refine: feat and weight must be floating point, got {feat.dtype} and "
                        f"{weight.dtype}")
    if feat.device != weight.device:
        raise ValueError(f"local_refine: feat is on {feat.device} but weight is on {weight.device}")
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, numbers.Integral) or kernel_size < 1 \
            or kernel_size % 2 == 0:
        raise ValueError(f"local_refine: kernel_size must be a positive odd int, got {kernel_size!r}")
    if not (float(eps) >= 0.0 and float(eps) != float("inf")):
        raise ValueError(f"local_refine: eps must be finite and >= 0, got {eps!r}")


# The CUDA kernel's block: a 32 x 32 output tile, staged with a halo of the window
# radius r in shared memory (csrc/local_refine_cuda.cu, shared_bytes): two staged
# (32 + 2r)^2 tiles plus a 32-wide row-sum buffer, in the accumulation type.
_CUDA_TILE = 32
_CUDA_MAX_GRID_YZ = 65535


def cuda_kernel_fits(feat: torch.Tensor, kernel_size: int) -> bool:
    """Whether the CUDA kernel can run this input: the window's shared-memory tile fits
    the device (large k does not) and the grid is within limits (N <= 65535 objects,
    H <= 65535 * 32). :func:`local_refine` uses plain PyTorch for the rest."""
    n, _, h, w = feat.shape
    if n > _CUDA_MAX_GRID_YZ or -(-h // _CUDA_TILE) > _CUDA_MAX_GRID_YZ:
        return False
    r = min(int(kernel_size) // 2, max(h, w, 1) - 1)
    side = _CUDA_TILE + 2 * r
    acc_bytes = 8 if feat.dtype == torch.float64 else 4
    props = torch.cuda.get_device_properties(feat.device)
    limit = getattr(props, "shared_memory_per_block_optin", 0) or 48 * 1024
    return (2 * side * side + _CUDA_TILE * side) * acc_bytes <= limit


def local_refine(feat: torch.Tensor, weight: torch.Tensor, kernel_size: int = 7,
                 eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted local average and local max of ``weight`` (see the module docstring).

    feat: N x C x H x W, weight: N x 1 x H x W (floating point, same device; mixed
    dtypes are promoted as the PyTorch formulation would). Returns (average
    N x C x H x W, local max N x 1 x H x W). Differentiable in feat and weight.
    """
    _validate(feat, weight, kernel_size, eps)
    live = backend(feat.device)
    if live == "torch" or (live == "cuda" and not cuda_kernel_fits(feat, kernel_size)):
        return local_refine_reference(feat, weight, kernel_size, eps)
    dtype = torch.promote_types(feat.dtype, weight.dtype)
    op = torch.ops.afb_urr.local_refine
    if live == "cuda" and cuda_kernel() == "stream" and stream_kernel_fits(feat, kernel_size):
        op = torch.ops.afb_urr.local_refine_stream
    return op(feat.to(dtype), weight.to(dtype), int(kernel_size), float(eps))


if _C is not None:
    @torch.library.register_fake("afb_urr::local_refine")
    def _local_refine_fake(feat, weight, kernel_size=7, eps=1e-8):
        torch._check(feat.dim() == 4 and weight.dim() == 4 and weight.shape[1] == 1,
                     lambda: "local_refine: feat must be N x C x H x W and weight N x 1 x H x W")
        torch._check(feat.dtype == weight.dtype, lambda: "local_refine: feat and weight dtypes differ")
        return (torch.empty_like(feat, memory_format=torch.contiguous_format),
                torch.empty_like(weight, memory_format=torch.contiguous_format))

    @torch.library.register_fake("afb_urr::local_refine_backward")
    def _local_refine_backward_fake(grad_avg, grad_max, feat, weight, avg, kernel_size, eps):
        return (torch.empty_like(feat, memory_format=torch.contiguous_format),
                torch.empty_like(weight, memory_format=torch.contiguous_format))

    def _setup_context(ctx, inputs, output):
        feat, weight, kernel_size, eps = inputs
        ctx.save_for_backward(feat, weight, output[0])
        ctx.kernel_size = kernel_size
        ctx.eps = eps

    def _backward(ctx, grad_avg, grad_max):
        feat, weight, avg = ctx.saved_tensors
        if grad_avg is None:
            grad_avg = torch.zeros_like(avg)
        if grad_max is None:
            grad_max = torch.zeros_like(weight)
        grad_feat, grad_weight = torch.ops.afb_urr.local_refine_backward(
            grad_avg, grad_max, feat, weight, avg, ctx.kernel_size, ctx.eps)
        return (grad_feat if ctx.needs_input_grad[0] else None,
                grad_weight if ctx.needs_input_grad[1] else None, None, None)

    torch.library.register_autograd("afb_urr::local_refine", _backward, setup_context=_setup_context)
    if hasattr(torch.ops.afb_urr, "local_refine_stream"):  # an extension built before it lacks it
        torch.library.register_fake("afb_urr::local_refine_stream")(_local_refine_fake)
        torch.library.register_autograd("afb_urr::local_refine_stream", _backward, setup_context=_setup_context)
