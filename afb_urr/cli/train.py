"""``afb-urr-train`` / ``python tools/train.py``: train AFB-URR from a config.

  python tools/train.py --config configs/train_synthetic.yaml
  python tools/train.py --config configs/train_davis17.yaml --init runs/stage0/latest.pth
  python tools/train.py --config configs/train_davis17.yaml --resume runs/davis17/latest.pth
  torchrun --nproc_per_node 4 tools/train.py --config configs/train_youtube_vos.yaml
  python tools/train.py --config configs/train_synthetic.yaml --evaluate CKPT --val-videos 32

One clip per step per process: frame 0 is memorised with its ground truth,
the other frames are segmented against it in one batch; loss = cross-entropy
+ 0.5 x uncertainty loss. Writes ``latest.pth`` (resumable, published
checkpoint format), ``epoch_NNNN.pth`` every ``train.save_every`` epochs,
``log.csv`` (step, epoch, loss, ce, uncertainty, lr, clips/s), ``val.csv``
(J&F on held-out videos) and TensorBoard events when tensorboard is
installed, all under ``train.output_dir``.

Under ``torchrun`` (several processes, one or more nodes) it trains with
DistributedDataParallel: NCCL on CUDA, gloo on CPU; rank 0 logs and writes
checkpoints.

A config with a ``referring:`` section (configs/train_referring_synthetic.yaml)
trains a LAVT referring model on synthetic expressions instead
(:mod:`afb_urr.training.referring`); --export then also writes the
vocabulary beside the weights, and --evaluate / --val-videos score held-out
expressions. One with an ``outline:`` section as well (configs/train_outline_*.yaml)
pretrains that LAVT's trunk on dense outline kinds, or the CNN teacher distilled
into it (:mod:`afb_urr.training.outline`); --export of a trunk writes a LAVT to
start a referring run from (--init).
"""
from __future__ import annotations

import argparse

from . import HelpFormatter, add_debug_option, add_precision_options, run_tool


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Train AFB-URR (semi-supervised video object segmentation) from a YAML config.",
        formatter_class=HelpFormatter)
    p.add_argument("--config", required=True, metavar="YAML",
                   help="training config (configs/train_*.yaml, or a bare name such as train_synthetic)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--resume", metavar="CKPT",
                       help="continue a run exactly (weights, optimiser, scheduler, RNG, step) from a "
                            "checkpoint this script wrote")
    start.add_argument("--init", metavar="CKPT",
                       help="start from these weights (any published-format checkpoint) with a fresh "
                            "optimiser, e.g. a stage-0 checkpoint for DAVIS fine-tuning")
    start.add_argument("--evaluate", metavar="CKPT",
                       help="do not train: score this checkpoint's J&F on the config's held-out "
                            "synthetic videos (val:) and exit")
    add_precision_options(p, "--evaluate: ")
    p.add_argument("--output-dir", metavar="DIR", help="override train.output_dir")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    p.add_argument("--time-limit", type=float, metavar="MIN",
                   help="stop after the step that crosses MIN minutes of training (a checkpoint is "
                        "written and validation runs)")
    p.add_argument("--max-steps", type=int, metavar="N", help="override train.max_steps")
    p.add_argument("--export", metavar="PTH",
                   help="at the end also write fp16 weights only (e.g. weights/demo_synthetic_resnet18.pth)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--no-validate", action="store_true", help="skip J&F validation")
    p.add_argument("--val-videos", type=int, metavar="N",
                   help="override val.videos (held-out videos scored; the first N of the val split)")
    p.add_argument("--seen-descriptions", action="store_true",
                   help="--evaluate of a referring checkpoint: also score the training descriptions on the "
                        "held-out videos (what the model learnt, on videos it never saw)")
    p.add_argument("--validate-first", action="store_true",
                   help="also measure J&F before the first step (the untrained score), into val.csv")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    add_debug_option(p)
    return p


def evaluate_checkpoint(cfg, vc, args) -> int:
    """``--evaluate``: J&F of a checkpoint on the held-out videos, overall and by
    number of objects per video (means of the per-video scores)."""
    import numpy as np

    from ..checkpoint import load_model
    from ..inference import resolve_device
    from ..training.validate import build_val_videos
    from ..training.validate import evaluate

    if vc.videos == 0:
        raise ValueError("--evaluate needs held-out videos: set val.videos in the config or pass "
                         "--val-videos N")
    device = resolve_device(args.device)
    model = load_model(args.evaluate, device)
    videos = build_val_videos(vc)
    inference = cfg.inference.replace(precision=args.precision, compile=args.compile or None)
    scores = evaluate(model, videos, inference, device, progress=not args.no_progress)
    print(f"{args.evaluate}: {scores}")
    print("| objects | videos | J | F |")
    print("|---|---|---|---|")
    for n in sorted(set(scores.num_objects)):
        jf = np.array([s for s, c in zip(scores.per_video, scores.num_objects) if c == n])
        print(f"| {n} | {len(jf)} | {jf[:, 0].mean():.3f} | {jf[:, 1].mean():.3f} |")
    return 0


