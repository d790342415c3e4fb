"""``afb-urr-bench`` / ``python tools/benchmark.py``: speed and memory of the Segmenter over
a long synthetic video.

  python tools/benchmark.py                       # CPU: 2000 frames, 240x432, resnet18
  python tools/benchmark.py --device cuda --backbone resnet50 --size 480x854
  python tools/benchmark.py --fill --budget 10000 --frames 50   # a bank held at 10k entries
  python tools/benchmark.py --device cuda --precision bf16 --compile --fill --budget 10000
  python tools/benchmark.py --compare-precision --weights weights/demo_synthetic_resnet18.pth

Frames are generated procedurally on the fly (afb_urr.inference.bench.ProceduralVideo),
so the video itself is never held in memory: what grows is the model's working
memory and the feature bank, which the budget bounds. At frames 100, 500, 1000,
2000 (those not past --frames, and the last frame) it prints one table row:
fps and step time (medians over the steps since the previous row), the memory
read-out's share of the step time, bank entries and bytes, resident memory and
its peak (VmRSS / VmHWM), and CUDA max allocated. When the run passes frame
500, a last line says whether the peak memory at the last row is within 10% of
the one at frame 500: CUDA max allocated on a GPU, peak RSS on the CPU.

A randomly initialised model merges nearly every new feature, so its bank stays
small and the read-out is never exercised. ``--fill`` turns merging off (and
evicts the fewest entries, so the bank stays at its budget), steps untimed
until the bank is full, and then times --frames frames at the full budget.
``--profile`` prints the top operators (torch.profiler) of a few more steps.
``--precision`` and ``--compile`` pick the Segmenter's compute precision and
compiled graphs; with ``--compile`` the first two frames (where the graphs are
compiled) are timed apart and reported.

``--compare-precision`` times nothing: it segments --videos held-out synthetic
videos (first frame given) in fp32 and in bf16 and fp16 and prints the share of
pixels whose label agrees with fp32 and the change of J (targets: >= 99.5%,
|dJ| <= 0.005); --check makes meeting them the exit status. A random model's
BatchNorm statistics are the identity, so its activations grow layer by layer
and its attention is nearly one-hot; ``--calibrate-batchnorm N`` measures them
on N training videos first, as a trained network has them (measured: labels
move further from fp32, not closer; README, "Benchmark").
"""
from __future__ import annotations

import argparse
import os

from . import HelpFormatter, add_debug_option, add_precision_options, run_tool

CHECKPOINTS = (100, 500, 1000, 2000, 5000, 10000)
REFERENCE_FRAME = 500
TOLERANCE = 0.10
CALIBRATION_FRAMES = 5  # frames of each --calibrate-batchnorm video
NO_MERGE = 2.0  # cosine similarity never exceeds 1: every feature is appended


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 240x432 (HxW), got {text!r}") from None
    if h < 16 or w < 16:
        raise argparse.ArgumentTypeError(f"size {text} is too small (at least 16x16)")
    return h, w


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Segmenter fps and peak memory over a long procedural video (2 objects).",
        formatter_class=HelpFormatter)
    p.add_argument("--backbone", default=None, choices=("resnet18", "resnet34", "resnet50", "resnet101"),
                   help="trunk of the randomly initialised model (default resnet18 on CPU, "
                        "resnet50 on CUDA); ignored with --weights")
    p.add_argument("--weights", metavar="CKPT", help="checkpoint to load instead of a random model")
    p.add_argument("--size", type=parse_size, metavar="HxW",
                   help="frame size (default 240x432; 120x216 with --compare-precision)")
    p.add_argument("--frames", type=int, help="video length (default 2000; 20 with --compare-precision)")
    p.add_argument("--objects", type=int, default=2, help="objects in the video")
    p.add_argument("--device", default=None, help="torch device (default: cpu)")
    p.add_argument("--config", default="long_video",
                   help="YAML config (path or name in configs/) for the feature bank settings")
    p.add_argument("--budget", type=int, help="feature-bank entries over all objects (config: 300000)")
    p.add_argument("--update-rate", type=float, help="feature-bank merge rate (config value otherwise)")
    p.add_argument("--merge-threshold", type=float,
                   help="cosine similarity above which new features merge (config: 0.95); a value "
                        "above 1 disables merging, so that a randomly initialised model (whose "
                        "features all merge) fills the bank and exercises eviction")
    p.add_argument("--fill", action="store_true",
                   help="fill the bank before timing: no merging, minimal eviction, untimed steps "
                        "until the bank reaches its budget; then --frames timed frames at that size")
    add_precision_options(p)
    p.add_argument("--no-fold-batchnorm", action="store_true",
                   help="run the model as given, without folding BatchNorm into the convolutions")
    p.add_argument("--compare-precision", action="store_true",
                   help="instead of timing: label agreement and J change of bf16 and fp16 against fp32 "
                        "over --videos held-out synthetic videos")
    p.add_argument("--videos", type=int, default=8, help="held-out videos of --compare-precision")
    p.add_argument("--floor", action="store_true",
                   help="with --compare-precision, a control row 'fp32-control': fp32 with the BatchNorm "
                        "folding toggled, a rounding-level change (~1e-6): how far rounding alone moves labels")
    p.add_argument("--calibrate-batchnorm", type=int, default=0, metavar="N",
                   help="random model only: set its BatchNorm statistics to averages over N training-split "
                        "synthetic videos (5 frames each) before use, as any trained network has them; "
                        "without it each layer's activations keep the scale random weights give them")
    p.add_argument("--profile", type=int, nargs="?", const=5, default=0, metavar="STEPS",
                   help="after the run, profile STEPS more steps (default 5) and print the top operators")
    p.add_argument("--loop", type=int, metavar="N",
                   help="render the first N frames once and replay them in a loop (long runs whose "
                        "frame rendering would cost more than the steps, e.g. --frames 10000 --check)")
    p.add_argument("--seed", type=int, default=0, help="seed of the video and the random model")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 when the peak-memory check fails (needs --frames above 500; "
                        "e.g. --frames 10000 for a long CUDA max-allocated check), or with "
                        "--compare-precision when a target is not met")
    add_debug_option(p)
    return p


