"""YAML configs -> dataclasses: the one place configs are read, with an explicit schema.

A config file is a mapping of sections; :data:`SECTIONS` names every section
and the dataclass it becomes:

    model       ModelConfig      network shape (backbone)
    inference   InferenceConfig  per-video memory (feature bank) and read-out
    data        DataConfig       training dataset and clip sampling
    train       TrainConfig      optimisation, checkpoints, logging
    val         ValConfig        J&F validation on held-out synthetic videos
    referring   ReferringConfig  a referring (text -> mask) training run: LAVT shape, data, loss
    outline     OutlineConfig    outline pretraining of that LAVT's trunk (or of its CNN teacher)

A new section is one dataclass, one entry in ``SECTIONS`` and one field of
:class:`Config`. Unknown sections or keys are errors that name the offending
key, so a typo never silently falls back to a default. Each default lives
here once: the Segmenter and the FeatureBank take an :class:`InferenceConfig`.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Iterable

import yaml

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")

EVICTION_MODES = ("threshold", "minimal")
NEW_OBJECT_MODES = ("reset", "keep")
# Where user-facing entry points (tools/infer.py --video / --videos, VideoSession) depart from the
# published defaults, which the dataset protocols and their configs keep (README, Measurements).
USER_NEW_OBJECT = "keep"
USER_EVICTION = "minimal"
PRECISIONS = ("fp32", "bf16", "fp16")  # the Segmenter's compute precision
AMP_MODES = ("none", "bf16", "fp16")
LR_SCHEDULES = ("step", "cosine", "poly")
BN_MODES = ("frozen", "train", "track")  # see afb_urr.training.batchnorm
REFERRING_SAMPLINGS = ("object", "kind")  # see afb_urr.data.referring_samples


@dataclass
class ModelConfig:
    """Network shape: the ResNet trunk of both encoders."""
    backbone: str = "resnet50"


@dataclass
class InferenceConfig:
    """Per-video memory (Adaptive Feature Bank) and read-out settings."""
    budget: int = 300000             # bank entries over all objects (background included)
    update_rate: float = 0.1         # r in the merge: 0.1 DAVIS, 0.05 YouTube-VOS / long videos
    merge_threshold: float = 0.95    # cosine similarity above which a new feature merges
    readout_threshold: float = 1e-3  # attention weight above which a read counts for an entry
    chunk_bytes: int = 256 * 2**20   # most bytes of attention one memory read materialises
    eviction: str = "threshold"      # "threshold" (published LFU loop) or "minimal"
    new_object: str = "reset"        # "reset" (published) or "keep" earlier memory
    precision: str = "fp32"          # "fp32", "bf16" or "fp16": encoders/decoder under autocast, bank in that dtype
    compile: bool = False            # torch.compile the encoders and the decoder (static shapes per video)
    fold_batchnorm: bool = True      # run a copy of the model with frozen BatchNorm folded into the convs

    def replace(self, **overrides) -> "InferenceConfig":
        """A copy with the given fields changed; ``None`` values leave a field as it is."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class DataConfig:
    """A ``data:`` section: the training dataset (see :func:`afb_urr.data.build_dataset`).

    dataset: "synthetic", "davis", "youtube_vos" or "static".
    root: dataset folder (a list of folders for "static"); unused for "synthetic".
    split: "train" / "val" (DAVIS ImageSets list, YouTube-VOS split folder,
        synthetic split).
    repeat: visits of each video per epoch.
    clip: :class:`afb_urr.data.ClipConfig` fields overriding the dataset's published
        preset (e.g. clip_len, crop_size, ordered, max_gap, max_objects).
    synthetic: :class:`afb_urr.data.SyntheticClips` arguments (num_videos,
        num_frames, size, min_objects, max_objects, late_object_prob, cache_size).
    """
    dataset: str = "synthetic"
    root: Any = None
    split: str = "train"
    repeat: int = 1
    clip: dict = field(default_factory=dict)
    synthetic: dict = field(default_factory=dict)


