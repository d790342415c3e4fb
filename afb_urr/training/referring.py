"""Training a LAVT on synthetic referring expressions with the project's trainer.

A config with a ``referring:`` section trains a referring model: the loop,
optimiser groups and schedules (:mod:`.optim`; LAVT's poly schedule and its
no-weight-decay names), logs, exact resume and DDP are :class:`Trainer`'s; this
module swaps what is particular: the network (a LAVT of the section's shape,
from scratch or ``--init``), the step (one batch of images and expressions ->
2-class logits at the input size), the loss (class-weighted cross-entropy,
0.9 / 1.1 as published, plus ``referring.iou_weight`` x a soft-IoU term, not
published), checkpoints in the ``lavt_one`` layout (readable by
:func:`afb_urr.referring.load_referring_model`) and validation: mean and
overall IoU on held-out videos with held-out descriptions.

log.csv: ``loss`` (the soft-IoU term included), ``ce`` = the weighted
cross-entropy, ``uncertainty`` 0, ``clips_per_s`` = training images per second.
val.csv: ``mIoU`` / ``oIoU`` with the training wording, ``mIoU_wording`` with the
unseen "heldout" wording.
"""
from __future__ import annotations

import os
import shutil
from contextlib import nullcontext

import numpy as np
import torch
from torch import nn

from ..config import Config, ReferringConfig
from ..referring import LAVT, save_referring_model
from ..referring.backbone import SwinSpec
from ..referring.loading import merged_state_dict, model_from_state_dict, read_checkpoint, vocab_file_for
from ..checkpoint import CheckpointError
from .loss import referring_loss, soft_iou_loss
from .loop import Trainer
from .referring_data import encode_samples, heldout_samples, resize_mask, training_batches, vocabulary
from .rng import SeededClips, config_dict, rng_state
from .batchnorm import set_train_mode
from . import distributed as D

SCORE_SETS = {"mIoU": "train", "mIoU_wording": "heldout"}  # val.csv column -> wording of the held-out set


def build_lavt(rc: ReferringConfig, vocab_size: int) -> LAVT:
    """A fresh LAVT of the section's shape for a vocabulary of ``vocab_size`` tokens."""
    return LAVT(rc.swin, rc.window_size, dict(rc.bert, vocab_size=vocab_size), drop_path_rate=rc.drop_path_rate,
                input_size=rc.input_size, ape=rc.ape)


ARCH_FIELDS = ("swin", "window_size", "bert_config", "pwam_heads", "ape")  # what --init must match


