"""``afb-urr-bench-urr`` / ``python tools/bench_urr.py``: speed of the fused uncertain-region refinement op against its PyTorch formulation.

  python tools/bench_urr.py                          # CPU, 480p and 1080p half-scale
  python tools/bench_urr.py --device cuda            # GPU, also GB/s and % of copy bandwidth
  python tools/bench_urr.py --device cuda --dtype float16 --sizes 1080p

For N objects (default 4) and C = 64 channels at half the frame size (480p:
4x64x240x432, 1080p: 4x64x540x960) it times ``afb_urr.ops.local_refine`` on the
compiled kernel and on the plain PyTorch formulation (``local_refine_reference``:
five passes, three full-size temporaries), forward alone and forward + backward,
and prints one table row per case: medians in ms (the two implementations are timed
alternately, so that both see the same load on a shared machine), the speedup, and on CUDA the
achieved bandwidth over the bytes that must move (forward: read feat and weight,
write average and max; backward: read grad_avg, feat, average, grad_max and
weight, write grad_feat and grad_weight) with its share of the device's measured
copy bandwidth (a same-size tensor copy). The last column is the largest
difference between the two implementations relative to the largest output.
Targets: CPU fused >= 3x faster; CUDA >= 4x faster and >= 50% of copy bandwidth.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from tqdm import tqdm

from .. import ops
from . import HelpFormatter, add_debug_option, run_tool

SIZES = {"480p": (240, 432), "1080p": (540, 960)}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "float64": torch.float64}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _median_seconds(fn, device: torch.device, repeats: int, warmup: int) -> float:
    """Median wall time of fn() over `repeats` runs after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    return statistics.median(_seconds(fn, device) for _ in range(repeats))


def _paired_medians(fn_a, fn_b, device: torch.device, repeats: int, warmup: int) -> tuple[float, float]:
    """Median wall times of fn_a() and fn_b(), timed alternately so that both see the same
    machine load (this matters on a shared machine)."""
    for _ in range(warmup):
        fn_a()
        fn_b()
    times_a, times_b = [], []
    for _ in range(repeats):
        times_a.append(_seconds(fn_a, device))
        times_b.append(_seconds(fn_b, device))
    return statistics.median(times_a), statistics.median(times_b)


def copy_bandwidth(numel: int, dtype: torch.dtype, device: torch.device, repeats: int) -> float:
    """Bytes per second of dst.copy_(src) for a numel-element tensor (read + write counted)."""
    src = torch.rand(numel, device=device).to(dtype)
    dst = torch.empty_like(src)
    seconds = _median_seconds(lambda: dst.copy_(src), device, max(repeats, 5), 2)
    return 2 * numel * src.element_size() / seconds


def run_case(n: int, c: int, h: int, w: int, mode: str, args, device: torch.device, dtype: torch.dtype,
             generator: torch.Generator) -> dict:
    """Times one (shape, mode) case on both implementations; returns the row's numbers."""
    feat = torch.randn(n, c, h, w, generator=generator).to(device=device, dtype=dtype)
    weight = torch.rand(n, 1, h, w, generator=generator).to(device=device, dtype=dtype)
    backward = mode == "fwd+bwd"
    if backward:
        feat.requires_grad_(True)
        weight.requires_grad_(True)
        grad_avg = torch.randn(n, c, h, w, generator=generator).to(device=device, dtype=dtype)
        grad_max = torch.randn(n, 1, h, w, generator=generator).to(device=device, dtype=dtype)

    def step():
        avg, local_max = ops.local_refine(feat, weight, args.kernel_size, 1e-8)
        if backward:
            torch.autograd.backward([avg, local_max], [grad_avg, grad_max])
            feat.grad = None
            weight.grad = None
        return avg, local_max

    def reference_step():
        with ops.use_backend("torch"):
            return step()

    with torch.no_grad() if not backward else torch.enable_grad():
        ref_avg, ref_max = (t.detach() for t in reference_step())
        fused_avg, fused_max = (t.detach() for t in step())
        t_ref, t_fused = _paired_medians(reference_step, step, device, args.repeats, args.warmup)
    scale = max(ref_avg.abs().max().item(), 1e-30)
    err = max((fused_avg.double() - ref_avg.double()).abs().max().item() / scale,
              (fused_max.double() - ref_max.double()).abs().max().item())
    full, single = n * c * h * w, n * h * w
    moved = 2 * (full + single)
    if backward:
        moved += 4 * full + 3 * single
    return {"shape": f"{n}x{c}x{h}x{w}", "mode": mode, "t_ref": t_ref, "t_fused": t_fused,
            "bytes": moved * torch.tensor([], dtype=dtype).element_size(), "err": err, "numel": full}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--sizes", nargs="+", default=["480p", "1080p"], choices=sorted(SIZES),
                        help="frame sizes; the op runs at half of each (default: 480p 1080p)")
    parser.add_argument("--objects", type=int, default=4, help="N, objects per frame (default: 4)")
    parser.add_argument("--channels", type=int, default=64, help="C, channels of r1 (default: 64)")
    parser.add_argument("--kernel-size", type=int, default=7, help="odd window size (default: 7)")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="(default: float32)")
    parser.add_argument("--modes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"],
                        help="what to time (default: both)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per case, the median is reported (default: 5 on CPU, 20 on CUDA)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before timing (default: 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the inputs (default: 0)")
    add_debug_option(parser)
    return parser


