"""Outline pretraining of the light LAVT's trunk with the project's trainer.

The light referring model's held-out sentences turn on outlines ("the smallest
ellipse", "the polygon at the bottom"), and its window-attention trunk learns
outlines slowly from sentences. A config with an ``outline:`` section (beside
the ``referring:`` one that gives the LAVT's shape and data) trains, per pixel,
background or the outline kind of the object there (:mod:`afb_urr.data.outline`):
``net: teacher`` a small CNN, ``net: trunk`` the referring section's Swin trunk
without language (:meth:`LanguageAwareSwin.visual_maps`), with ``teacher``
distilled into it (:func:`.outline_nets.distill_loss`, weight ``distill_weight``).
:meth:`OutlineTrainer.export` of a trunk writes a LAVT in the ``lavt_one`` layout
(:func:`graft`) that a referring run starts from (``--init``).

The loop, optimiser, schedules, logs, exact resume and DDP are :class:`Trainer`'s.
log.csv: ``ce`` the weighted cross-entropy, ``uncertainty`` the distillation
term (0 without a teacher); val.csv: ``object_accuracy`` on held-out videos.
"""
from __future__ import annotations

import copy
import os
import shutil

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import CheckpointError
from ..config import Config
from ..data.outline import outline_frame, outline_split
from ..referring import LAVT, load_referring_model, save_referring_model
from ..referring.loading import read_checkpoint, vocab_file_for
from ..referring.prompt import input_hw
from . import distributed as D
from .batchnorm import set_train_mode
from .loop import Trainer
from .outline_data import OutlineBatches, outline_sample
from .outline_nets import OutlineTeacher, OutlineTrunk, distill_loss, object_hits
from .referring import build_lavt
from .referring_data import vocabulary
from .rng import SeededClips

VAL_BATCH = 50


def is_trunk_key(key: str) -> bool:
    """A LAVT state_dict key of the Swin trunk proper (patch embedding, position embedding,
    blocks, patch merging): what outline pretraining trains and :func:`graft` carries over."""
    return key.startswith(("backbone.patch_embed.", "backbone.absolute_pos_embed")) or \
        ".blocks." in key or ".downsample." in key


def graft(trunk: LAVT, base: LAVT | None = None, parts: str = "text") -> LAVT:
    """A LAVT with ``trunk``'s Swin trunk (:func:`is_trunk_key`), ``base``'s BERT
    (``parts="text"``) or everything else of ``base`` (``"all"``), the rest ``trunk``'s own
    (as built: outline pretraining leaves it untouched). Each stage's language gate starts
    closed (its last Linear zeroed; it learns from there), so the stages see the pretrained
    trunk's maps until the sentences open them."""
    out = copy.deepcopy(trunk)
    state = out.state_dict()
    if base is not None:
        theirs = base.state_dict()
        for k in state:
            if not is_trunk_key(k) and (parts == "all" or k.startswith("text_encoder.")):
                if theirs[k].shape != state[k].shape:
                    raise ValueError(f"graft: {k} is {tuple(theirs[k].shape)} in the base LAVT, "
                                     f"{tuple(state[k].shape)} in the trunk's")
                state[k] = theirs[k].to(state[k].dtype)
    out.load_state_dict(state)
    with torch.no_grad():
        for stage in out.backbone.layers:
            stage.res_gate[2].weight.zero_()
    return out