@dataclass
class TrainConfig:
    """Optimisation, checkpointing and logging.

    Published settings: AdamW, batch of one clip, BatchNorm frozen, StepLR
    halving the learning rate every ``lr_step`` epochs. ``lr_schedule: cosine``
    instead follows half a cosine from ``lr`` at step 0 to 0 at the last step
    (``epochs`` x steps per epoch, or ``max_steps``), updated every step;
    ``poly`` follows ``lr (1 - step / total) ^ poly_power`` per step (LAVT's
    schedule, power 0.9); ``lr_milestones`` decays by ``lr_gamma`` at the given
    optimiser steps. ``no_decay``: parameters whose full name contains one of
    these strings (case-sensitive) get no weight decay (LAVT: norm,
    absolute_pos_embed, relative_position_bias_table).
    """
    lr: float = 1e-5                  # AdamW learning rate (1e-5 stage 0, 4e-6 fine-tuning)
    weight_decay: float = 0.01        # AdamW weight decay (torch default)
    epochs: int = 12                  # epochs to train
    lr_step: int = 3                  # StepLR: epochs between decays
    lr_gamma: float = 0.5             # StepLR: decay factor
    lr_schedule: str = "step"         # step (published: StepLR per epoch) | cosine (per step, to 0 at the last step)
    lr_milestones: list = field(default_factory=list)  # with step: decay by lr_gamma at these optimiser steps instead of every lr_step epochs
    poly_power: float = 0.9           # with poly: the exponent of (1 - step / total)
    no_decay: list = field(default_factory=list)  # name substrings of parameters trained without weight decay
    uncertainty_weight: float = 0.5   # loss = CE + w * uncertainty loss
    accumulate: int = 1               # clips per optimiser step (gradient accumulation)
    amp: str = "none"                 # autocast on CUDA: none | bf16 | fp16 (fp16 uses a GradScaler)
    clip_grad: float = 0.0            # max gradient norm; 0 = off (published: off)
    warmup_steps: int = 0             # linear learning-rate warm-up over the first N steps; 0 = off (published: off)
    batchnorm: str = "frozen"         # frozen (published) | train | track: see afb_urr.training.batchnorm
    pretrained: bool = True           # ImageNet trunks (torchvision) when not starting from --init/--resume
    same_trunk_init: bool = False     # from scratch: memory trunk starts as a copy of the query trunk (as ImageNet init gives)
    bn_init_clips: int = 0            # from scratch: BatchNorm statistics averaged over this many clips first
    decoder_init_std: float = 0.0     # from scratch: rescale decoder convs to unit output std, logits to this; 0 = off
    lr_scale: dict = field(default_factory=dict)  # {parameter-name prefix: lr multiplier}, e.g. {keyval_r4.Key: 0.1}
    max_steps: int = 0                # stop after this many optimiser steps; 0 = run all epochs
    seed: int = 0                     # seeds model init, data order and augmentation
    num_workers: int = 2              # DataLoader worker processes per rank
    output_dir: str = "runs/train"    # checkpoints, CSV log, TensorBoard events
    save_every: int = 1               # keep a numbered checkpoint every N epochs (latest always written)
    checkpoint_steps: int = 0         # also write the latest checkpoint every N steps; 0 = epoch ends only
    log_every: int = 10               # CSV/TensorBoard row every N optimiser steps
    bank_budget: int = 10_000_000     # bank entries during training (large: no eviction)

    def __post_init__(self):
        if self.amp not in AMP_MODES:
            raise ValueError(f"train.amp must be one of {AMP_MODES}, got {self.amp!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"train.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        for name in ("epochs", "lr_step", "accumulate", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        self.lr_scale = dict(self.lr_scale or {})
        for prefix, scale in self.lr_scale.items():
            if not isinstance(prefix, str) or not prefix:
                raise ValueError(f"train.lr_scale keys must be parameter-name prefixes, got {prefix!r}")
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale < 0:
                raise ValueError(f"train.lr_scale[{prefix!r}] must be a number >= 0, got {scale!r}")
        self.lr_milestones = list(self.lr_milestones or [])
        if any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in self.lr_milestones) \
                or self.lr_milestones != sorted(set(self.lr_milestones)):
            raise ValueError(f"train.lr_milestones must be increasing optimiser steps >= 1, got {self.lr_milestones}")
        if self.lr_milestones and self.lr_schedule != "step":
            raise ValueError("train.lr_milestones applies to lr_schedule: step only")
        self.no_decay = list(self.no_decay or [])
        if any(not isinstance(n, str) or not n for n in self.no_decay):
            raise ValueError(f"train.no_decay must be non-empty name substrings, got {self.no_decay}")
        if self.poly_power <= 0:
            raise ValueError(f"train.poly_power must be positive, got {self.poly_power}")
        if self.decoder_init_std < 0:
            raise ValueError(f"train.decoder_init_std must be >= 0, got {self.decoder_init_std}")
        if self.lr <= 0:
            raise ValueError(f"train.lr must be positive, got {self.lr}")
        if self.batchnorm not in BN_MODES:
            raise ValueError(f"train.batchnorm must be one of {BN_MODES}, got {self.batchnorm!r}")
        for name in ("max_steps", "checkpoint_steps", "bn_init_clips",
                     "num_workers", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class ValConfig:
    """J&F validation on held-out synthetic videos (the "val" split, whose seeds
    never meet the training split's), segmented as ``tools/infer.py`` does:
    first-frame truth, bank updates on (the ``inference`` section's settings).
    """
    videos: int = 0                   # held-out videos; 0 = no validation
    frames: int = 20                  # frames per video
    size: tuple = (120, 216)          # (H, W)
    min_objects: int = 1
    max_objects: int = 3
    every: int = 0                    # also validate every N epochs; 0 = at the end only

    def __post_init__(self):
        self.size = tuple(int(v) for v in self.size)
        if len(self.size) != 2 or min(self.size) < 16:
            raise ValueError(f"val.size must be (H, W) with both >= 16, got {self.size}")
        if self.videos < 0 or self.every < 0:
            raise ValueError("val.videos and val.every must be >= 0")
        if self.frames < 2:
            raise ValueError(f"val.frames must be >= 2, got {self.frames}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f"val: need 1 <= min_objects <= max_objects, got "
                             f"{self.min_objects}, {self.max_objects}")


@dataclass
class ReferringConfig:
    """A ``referring:`` section: the config is a referring (text -> mask) training run.

    The LAVT shape (``swin``: a size name or dict(embed_dim, depths, num_heads);
    ``window_size``; ``bert``: ``BertConfig`` fields but ``vocab_size``, which
    the vocabulary gives), the input the frames are squashed to (H, W), the
    loss (2-class cross-entropy with the published class weights 0.9 / 1.1, plus
    ``iou_weight`` x a soft-IoU term, none as published)
    and the synthetic expressions (:mod:`afb_urr.data.referring`): training
    videos of the "train" split with the training share of the descriptions;
    validation on "val" videos with the held-out share (``heldout_fraction``
    of the descriptions, never trained on), in the "train" wording and in the
    unseen "heldout" wording. Training draws ``batch_size`` samples per step.
    ``min_objects``..``max_objects`` objects per training video; the held-out
    videos have ``val_objects`` (default the same), so a run can train on
    crowded scenes and still be scored on the usual ones.
    """
    swin: Any = field(default_factory=lambda: {"embed_dim": 16, "depths": [1, 1, 2, 1],
                                               "num_heads": [1, 2, 4, 8]})
    window_size: int = 7
    bert: dict = field(default_factory=lambda: {"hidden_size": 64, "num_hidden_layers": 2,
                                                "num_attention_heads": 2, "intermediate_size": 128,
                                                "max_position_embeddings": 32, "type_vocab_size": 2})
    drop_path_rate: float = 0.0           # stochastic depth at the last Swin block (published 0.3)
    ape: bool = False                     # Swin's absolute position embedding (published: off)
    vocab: str = ""                       # vocab.txt; "" = the grammar's, written to <output_dir>/vocab.txt
    input_size: tuple = (64, 112)         # (H, W) the frames are squashed to (published 480 x 480)
    class_weights: tuple = (0.9, 1.1)     # cross-entropy weights of background, object (published)
    iou_weight: float = 0.0               # weight of a soft-IoU term added to the loss (published: none)
    batch_size: int = 8                   # samples per training step (published 32)
    num_videos: int = 500                 # training videos ("train" split)
    num_frames: int = 8                   # frames per video (any one of them is a sample)
    video_size: tuple = (120, 216)        # (H, W) the videos are rendered at
    min_objects: int = 1
    max_objects: int = 3
    val_objects: tuple = ()               # (min, max) objects of the held-out videos; () = min/max_objects
    heldout_fraction: float = 0.25        # share of the combinations kept out of training
    val_videos: int = 60                  # held-out videos ("val" split); 0 = no validation
    val_frames: int = 2                   # frames per held-out video scored
    cache_size: int = 500                 # rendered videos kept in memory (all: later epochs render nothing)
    sampling: str = "object"              # "object": per video and object; "kind": even over kinds of description
    contrast_share: float = 0.0           # share of samples whose colour/shape word changes the answer

    def __post_init__(self):
        for name in ("input_size", "video_size", "class_weights"):
            setattr(self, name, tuple(getattr(self, name)))
        if len(self.input_size) != 2 or min(int(v) for v in self.input_size) < 33:
            raise ValueError(f"referring.input_size must be (H, W) above 32 x 32, got {self.input_size}")
        if len(self.video_size) != 2 or min(self.video_size) < 16:
            raise ValueError(f"referring.video_size must be (H, W) with both >= 16, got {self.video_size}")
        if len(self.class_weights) != 2 or min(self.class_weights) <= 0:
            raise ValueError(f"referring.class_weights must be two positive numbers, got {self.class_weights}")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError(f"referring.heldout_fraction must be in (0, 1), got {self.heldout_fraction}")
        for name in ("batch_size", "num_videos", "num_frames", "val_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"referring.{name} must be >= 1, got {getattr(self, name)}")
        if self.val_videos < 0 or self.cache_size < 0:
            raise ValueError("referring.val_videos and referring.cache_size must be >= 0")
        if not 0.0 <= self.iou_weight <= 100.0:
            raise ValueError(f"referring.iou_weight must be in [0, 100], got {self.iou_weight}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f"referring: need 1 <= min_objects <= max_objects, got "
                             f"{self.min_objects}, {self.max_objects}")
        self.val_objects = tuple(int(v) for v in self.val_objects) or (self.min_objects, self.max_objects)
        if len(self.val_objects) != 2 or not 1 <= self.val_objects[0] <= self.val_objects[1]:
            raise ValueError(f"referring.val_objects must be [min, max] with 1 <= min <= max, got "
                             f"{list(self.val_objects)}")
        if "vocab_size" in self.bert:
            raise ValueError("referring.bert.vocab_size comes from the vocabulary; leave it out")
        if self.sampling not in REFERRING_SAMPLINGS:
            raise ValueError(f"referring.sampling must be one of {REFERRING_SAMPLINGS}, got {self.sampling!r}")
        if not 0.0 <= self.contrast_share <= 1.0:
            raise ValueError(f"referring.contrast_share must be in [0, 1], got {self.contrast_share}")


OUTLINE_NETS = ("teacher", "trunk")  # see afb_urr.training.outline
GRAFT_PARTS = ("text", "all")


@dataclass
class OutlineConfig:
    """An ``outline:`` section: outline pretraining (:mod:`afb_urr.training.outline`), per pixel
    background or the outline kind of the object there, of the ``referring`` section's Swin
    trunk (``net: trunk``, optionally distilled from a ``teacher`` checkpoint) or of a CNN
    ``teacher``. Frames: ``num_frames`` of ``num_videos`` "train" videos (the referring
    section's video size and objects, squashed to its input size), mirrored with probability
    ``flip``; validation: object accuracy on ``val_videos`` "val" videos. ``--export`` of a
    trunk writes a LAVT with it (:func:`afb_urr.training.outline.graft`): ``graft: text`` takes
    the BERT of ``graft_from`` (a referring checkpoint), ``all`` everything but the trunk; the
    rest is fresh."""
    net: str = "trunk"
    teacher_widths: tuple = (32, 64, 96, 128)
    teacher: str = ""                     # trunk: teacher checkpoint ("" = no distillation)
    distill_weight: float = 10.0          # trunk: loss = cross-entropy + w x distillation term
    background_weight: float = 0.5        # cross-entropy weight of background (kinds: 1)
    num_videos: int = 12000
    num_frames: int = 2
    flip: float = 0.5
    val_videos: int = 200
    graft_from: str = ""
    graft: str = "text"

    def __post_init__(self):
        self.teacher_widths = tuple(int(v) for v in self.teacher_widths)
        if self.net not in OUTLINE_NETS:
            raise ValueError(f"outline.net must be one of {OUTLINE_NETS}, got {self.net!r}")
        if self.graft not in GRAFT_PARTS:
            raise ValueError(f"outline.graft must be one of {GRAFT_PARTS}, got {self.graft!r}")
        if len(self.teacher_widths) != 4 or min(self.teacher_widths) < 1:
            raise ValueError(f"outline.teacher_widths must be 4 positive numbers, got {self.teacher_widths}")
        if self.num_videos < 1 or self.num_frames < 1 or self.val_videos < 0:
            raise ValueError("outline: num_videos and num_frames must be >= 1, val_videos >= 0")
        if self.distill_weight < 0 or self.background_weight <= 0 or not 0.0 <= self.flip <= 1.0:
            raise ValueError("outline: distill_weight must be >= 0, background_weight > 0, flip in [0, 1]")


# Section name -> dataclass: the whole schema.
SECTIONS: dict[str, type] = {"model": ModelConfig, "inference": InferenceConfig, "data": DataConfig,
                             "train": TrainConfig, "val": ValConfig, "referring": ReferringConfig,
                             "outline": OutlineConfig}


@dataclass
class Config:
    """A whole config file: one attribute per section of :data:`SECTIONS`."""
    model: ModelConfig = field(default_factory=ModelConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    val: ValConfig = field(default_factory=ValConfig)
    referring: ReferringConfig | None = None  # absent: not a referring run
    outline: OutlineConfig | None = None      # absent: not outline pretraining

    def as_dict(self) -> dict[str, dict]:
        """Every section present as plain data (for checkpoints and logs)."""
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS
                if getattr(self, name) is not None}


def build_section(cls: type, values: dict[str, Any] | None, where: str):
    """``cls(**values)`` with unknown keys named; ``where`` prefixes the error."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(known)}")
    return cls(**values)


def resolve_path(path: str) -> str:
    """Accept a path, or a bare name such as ``davis17`` found in ``configs/``."""
    if os.path.isfile(path):
        return path
    for candidate in (os.path.join(CONFIG_DIR, path), os.path.join(CONFIG_DIR, path + ".yaml")):
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"config not found: {path!r} (looked also in {CONFIG_DIR})")


def _read_yaml(path: str) -> dict:
    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: top level must be a mapping of sections")
    return raw


def load_config(path: str | None = None, sections: Iterable[str] | None = None) -> Config:
    """Read a YAML config into a :class:`Config`; ``None`` gives the defaults.

    ``sections``: the sections the caller understands (default: all of
    :data:`SECTIONS`). Only those are parsed and checked; the file's other
    known sections are skipped (so inference reads a training config), and
    sections outside the schema are always errors. Absent sections keep
    their defaults.
    """
    wanted = list(SECTIONS) if sections is None else list(sections)
    bad = sorted(set(wanted) - set(SECTIONS))
    if bad:
        raise ValueError(f"unknown section(s) {bad} asked for; valid: {sorted(SECTIONS)}")
    cfg = Config()
    if path is None:
        return cfg
    path = resolve_path(path)
    raw = _read_yaml(path)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {unknown}; valid: {sorted(SECTIONS)}")
    for name in wanted:
        if name in raw:
            setattr(cfg, name, build_section(SECTIONS[name], raw[name], f"{path}: section '{name}'"))
    return cfg