def evaluate_referring(cfg, args) -> int:
    """``--evaluate`` of a referring checkpoint: IoU on the held-out expressions and videos."""
    from ..inference import resolve_device
    from ..referring import load_referring_model, load_tokenizer
    from ..referring.loading import vocab_file_for
    from ..training.referring import heldout_sets, referring_scores
    from ..training.referring_data import heldout_samples

    rc = cfg.referring
    if rc.val_videos == 0:
        raise ValueError("--evaluate needs held-out videos: set referring.val_videos or pass --val-videos N")
    device = resolve_device(args.device)
    model = load_referring_model(args.evaluate, device)
    tokenizer = load_tokenizer(rc.vocab or vocab_file_for(args.evaluate))
    sets = heldout_sets(rc)
    if args.seen_descriptions:
        sets["mIoU_seen"] = heldout_samples(rc, "train", part="train")
    for name, samples in sets.items():
        s = referring_scores(model, samples, tokenizer, device)
        print(f"{args.evaluate} {name}: mIoU {s['mIoU']:.3f} oIoU {s['oIoU']:.3f} P@0.5 {s['P@0.5']:.3f} "
              f"P@0.7 {s['P@0.7']:.3f} ({s['samples']} samples)")
        print(kind_table(samples, s["ious"], s["picked"]))
    return 0


def kind_table(samples: list[dict], ious: list[float], picked: list[bool]) -> str:
    """Markdown table per kind of description ("colour+shape", ...): mean IoU, and the share of
    samples whose mask covers the described object most (``picks_the_object``)."""
    import numpy as np
    by_kind: dict[str, list[tuple[float, bool]]] = {}
    for sample, iou, pick in zip(samples, ious, picked):
        by_kind.setdefault(sample["kind"], []).append((iou, bool(pick)))
    rows = [f"| {kind} | {len(v)} | {np.mean([i for i, _ in v]):.3f} | {np.mean([p for _, p in v]):.2f} |"
            for kind, v in sorted(by_kind.items())]
    return "\n".join(["| kind of description | samples | mIoU | right object |", "|---|---|---|---|"] + rows)


def _override(cfg, args) -> None:
    """The command line's overrides of the config's train / val / referring sections."""
    tc, vc, rc = cfg.train, cfg.val, cfg.referring
    if args.output_dir:
        tc.output_dir = args.output_dir
    if args.max_steps is not None:
        tc.max_steps = args.max_steps
    if args.val_videos is not None:
        if args.val_videos < 0:
            raise ValueError(f"--val-videos must be >= 0, got {args.val_videos}")
        vc.videos = args.val_videos
        if rc is not None:
            rc.val_videos = args.val_videos
        if cfg.outline is not None:
            cfg.outline.val_videos = args.val_videos
    if args.no_validate and not args.evaluate:
        vc.videos = 0
        if rc is not None:
            rc.val_videos = 0
        if cfg.outline is not None:
            cfg.outline.val_videos = 0


def run(args) -> int:
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    from ..config import load_config

    cfg = load_config(args.config)
    _override(cfg, args)
    if args.seen_descriptions and not (args.evaluate and cfg.referring):
        raise ValueError("--seen-descriptions scores a referring checkpoint: use it with --evaluate and a "
                         "config with a 'referring' section")
    if args.evaluate and cfg.outline is not None:
        raise ValueError("--evaluate scores referring and AFB-URR checkpoints; outline pretraining's "
                         "object accuracy is its validation (val.csv, --validate-first)")
    if args.evaluate:
        return evaluate_referring(cfg, args) if cfg.referring else evaluate_checkpoint(cfg, cfg.val, args)
    if cfg.outline is not None:
        from ..training.outline import OutlineTrainer as Trainer
    elif cfg.referring is not None:
        from ..training.referring import ReferringTrainer as Trainer
    else:
        from ..training.loop import Trainer
    trainer = Trainer(cfg, resume=args.resume, init=args.init, device=args.device,
                      time_limit=args.time_limit, progress=not args.no_progress)
    try:
        if args.validate_first:
            trainer.validate()
        trainer.fit()
        if args.export:
            what = trainer.export(args.export, half=True) or "fp16 weights"
            trainer.log(f"exported {what} to {args.export}")
    finally:
        trainer.close()
    return 0


def main(argv=None) -> int:
    return run_tool(build_parser(), run, argv)