def shape_differences(model: LAVT, rc: ReferringConfig, vocab_size: int) -> list[str]:
    """Where ``model`` (read for ``--init``) differs from the LAVT the config section
    describes, one "field file's-value vs config's-value" per :data:`ARCH_FIELDS` entry."""
    with torch.device("meta"):
        wanted = build_lavt(rc, vocab_size).config
    out = []
    for name in ARCH_FIELDS:
        a, b = (_arch_field(c, name) for c in (model.config, wanted))
        if isinstance(a, dict):
            out += [f"{name}.{k} {a.get(k)} vs {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(f"{name} {a} vs {b}")
    return out


def _arch_field(config: dict, name: str):
    """A LAVT config field in one comparable form: Swin as dict(embed_dim, depths, num_heads), lists as tuples."""
    if name == "swin":
        s = SwinSpec.resolve(config["swin"], config["window_size"])
        return {"embed_dim": s.embed_dim, "depths": s.depths, "num_heads": s.num_heads}
    value = config[name]
    return tuple(value) if isinstance(value, list) else value


class ReferringStep(nn.Module):
    """(image B x 3 x H x W, token_ids B x 20, attention_mask B x 20) -> logits B x 2 x H x W,
    as a module so DDP can wrap it."""

    def __init__(self, model: LAVT):
        super().__init__()
        self.model = model

    def forward(self, image, token_ids, attention_mask):
        return self.model(image, token_ids, attention_mask)


@torch.no_grad()
def referring_scores(model: LAVT, samples: list[dict], tokenizer, device, batch_size: int = 32) -> dict:
    """Published metrics at the network's input size over ``samples`` (dicts of image, mask,
    expression): mean IoU (a sample with an empty union counts 0), overall IoU, P@0.5, P@0.7,
    ``ious``, the per-sample IoUs in order, and ``picked``, per sample :func:`picks_the_object`
    (None for a sample without ``labels``, its frame's label map, and ``label``)."""
    size = tuple(model.config["input_size"])
    inter, union, picked = [], [], []
    for i in range(0, len(samples), batch_size):
        chunk = samples[i:i + batch_size]
        batch = encode_samples(chunk, tokenizer, size)
        logits = model(batch["image"].to(device), batch["token_ids"].to(device), batch["attention_mask"].to(device))
        pred = (logits[:, 1] > logits[:, 0]).cpu()
        truth = batch["mask"].bool()
        inter += (pred & truth).flatten(1).sum(1).tolist()
        union += (pred | truth).flatten(1).sum(1).tolist()
        picked += [picks_the_object(p, resize_mask(s["labels"], size), s["label"]) if "labels" in s else None
                   for p, s in zip(pred, chunk)]
    inter, union = np.array(inter, float), np.array(union, float)
    iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return {"mIoU": float(iou.mean()) if len(iou) else 0.0, "oIoU": float(inter.sum() / max(union.sum(), 1)),
            "P@0.5": float((iou >= 0.5).mean()) if len(iou) else 0.0,
            "P@0.7": float((iou >= 0.7).mean()) if len(iou) else 0.0, "samples": len(iou), "ious": iou.tolist(),
            "picked": picked}


def picks_the_object(pred: torch.Tensor, labels: torch.Tensor, label: int) -> bool:
    """Whether the mask pred (h x w bool) covers object ``label`` of the frame's label map
    (h x w) a larger share of its pixels than any other object: it chose the right object,
    however loosely it outlines it."""
    n = int(labels.max()) + 1
    if not 0 < label < n:
        return False
    area = torch.bincount(labels.flatten(), minlength=n)[1:].double()
    covered = torch.bincount(labels[pred], minlength=n)[1:].double()
    share = torch.where(area > 0, covered / area.clamp(min=1), -1.0)
    return bool(share[label - 1] > 0 and int(share.argmax()) == label - 1)


def heldout_sets(rc: ReferringConfig) -> dict[str, list[dict]]:
    """The held-out samples per val.csv column (:data:`SCORE_SETS`); empty without val videos."""
    return {name: heldout_samples(rc, style) for name, style in SCORE_SETS.items()} if rc.val_videos else {}


class ReferringTrainer(Trainer):
    """:class:`Trainer` for a config with a ``referring`` section (see the module docstring).

    ``train_set``: a dataset of batches (dicts of image, mask, token_ids,
    attention_mask), default :func:`training_batches`; ``val_videos``: held-out
    samples per val.csv column, default :func:`heldout_sets`.
    """

    VAL_FIELDS = ("step", "epoch", "mIoU", "oIoU", "mIoU_wording")

    def __init__(self, cfg: Config, *args, **kwargs):
        if cfg.referring is None:
            raise ValueError("a referring training run needs a 'referring' section in its config")
        self.rc = cfg.referring
        self.CLIPS_PER_ITEM = self.rc.batch_size
        super().__init__(cfg, *args, **kwargs)

    def _data(self, train_set, val_videos) -> None:
        self.tokenizer, self.vocab_path = vocabulary(self.rc, self.out_dir)
        if train_set is None:
            train_set = training_batches(self.rc, self.tokenizer, self.tc.seed)
        self.train_set = SeededClips(train_set, self.tc.seed)
        if val_videos is None and self.dist.is_main:
            val_videos = heldout_sets(self.rc)
        self.val_videos = val_videos or {}
        self._sampler()

    def _network(self, weights: str | None, from_scratch: bool) -> None:
        if weights:  # this config's stochastic depth, whatever the file trained with
            blob = read_checkpoint(weights)
            stated = dict(blob.get("config") or {}, drop_path_rate=self.rc.drop_path_rate)
            model = model_from_state_dict(merged_state_dict(blob, weights), stated, weights)
            if model.text_encoder.config.vocab_size != self.tokenizer.vocab_size:
                raise CheckpointError(f"{weights}: its BERT has {model.text_encoder.config.vocab_size} word "
                                      f"embeddings, the vocabulary {self.vocab_path} {self.tokenizer.vocab_size}")
            self._match_config(model, weights)
        else:
            model = build_lavt(self.rc, self.tokenizer.vocab_size)
        self.model = model.to(self.device)
        self.step_module = ReferringStep(self.model)
        self._wrap()

    def _match_config(self, model: LAVT, weights: str) -> None:
        """A file of another LAVT shape is an error; another input size becomes the config's."""
        differ = shape_differences(model, self.rc, self.tokenizer.vocab_size)
        if differ:
            raise CheckpointError(f"{weights}: its LAVT is not the config's referring section's: " + "; ".join(differ))
        if tuple(model.config["input_size"]) != tuple(self.rc.input_size):
            self.log(f"{weights}: trained at input {tuple(model.config['input_size'])}, continuing at "
                     f"{tuple(self.rc.input_size)} (the config's)"
                     + ("; absolute position embedding resized bicubically" if model.config["ape"] else ""))
            model.set_input_size(self.rc.input_size)

    def _read_resumable(self, path: str) -> dict:
        ckpt = read_checkpoint(path)
        for key in ("step", "batch", "scheduler", "optimizer"):
            if ckpt.get(key) is None:
                raise CheckpointError(f"{path} cannot be resumed: it has no {key!r} "
                                      "(not written by this trainer); use --init to start from it")
        return dict(ckpt, config=ckpt.get("run_config"))  # resume_warnings compares the run's config

    def clip_loss(self, sample: dict):
        """Loss of one batch: (loss, weighted cross-entropy, 0); the loss adds ``iou_weight`` x
        the soft-IoU term to the cross-entropy."""
        image, ids, att, mask = (sample[k].to(self.device, non_blocking=True)
                                 for k in ("image", "token_ids", "attention_mask", "mask"))
        dtype = self.autocast_dtype
        with nullcontext() if dtype is None else torch.autocast("cuda", dtype=dtype):
            logits = self.net(image, ids, att)
        ce = referring_loss(logits, mask, self.rc.class_weights)
        loss = ce + self.rc.iou_weight * soft_iou_loss(logits, mask) if self.rc.iou_weight else ce
        return loss, ce, torch.zeros((), device=loss.device)

    def validate(self) -> dict | None:
        """Held-out IoU (rank 0; the others wait): val.csv columns and the full scores."""
        scores = None
        if self.dist.is_main and self.val_videos:
            self.model.eval()
            scores = {name: referring_scores(self.model, samples, self.tokenizer, self.device)
                      for name, samples in self.val_videos.items()}
            set_train_mode(self.model, self.tc.batchnorm)
            main = scores.get("mIoU") or next(iter(scores.values()))
            row = {"mIoU": main["mIoU"], "oIoU": main["oIoU"],
                   "mIoU_wording": scores.get("mIoU_wording", {}).get("mIoU", float("nan"))}
            self.logs.val_row(self.step, self.epoch, row)
            self.log(f"validation at step {self.step}: " + "; ".join(
                f"{name}: mIoU {s['mIoU']:.3f} oIoU {s['oIoU']:.3f} P@0.5 {s['P@0.5']:.3f} ({s['samples']} samples)"
                for name, s in scores.items()))
        D.barrier(self.dist)
        return scores

    def save(self, path: str) -> None:
        """A resumable checkpoint in the lavt_one layout (rank 0 only)."""
        if not self.dist.is_main:
            return
        save_referring_model(path, self.model, epoch=self.epoch, optimizer=self.optimizer.state_dict(),
                             loss=self.last_loss, seed=self.tc.seed, step=self.step, batch=self.batch,
                             scheduler=self.scheduler.state_dict(),
                             scaler=self.scaler.state_dict() if self.scaler.is_enabled() else None,
                             rng=rng_state(), world_size=self.dist.world_size,
                             batches_per_epoch=self.batches_per_epoch, run_config=config_dict(self.cfg),
                             vocab_digest=self.tokenizer.digest)

    def export(self, path: str, half: bool = True) -> None:
        """fp16 weights in the lavt_one layout, and the vocabulary beside them (:func:`vocab_file_for`)."""
        if self.dist.is_main:
            save_referring_model(path, self.model, half=half, epoch=self.epoch, step=self.step,
                                 vocab_digest=self.tokenizer.digest)
            vocab = vocab_file_for(path)
            if os.path.abspath(vocab) != os.path.abspath(self.vocab_path):
                shutil.copyfile(self.vocab_path, vocab)
