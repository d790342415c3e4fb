"""The infer command's model options (--weights, --config, --device, --budget, ...) and the
Segmenter they make, shared by its modes (video, demo, dataset)."""
from __future__ import annotations

import argparse

from . import add_precision_options

DEFAULT_CONFIG = "davis17"  # configs/davis17.yaml; with --dataset, the config named after the dataset


def add_model_options(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument("--weights", metavar="CKPT",
                   help="checkpoint (published format); for --demo default weights/demo_synthetic_resnet18.pth")
    m.add_argument("--config",
                   help="YAML config (path or name in configs/); its 'inference' section sets the "
                        f"feature bank; the options below override it (default: {DEFAULT_CONFIG}; "
                        "with --dataset, that dataset's config: davis17, youtube_vos, long_video)")
    m.add_argument("--device", default=None,
                   help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if available, else cpu)")
    m.add_argument("--budget", type=int,
                   help="feature-bank entries over all objects (config default 300000)")
    m.add_argument("--update-rate", type=float,
                   help="feature-bank merge rate (0.1 DAVIS, 0.05 YouTube-VOS / long videos)")
    m.add_argument("--eviction", choices=("threshold", "minimal"),
                   help="how a full bank makes room: minimal (drop only as many least-used entries "
                        "as needed; the default for --video and --videos) or threshold (the "
                        "published loop; the default of the dataset protocols' configs)")
    add_precision_options(m)


def build_segmenter_factory(args, weights: str, **overrides):
    """A callable making a fresh Segmenter per video from --config, --device, --budget,
    --update-rate, --precision, --compile (and ``overrides``: InferenceConfig fields); the weights are loaded on its
    first call, once."""
    from ..inference import segmenter_factory
    overrides = {"eviction": getattr(args, "eviction", None), **overrides}
    return segmenter_factory(weights, args.config or DEFAULT_CONFIG, args.device, budget=args.budget,
                             update_rate=args.update_rate, precision=args.precision,
                             compile=args.compile or None, **overrides)


def build_segmenter(args, weights: str, **overrides):
    """Load ``weights`` into a Segmenter configured by the arguments."""
    return build_segmenter_factory(args, weights, **overrides)()


def bank_budget(args) -> int:
    """The feature bank's entries for these arguments (--budget, else the config's), read
    without loading the weights."""
    if args.budget is not None:
        return args.budget
    from ..config import load_config
    return load_config(args.config or DEFAULT_CONFIG, sections=("model", "inference")).inference.budget