def _factory(args):
    """precision -> a fresh Segmenter of --weights (loaded once), or of a random model of
    --backbone seeded by --seed, with the options' settings."""
    import torch

    from ..checkpoint import load_model
    from ..inference import build_segmenter, resolve_device
    from ..model import AFBURR
    device = resolve_device(args.device or "cpu")
    torch.manual_seed(args.seed)
    if args.weights is not None:
        if not os.path.isfile(args.weights):
            raise ValueError(f"checkpoint not found: {args.weights}")
        model = load_model(args.weights, device=device)
    else:
        model = AFBURR(args.backbone or ("resnet50" if device.type == "cuda" else "resnet18")).to(device).eval()
        if args.calibrate_batchnorm:
            _calibrate(model, args, device)
    overrides = dict(budget=args.budget, update_rate=args.update_rate, merge_threshold=args.merge_threshold,
                     compile=args.compile, fold_batchnorm=not args.no_fold_batchnorm)
    if args.fill:
        overrides.update(merge_threshold=NO_MERGE, eviction="minimal")
    return lambda precision: build_segmenter(model, args.config, device, precision=precision, **overrides)


def _calibrate(model, args, device) -> None:
    """--calibrate-batchnorm N: the random model's BatchNorm statistics averaged over both
    trunks' activations on the frames (and true masks) of N training-split videos."""
    import torch

    from ..data import SyntheticVideos
    from ..model.network import pad_to_multiple
    from ..training.batchnorm import calibrate
    videos = SyntheticVideos("train", args.calibrate_batchnorm, CALIBRATION_FRAMES, args.size or (120, 216),
                             1, 3, cache_size=0)

    def run(i):
        video = videos[i]
        for frame, labels in zip(video.frames, video.masks):
            x = torch.from_numpy(frame).to(device).permute(2, 0, 1)[None].float() / 255
            ids = torch.from_numpy(labels.astype("int64")).to(device)
            probs = torch.nn.functional.one_hot(ids, int(ids.max()) + 1).permute(2, 0, 1).float()
            model.memorize(x, probs)
            model.encoder_q(pad_to_multiple(x)[0])

    with torch.no_grad():
        calibrate(model, run, range(len(videos)))
    model.eval()


def _describe(seg, args) -> str:
    import torch
    device = seg.device
    return (f"device {device} ({torch.get_num_threads()} threads)"
            + (f" {torch.cuda.get_device_name(device)}" if device.type == "cuda" else "")
            + f" | backbone {seg.model.backbone} | {args.size[0]}x{args.size[1]} | {args.frames} frames"
            f" | {args.objects} objects | budget {seg.bank.budget} | update rate {seg.bank.update_rate}"
            f" | merge threshold {seg.bank.merge_threshold} | eviction {seg.bank.eviction}"
            f" | {seg.config.precision}" + (" | compiled" if seg.config.compile else "")
            + (" | BatchNorm folded" if seg.config.fold_batchnorm else "")
            + (f" | frames looped every {args.loop}" if args.loop else ""))


