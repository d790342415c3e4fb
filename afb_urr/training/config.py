"""Training config sections (``train:``, ``data:``, ``val:``), registered with
:func:`afb_urr.config.register_section` so that :func:`afb_urr.config.load_config`
stays the one reader of config files.

Importing this module registers the sections; ``tools/train.py`` imports it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import Config, load_config, register_section
from ..data import DataConfig  # the ``data:`` section (datasets and clip sampling)
from .batchnorm import BN_MODES

AMP_MODES = ("none", "bf16", "fp16")
LR_SCHEDULES = ("step", "cosine")


@dataclass
class TrainConfig:
    """Optimisation, checkpointing and logging.

    Published settings: AdamW, batch of one clip, BatchNorm frozen, StepLR
    halving the learning rate every ``lr_step`` epochs. ``lr_schedule: cosine``
    instead follows half a cosine from ``lr`` at step 0 to 0 at the last step
    (``epochs`` x steps per epoch, or ``max_steps``), updated every step;
    ``lr_milestones`` decays by ``lr_gamma`` at the given optimiser steps.
    """
    lr: float = 1e-5                  # AdamW learning rate (1e-5 stage 0, 4e-6 fine-tuning)
    weight_decay: float = 0.01        # AdamW weight decay (torch default)
    epochs: int = 12                  # epochs to train
    lr_step: int = 3                  # StepLR: epochs between decays
    lr_gamma: float = 0.5             # StepLR: decay factor
    lr_schedule: str = "step"         # step (published: StepLR per epoch) | cosine (per step, to 0 at the last step)
    lr_milestones: list = field(default_factory=list)  # with step: decay by lr_gamma at these optimiser steps instead of every lr_step epochs
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


register_section("train", TrainConfig)
register_section("data", DataConfig)
register_section("val", ValConfig)


def train_sections(cfg: Config) -> tuple[TrainConfig, DataConfig, ValConfig]:
    """The ``train``, ``data`` and ``val`` sections of ``cfg`` (defaults when absent)."""
    return (cfg.extra.get("train", TrainConfig()), cfg.extra.get("data", DataConfig()),
            cfg.extra.get("val", ValConfig()))


def load_train_config(path: str) -> Config:
    """:func:`load_config` with the training sections registered."""
    return load_config(path)