def run(args) -> int:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.repeats is None:
        args.repeats = 20 if device.type == "cuda" else 5
    if args.kernel_size < 1 or args.kernel_size % 2 == 0:
        raise ValueError(f"--kernel-size must be a positive odd number, got {args.kernel_size}")
    fused = ops.backend(device)
    if fused == "torch":
        raise RuntimeError(f"afb_urr.ops.backend({device.type!r}) is 'torch': the compiled kernel for this "
                           "device is not available (build it with `pip install --no-build-isolation -e .`)")
    dtype = DTYPES[args.dtype]
    generator = torch.Generator().manual_seed(args.seed)
    cases = [(size, mode) for size in args.sizes for mode in args.modes]
    rows = []
    for size, mode in tqdm(cases, desc="bench_urr", unit="case"):
        h, w = SIZES[size]
        rows.append(run_case(args.objects, args.channels, h, w, mode, args, device, dtype, generator))
    print_table(rows, args, device, dtype, fused)
    return 0


def print_table(rows, args, device: torch.device, dtype: torch.dtype, fused: str) -> None:
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"cpu, {torch.get_num_threads()} threads")
    if fused == "cuda":  # which CUDA forward kernel (AFB_URR_CUDA_KERNEL=tile|stream)
        fused = f"cuda ({ops.cuda_kernel()} forward kernel)"
    print(f"\nlocal_refine, kernel {args.kernel_size}, {args.dtype}, {where}, fused backend: {fused}, "
          f"medians of {args.repeats} runs")
    copy_bw = None
    if device.type == "cuda":
        copy_bw = copy_bandwidth(max(r["numel"] for r in rows), dtype, device, args.repeats)
        print(f"device copy bandwidth: {copy_bw / 1e9:.0f} GB/s")
    header = (f"{'shape':<16} {'pass':<8} {'torch ms':>10} {'fused ms':>10} {'speedup':>8} "
              f"{'fused GB/s':>11} {'% copy':>7} {'max rel diff':>13}")
    print(header)
    print("-" * len(header))
    for r in rows:
        gbs = r["bytes"] / r["t_fused"]
        bw = f"{gbs / 1e9:11.0f}" if copy_bw else f"{'-':>11}"
        share = f"{100 * gbs / copy_bw:6.0f}%" if copy_bw else f"{'-':>7}"
        print(f"{r['shape']:<16} {r['mode']:<8} {_ms(r['t_ref'])} {_ms(r['t_fused'])} "
              f"{r['t_ref'] / r['t_fused']:7.1f}x {bw} {share} {r['err']:13.1e}")


def main(argv=None) -> int:
    return run_tool(build_parser(), run, argv)


def _ms(seconds: float) -> str:
    """A median in ms, 10 wide: three decimals below 10 ms (GPU kernels take a fraction of one)."""
    ms = 1e3 * seconds
    return f"{ms:10.3f}" if ms < 10 else f"{ms:10.1f}"