class OutlineTrainer(Trainer):
    """:class:`Trainer` for a config with ``outline`` and ``referring`` sections (module docstring)."""

    VAL_FIELDS = ("step", "epoch", "object_accuracy")

    def __init__(self, cfg: Config, *args, **kwargs):
        if cfg.outline is None or cfg.referring is None:
            raise ValueError("outline pretraining needs an 'outline' and a 'referring' section (the LAVT's shape)")
        self.oc, self.rc = cfg.outline, cfg.referring
        for name in ("teacher", "graft_from"):  # checked before training, not at its end
            path = getattr(self.oc, name)
            if self.oc.net == "trunk" and path and not os.path.isfile(path):
                raise FileNotFoundError(f"outline.{name} not found: {path}")
        self.CLIPS_PER_ITEM = self.rc.batch_size
        super().__init__(cfg, *args, **kwargs)

    def _data(self, train_set, val_videos) -> None:
        oc, rc = self.oc, self.rc
        self.tokenizer, self.vocab_path = vocabulary(rc, self.out_dir)
        if train_set is None:
            videos = outline_split("train", oc.num_videos, oc.num_frames, rc.video_size, rc.min_objects,
                                   rc.max_objects)
            train_set = OutlineBatches(videos, rc.batch_size, rc.input_size, self.tc.seed, oc.flip)
        self.train_set = SeededClips(train_set, self.tc.seed)
        if val_videos is None and self.dist.is_main and oc.val_videos:
            val_videos = self._val_batches()
        self.val_videos = val_videos or []
        self._sampler()

    def _val_batches(self) -> list[dict]:
        oc, rc = self.oc, self.rc
        videos = outline_split("val", oc.val_videos, oc.num_frames, rc.video_size, rc.min_objects, rc.max_objects,
                               cache_size=0)
        samples = [outline_sample(*outline_frame(videos[i], t, input_hw(rc.input_size))) for i in range(len(videos))
                   for t in range(oc.num_frames)]
        return [{k: torch.stack([s[k] for s in samples[i:i + VAL_BATCH]]) for k in samples[0]}
                for i in range(0, len(samples), VAL_BATCH)]

    def _network(self, weights: str | None, from_scratch: bool) -> None:
        if self.oc.net == "teacher":
            model = OutlineTeacher(self.oc.teacher_widths)
        else:
            model = OutlineTrunk(build_lavt(self.rc, self.tokenizer.vocab_size), self.oc.teacher_widths)
        if weights:
            load_outline_weights(model, weights)
        self.teacher = None
        if self.oc.net == "trunk" and self.oc.teacher and self.oc.distill_weight > 0:
            self.teacher = OutlineTeacher(self.oc.teacher_widths)
            load_outline_weights(self.teacher, self.oc.teacher)
            self.teacher.to(self.device).eval().requires_grad_(False)
        self.model = self.step_module = model.to(self.device)
        self._wrap()

    def clip_loss(self, sample: dict):
        """(loss, weighted cross-entropy, distillation term) of one batch."""
        image, label = (sample[k].to(self.device, non_blocking=True) for k in ("image", "label"))
        logits, maps = self.net(image)
        weight = torch.tensor([self.oc.background_weight, 1.0, 1.0, 1.0], device=logits.device)
        ce = F.cross_entropy(logits, label, weight=weight)
        if self.teacher is None:
            return ce, ce, torch.zeros((), device=ce.device)
        with torch.no_grad():
            targets = self.teacher.maps(image)
        kd = distill_loss(self.model.adapters, maps, targets)
        return ce + self.oc.distill_weight * kd, ce, kd

    def validate(self) -> dict | None:
        """Object accuracy on the held-out frames (rank 0; the others wait)."""
        scores = None
        if self.dist.is_main and self.val_videos:
            self.model.eval()
            right = total = 0
            with torch.no_grad():
                for batch in self.val_videos:
                    logits, _ = self.model(batch["image"].to(self.device))
                    r, n = object_hits(logits.cpu(), batch["label"], batch["instance"])
                    right, total = right + r, total + n
            set_train_mode(self.model, self.tc.batchnorm)
            scores = {"object_accuracy": right / max(total, 1), "objects": total}
            self.logs.val_row(self.step, self.epoch, {"object_accuracy": scores["object_accuracy"]})
            self.log(f"validation at step {self.step}: object accuracy {scores['object_accuracy']:.3f} "
                     f"({total} objects)")
        D.barrier(self.dist)
        return scores

    def export(self, path: str, half: bool = True) -> str | None:
        """A trunk: the grafted LAVT (:func:`graft`, fp32 whatever ``half``: it is a start for
        training) and the vocabulary beside it. A teacher has nothing to export."""
        if self.oc.net != "trunk":
            raise ValueError("--export writes a LAVT from a trained trunk; a teacher is used as "
                             "outline.teacher (its latest.pth) instead")
        if not self.dist.is_main:
            return
        base = None
        if self.oc.graft_from:
            base = load_referring_model(self.oc.graft_from)
            if base.text_encoder.config.vocab_size != self.tokenizer.vocab_size:
                raise CheckpointError(f"{self.oc.graft_from}: its BERT has {base.text_encoder.config.vocab_size} "
                                      f"word embeddings, the vocabulary {self.vocab_path} {self.tokenizer.vocab_size}")
        lavt = graft(self.model.lavt.cpu(), base, self.oc.graft)
        self.model.lavt.to(self.device)
        save_referring_model(path, lavt, step=self.step, vocab_digest=self.tokenizer.digest)
        vocab = vocab_file_for(path)
        if os.path.abspath(vocab) != os.path.abspath(self.vocab_path):
            shutil.copyfile(self.vocab_path, vocab)
        return f"a LAVT with this trunk (fp32; graft {self.oc.graft!r} of {self.oc.graft_from or 'nothing'})"


def load_outline_weights(model: nn.Module, path: str) -> None:
    """Load an outline checkpoint (this trainer's) into ``model`` strictly; one line on mismatch."""
    blob = read_checkpoint(path)
    state = blob.get("model", blob)
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: 'model' is not a state_dict of tensors")
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as e:
        first = str(e).splitlines()[0].strip()
        raise CheckpointError(f"{path} is not an outline {type(model).__name__} of this config: {first}") from None
