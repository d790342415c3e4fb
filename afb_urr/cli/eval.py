"""``afb-urr-eval`` / ``python tools/eval.py``: score a results folder with DAVIS J&F.

DAVIS mode (default):
    python tools/eval.py --results output/davis17_val --davis data/DAVIS --set val

Long-video mode (sparse ground truth, layout ROOT/Annotations/<video>/*.png):
    python tools/eval.py --results output/long --davis data/LongVideo --long-video

Writes global_results-<set>.csv and per-sequence_results-<set>.csv (the
package's columns, 3 decimals) into --out (default: the results folder),
prints both tables and draws jf_summary-<set>.png (per-sequence J&F bars and
J&F over time for the worst sequences).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

from . import HelpFormatter, add_debug_option, run_tool

DESCRIPTION = "Score a results folder with DAVIS J&F (the numbers of the DAVIS 2017 package)."
EPILOG = """\
protocols:
  davis  Sequences from ROOT/ImageSets/2017/<set>.txt, ground truth
         ROOT/Annotations/<resolution>/<seq>/*.png. Every ground-truth frame
         but the first and the last is scored; the number of objects is the
         largest label of the first frame (void 255 counts as background);
         a result label above it is an error naming the file, an object the
         results never use scores as an empty mask. Numbers equal the DAVIS
         2017 package (semi-supervised task) to 1e-6.
  long   (--long-video / --mode long) Videos are the folders of
         ROOT/Annotations/ (or --sequences); ground truth exists on a sparse
         set of frames and only those are scored: every annotated frame but
         the first (the reference mask), the last one included. The decay
         bins are computed exactly (the package's uint8 bin edges wrap past
         255 scored frames; DAVIS mode reproduces that wrap).
results:
  RESULTS/<seq>/<frame>.png, palette or greyscale index PNGs of the ground
  truth's size, one per scored frame (other frames are ignored).
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=HelpFormatter)
    p.add_argument("--results", required=True, metavar="DIR",
                   help="results folder: DIR/<sequence>/<frame>.png")
    p.add_argument("--davis", required=True, metavar="ROOT",
                   help="dataset root (DAVIS-2017 layout, or the long-video layout with --long-video)")
    p.add_argument("--set", default="val", metavar="SET",
                   help="DAVIS set, ImageSets/2017/SET.txt (default: val); also names the CSV files")
    p.add_argument("--mode", choices=("davis", "long"), default="davis",
                   help="protocol: davis (default) or long (sparse ground truth, see below)")
    p.add_argument("--long-video", dest="mode", action="store_const", const="long",
                   help="same as --mode long")
    p.add_argument("--resolution", default="480p", help="DAVIS annotation folder (default: 480p)")
    p.add_argument("--sequences", nargs="+", metavar="SEQ",
                   help="score only these sequences (default: the whole set)")
    p.add_argument("--out", metavar="DIR", help="where the CSVs and the plot go (default: --results)")
    p.add_argument("--plot", metavar="PNG", help="plot path (default: OUT/jf_summary-SET.png)")
    p.add_argument("--no-plot", action="store_true", help="do not draw the plot")
    p.add_argument("--worst", type=int, default=4, metavar="K",
                   help="sequences drawn over time in the plot, lowest J&F first (default: 4)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="threads reading and scoring frames (default: CPUs, at most 8)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no per-sequence table")
    add_debug_option(p)
    return p


def run(args) -> int:
    from ..evaluation import evaluate_davis, evaluate_long_video, format_tables, plot_summary, write_csvs
    out_dir = args.out or args.results
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.mode == "long":
            result = evaluate_long_video(args.results, args.davis, sequences=args.sequences, subset=args.set,
                                         workers=args.workers, progress=not args.quiet)
        else:
            result = evaluate_davis(args.results, args.davis, subset=args.set, resolution=args.resolution,
                                    sequences=args.sequences, workers=args.workers, progress=not args.quiet)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    g_path, s_path = write_csvs(result, out_dir)
    text = format_tables(result)
    if args.quiet:
        text = text.split("\n\n")[0] + "\n"
    print(text, end="")
    print(f"Global results saved in {g_path}")
    print(f"Per-sequence results saved in {s_path}")
    if not args.no_plot:
        plot = args.plot or os.path.join(out_dir, f"jf_summary-{args.set}.png")
        plot_summary(result, plot, worst=args.worst)
        print(f"Plot saved in {plot}")
    print(f"Total time: {time.perf_counter() - start:.1f} s "
          f"({len(result.sequences())} sequences, {len(result.objects)} objects, mode {args.mode})")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_tool(build_parser(), run, argv)