def run(args) -> int:
    import torch
    from tqdm import tqdm

    from ..inference import bench

    if args.calibrate_batchnorm and args.weights:
        raise ValueError("--calibrate-batchnorm is for the random model; --weights brings its own BatchNorm statistics")
    if args.calibrate_batchnorm < 0:
        raise ValueError(f"--calibrate-batchnorm needs N >= 0 videos, got {args.calibrate_batchnorm}")
    if args.compare_precision:
        return compare(args)
    args.frames = args.frames or 2000
    if args.frames < 2:
        raise ValueError(f"--frames must be at least 2, got {args.frames}")
    if args.check and args.frames <= REFERENCE_FRAME:
        raise ValueError(f"--check compares the last row with frame {REFERENCE_FRAME}: it needs "
                         f"--frames above {REFERENCE_FRAME}, got {args.frames}")
    args.size = args.size or (240, 432)
    seg = _factory(args)(args.precision)
    device, cuda = seg.device, seg.device.type == "cuda"
    video = bench.ProceduralVideo(*args.size, num_objects=args.objects, seed=args.seed)
    if args.loop:
        video = bench.LoopedVideo(video, args.loop)
    print(_describe(seg, args))
    start = 0
    if args.compile:
        first, second = bench.first_steps(seg, video)
        start = 2
        print(f"compile: first frame (memory encoder) {first:.1f} s, second frame (query encoder, "
              f"decoder) {second:.1f} s")
    if args.fill:
        with tqdm(unit="frame", desc="filling the bank", dynamic_ncols=True) as bar:
            start = bench.fill_bank(seg, video, seg.bank.budget, start=start, on_step=lambda t: bar.update(1))
        print(f"filled: {len(seg.bank)} entries ({bench.bank_bytes(seg.bank) / bench.MIB:.1f} MiB) "
              f"after {start} frames")
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    checkpoints = sorted({c for c in CHECKPOINTS if c < args.frames} | {args.frames})
    with tqdm(total=args.frames, unit="frame", desc="benchmark", dynamic_ncols=True) as bar:
        rows = bench.run_timed(seg, video, args.frames, checkpoints, start=start,
                               on_step=lambda n: bar.update(1),
                               on_row=lambda r: bar.set_postfix(fps=f"{r.fps:.2f}", bank=r.bank_entries))
    print(bench.format_header())
    for row in rows:
        print(bench.format_row(row))
    ok = report_check(rows, cuda)
    if args.profile:
        print(f"top operators over {args.profile} more steps:")
        print(bench.profile_steps(seg, video, start + args.frames, args.profile))
    return 1 if args.check and not ok else 0


def compare(args) -> int:
    """--compare-precision: bf16 and fp16 against fp32 on held-out synthetic videos."""
    from tqdm import tqdm

    from ..data import SyntheticVideos
    from ..inference.agreement import compare_precisions, format_agreements
    h, w = args.size or (120, 216)
    frames = args.frames or 20
    if frames < 2 or args.videos < 1:
        raise ValueError(f"--compare-precision needs --frames >= 2 and --videos >= 1, got {frames} and {args.videos}")
    videos = SyntheticVideos("val", args.videos, frames, (h, w), 1, 3, cache_size=0)
    make = _factory(args)
    precisions = ("bf16", "fp16")
    if args.floor:
        unfolded = _factory(argparse.Namespace(**{**vars(args), "no_fold_batchnorm": not args.no_fold_batchnorm}))
        folded = make
        make = lambda p: unfolded("fp32") if p == "fp32-control" else folded(p)  # noqa: E731
        precisions += ("fp32-control",)
    seg = make("fp32")
    print(f"precision agreement | device {seg.device} | backbone {seg.model.backbone} | "
          f"{args.videos} held-out synthetic videos of {frames} frames, {h}x{w}, 1-3 objects"
          + (f" | weights {args.weights}" if args.weights else " | random weights")
          + (f", BatchNorm calibrated on {args.calibrate_batchnorm} videos"
             if args.calibrate_batchnorm and not args.weights else ""))
    with tqdm(total=args.videos, unit="video", desc="compare", dynamic_ncols=True) as bar:
        rows = compare_precisions(make, ((v.frames, v.masks) for v in (videos[i] for i in range(args.videos))),
                                  precisions, on_video=lambda i: bar.update(1))
    print(format_agreements(rows))
    return 1 if args.check and not all(r.within_targets for r in rows) else 0


def report_check(rows, cuda: bool) -> bool:
    """When the run has a row at frame 500 and a later one, print whether the last row's peak
    is within TOLERANCE of frame 500's and return it; True when there is nothing to compare."""
    ref = next((r for r in rows if r.frame == REFERENCE_FRAME), None)
    last = rows[-1]
    if ref is None or last.frame <= REFERENCE_FRAME:
        return True
    key, what = ("cuda_max_mib", "CUDA max allocated") if cuda else ("peak_rss_mib", "peak RSS")
    growth = getattr(last, key) / getattr(ref, key) - 1.0
    ok = growth <= TOLERANCE
    print(f"{what} at frame {last.frame}: {getattr(last, key):.1f} MiB vs {getattr(ref, key):.1f} MiB at "
          f"frame {REFERENCE_FRAME} ({growth:+.1%}): {'within' if ok else 'NOT within'} {TOLERANCE:.0%}")
    return ok


def main(argv=None) -> int:
    return run_tool(build_parser(), run, argv)
