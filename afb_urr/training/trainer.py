"""The training loop: one clip per step, as published.

Step: memorise frame 0 with its ground-truth one-hot masks into a fresh
feature bank (no bank updates during training), segment frames 1..T-1 in one
batch against it, loss = cross-entropy + 0.5 x uncertainty loss. AdamW,
StepLR per epoch, BatchNorm frozen (``train.batchnorm``; see
:mod:`afb_urr.training.batchnorm`), optional autocast on CUDA, gradient
accumulation, DistributedDataParallel under ``torchrun``.

Checkpoints are published-format dicts (``epoch``, ``model``, ``optimizer``,
``loss``, ``seed``) plus what an exact resume needs (``step``, ``batch``,
``scheduler``, ``scaler``, ``rng``, ``world_size``, ``config``).
"""
from __future__ import annotations

import csv
import dataclasses
import math
import os
import random
import sys
import time
from contextlib import nullcontext

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..bank import FeatureBank
from ..checkpoint import CheckpointError, infer_backbone, read_state_dict, save_checkpoint
from ..config import Config
from ..model import AFBURR
from . import distributed as D
from .batchnorm import calibrate, set_train_mode, stop_tracking, tracking_without_grad
from .config import TrainConfig, ValConfig, train_sections
from .loss import vos_loss
from .validate import Scores, evaluate

# Train settings that may change on resume without changing the optimisation.
_RESUME_FREE = {"output_dir", "max_steps", "epochs", "num_workers", "checkpoint_steps", "log_every",
                "save_every"}
CSV_FIELDS = ("step", "epoch", "loss", "ce", "uncertainty", "lr", "clips_per_s")
VAL_FIELDS = ("step", "epoch", "J", "F", "JF")


# ---------------------------------------------------------------- model setup
class ClipStep(nn.Module):
    """The published training forward of one clip, as a module so DDP can wrap it.

    forward(frames T x 3 x H x W in [0,1], masks T x K x H x W one-hot) ->
    (logits, s), each (T-1) x K x H x W: frame 0 memorised with its truth,
    frames 1..T-1 segmented in one batch against a bank holding only frame 0.
    """

    def __init__(self, model: AFBURR, budget: int = 10_000_000):
        super().__init__()
        self.model = model
        self.budget = budget

    def forward(self, frames: torch.Tensor, masks: torch.Tensor):
        keys, values = self.model.memorize(frames[:1], masks[0])
        bank = FeatureBank(masks.shape[1], budget=self.budget)
        bank.init(keys, values, 0)
        return self.model.segment(frames[1:], bank, count_readout=False, return_probs=True)


def check_clip(sample: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a dataset sample; returns (frames T x 3 x H x W, masks T x K x H x W),
    K = num_objects + 1."""
    for key in ("frames", "masks", "num_objects"):
        if key not in sample:
            raise KeyError(f"training sample lacks {key!r} (has {sorted(sample)})")
    frames, masks = sample["frames"], sample["masks"]
    n = int(sample["num_objects"])
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"sample frames must be T x 3 x H x W, got {tuple(frames.shape)}")
    if masks.dim() != 4 or masks.shape[0] != frames.shape[0] or masks.shape[2:] != frames.shape[2:]:
        raise ValueError(f"sample masks must be T x K x H x W matching frames {tuple(frames.shape)}, "
                         f"got {tuple(masks.shape)}")
    if frames.shape[0] < 2:
        raise ValueError(f"a training clip needs >= 2 frames, got {frames.shape[0]}")
    if not 1 <= n < masks.shape[1]:
        raise ValueError(f"num_objects {n} does not fit masks with K = {masks.shape[1]} channels")
    return frames.float(), masks[:, :n + 1].float()


def _take_first(batch):
    """DataLoader collate for a batch of one clip: the sample itself."""
    return batch[0]


class SeededClips(Dataset):
    """Makes a dataset's random augmentation a function of (seed, epoch, index).

    Each ``__getitem__`` seeds Python's, NumPy's and torch's global generators
    from (seed, epoch, index) and restores them afterwards, so clips do not
    depend on worker count or on where a run was resumed. ``set_epoch`` is
    passed on to the dataset when it has one (``afb_urr.data`` datasets seed
    their own generator from (seed, epoch, index)).
    """

    def __init__(self, inner: Dataset, seed: int = 0):
        self.inner = inner
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int):
        s = (self.seed * 1_000_003 + (self.epoch + 7) * 999_983 + index * 7919) % (2**32)
        states = random.getstate(), np.random.get_state(), torch.get_rng_state()
        try:
            random.seed(s)
            np.random.seed(s)
            torch.manual_seed(s)
            return self.inner[index]
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])


# ---------------------------------------------------------------- RNG state
def rng_state() -> dict:
    """Every global generator's state, as tensors and plain values (weights_only-loadable)."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                       int(np_state[2]), int(np_state[3]), float(np_state[4]))}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------- from-scratch init
@torch.no_grad()
def normalise_decoder(step: ClipStep, sample: dict, device, output_std: float = 1.0) -> list[float]:
    """Data-dependent init of the decoder (LSUV-like) for a network trained from scratch.

    One forward pass over ``sample``: each decoder conv, in the order it runs,
    has its weight and bias divided by the std of its output, so that every
    conv outputs unit std; the two output convs (``pred2``, ``local_pred2``)
    are scaled to ``output_std`` instead. Without it the Kaiming-initialised
    decoder of an untrained network has activations with a std in the tens and
    logits in the hundreds: probabilities saturate, the clamped logits pass no
    gradient, and the first optimiser steps can kill the network for good.
    Returns the scale applied to each conv, in execution order.
    """
    dec = step.model.decoder
    last = {id(dec.pred2), id(dec.local_pred2)}
    scales: list[float] = []
    done: set[int] = set()

    def hook(mod, inp, out):
        if id(mod) in done:
            return None
        done.add(id(mod))
        target = output_std if id(mod) in last else 1.0
        scale = target / max(out.float().std().item(), 1e-12)
        mod.weight.mul_(scale)
        if mod.bias is not None:
            mod.bias.mul_(scale)
        scales.append(scale)
        return out * scale  # later layers see the rescaled output in this same pass

    convs = [m for m in dec.modules() if isinstance(m, nn.Conv2d)]
    handles = [m.register_forward_hook(hook) for m in convs]
    try:
        frames, masks = check_clip(sample)
        with tracking_without_grad():  # "track" BatchNorm: statistics of this clip first
            step(frames.to(device), masks.to(device))
    finally:
        for h in handles:
            h.remove()
    if len(done) != len(convs):
        raise RuntimeError(f"decoder init: {len(convs) - len(done)} decoder convs did not run")
    return scales


@torch.no_grad()
def copy_query_trunk(model: AFBURR) -> int:
    """Give the memory encoder's trunk (stem, res2..res4) the query encoder's weights.

    ImageNet initialisation starts both trunks from the same weights, so that
    memory and query keys of the same content match from the first step. Two
    independent random trunks give unrelated keys that the network must first
    learn to align; starting from one random trunk copied into both keeps the
    published starting point's symmetry when training from scratch. The mask
    convs (``conv1_m``, ``conv1_o``) keep their own random init. Returns the
    number of tensors copied.
    """
    src = model.encoder_q.state_dict()
    missing, unexpected = model.encoder_m.load_state_dict(src, strict=False)
    if unexpected or set(missing) != {"conv1_m.weight", "conv1_o.weight"}:
        raise RuntimeError(f"memory and query trunks differ beyond the mask convs: missing {missing}, "
                           f"unexpected {unexpected}")
    return len(src)


def param_groups(model: nn.Module, lr: float, lr_scale: dict) -> list[dict]:
    """Optimiser parameter groups: ``lr * scale`` for the parameters whose names start
    with a prefix of ``lr_scale`` (the longest matching prefix wins), ``lr`` for the
    rest. A prefix that matches no parameter is an error (a typo would silently
    train at the full rate)."""
    prefixes = sorted(lr_scale, key=len, reverse=True)
    groups: dict = {}
    used = set()
    for name, p in model.named_parameters():
        hit = next((q for q in prefixes if name == q or name.startswith(q + ".")), None)
        if hit is not None:
            used.add(hit)
        groups.setdefault(hit, []).append(p)
    unused = set(lr_scale) - used
    if unused:
        raise ValueError(f"train.lr_scale: no parameter name starts with {sorted(unused)} "
                         "(names look like keyval_r4.Key.weight, encoder_q.res4.0.conv1.weight)")
    return [{"params": ps, "lr": lr * (1.0 if q is None else float(lr_scale[q])),
             "name": q or "default"} for q, ps in groups.items()]


def cosine_factor(step: int, total: int) -> float:
    """Learning-rate factor of ``lr_schedule: cosine`` after ``step`` of ``total``
    optimiser steps: 0.5 (1 + cos(pi step / total)), 1 at step 0 and 0 at the end."""
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


def make_scheduler(optimizer, tc: TrainConfig, total_steps: int):
    """The learning-rate scheduler of ``tc`` -> (scheduler, stepped after every optimiser
    step (True) or at epoch ends (False)): StepLR per epoch (published), MultiStepLR at
    ``lr_milestones`` steps, or a cosine over ``total_steps``."""
    if tc.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_factor(s, total_steps)), True
    if tc.lr_milestones:
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, tc.lr_milestones, tc.lr_gamma), True
    return torch.optim.lr_scheduler.StepLR(optimizer, tc.lr_step, tc.lr_gamma), False


def load_weights(model: AFBURR, path: str) -> None:
    """Load a checkpoint's weights (any published-format file) into ``model``, strictly."""
    state, _ = read_state_dict(path)
    backbone = infer_backbone(state)
    if backbone != model.backbone:
        raise CheckpointError(f"{path} holds a {backbone} network but the config asks for "
                              f"{model.backbone} (model.backbone)")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: {e}") from None


def build_val_videos(vc: ValConfig) -> list:
    """The held-out synthetic videos of a ``val`` section: [(frames T x H x W x 3 uint8,
    labels T x H x W uint8)]."""
    if vc.videos == 0:
        return []
    from ..data import SyntheticVideos
    split = SyntheticVideos("val", vc.videos, vc.frames, vc.size, vc.min_objects, vc.max_objects,
                            cache_size=0)
    return [(v.frames, v.masks) for v in (split[i] for i in range(vc.videos))]


def _config_dict(cfg: Config) -> dict:
    out = {"model": dataclasses.asdict(cfg.model), "inference": dataclasses.asdict(cfg.inference)}
    for name, sec in cfg.extra.items():
        out[name] = dataclasses.asdict(sec) if dataclasses.is_dataclass(sec) else sec
    return out


# -------------------------------------------------------------------- trainer
class Trainer:
    """Trains an :class:`AFBURR` from a config.

    Args:
        cfg: a :class:`Config` with ``train``, ``data`` and ``val`` sections.
        train_set: the training dataset (samples: dict with ``frames``
            T x 3 x H x W in [0,1], ``masks`` T x K x H x W one-hot,
            ``num_objects``); default: built from ``cfg.data``.
        val_videos: list of (frames, labels) for J&F validation; default: built
            from ``cfg.val`` (held-out synthetic videos when ``val.videos`` > 0).
        resume: a checkpoint written by this trainer: continue exactly where it stopped.
        init: a checkpoint whose weights start the training (fresh optimiser).
        device: "cpu" / "cuda" / None (CUDA when available).
        time_limit: minutes; stop (with a checkpoint) after the step that crosses it.
        progress: show a tqdm bar (rank 0).
        on_step: optional callback ``f(trainer, step)`` after every optimiser step (all ranks).
    """

    def __init__(self, cfg: Config, train_set: Dataset | None = None, val_videos=None,
                 resume: str | None = None, init: str | None = None, device: str | None = None,
                 time_limit: float | None = None, progress: bool = True, on_step=None):
        if resume and init:
            raise ValueError("give either resume or init, not both")
        self.cfg = cfg
        self.tc, self.dc, self.vc = train_sections(cfg)
        self.tc: TrainConfig
        self.vc: ValConfig
        self.dist = D.setup(device)
        self.device = self.dist.device
        self.time_limit = time_limit
        self.progress = progress and self.dist.is_main
        self.on_step = on_step
        self.out_dir = self.tc.output_dir
        self.autocast_dtype = None
        if self.tc.amp != "none":
            if self.device.type == "cuda":
                self.autocast_dtype = torch.bfloat16 if self.tc.amp == "bf16" else torch.float16
            else:
                self.log(f"train.amp={self.tc.amp} applies on CUDA only; training in fp32 on "
                         f"{self.device.type}")
        seed_everything(self.tc.seed)

        if train_set is None:
            from ..data import build_dataset
            train_set = build_dataset(self.dc, self.tc.seed)
        self.train_set = SeededClips(train_set, self.tc.seed)
        if val_videos is None and self.dist.is_main:
            val_videos = build_val_videos(self.vc)
        self.val_videos = val_videos or []
        self.sampler = D.ResumableSampler(len(self.train_set), self.dist.rank, self.dist.world_size,
                                          seed=self.tc.seed)
        self.batches_per_epoch = len(self.sampler)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / self.tc.accumulate)

        ckpt = None
        if resume:
            _, ckpt = read_state_dict(resume)
            for key in ("step", "batch", "scheduler", "optimizer"):
                if ckpt.get(key) is None:
                    raise CheckpointError(f"{resume} cannot be resumed: it has no {key!r} "
                                          "(not written by this trainer); use --init to start from it")
            self.model = AFBURR(cfg.model.backbone)
            load_weights(self.model, resume)
        elif init:
            self.model = AFBURR(cfg.model.backbone)
            load_weights(self.model, init)
        else:
            self.model = AFBURR(cfg.model.backbone, pretrained=self.tc.pretrained)
        self.model.to(self.device)
        self.step_module = ClipStep(self.model, self.tc.bank_budget)
        if ckpt is None and init is None:
            self._from_scratch_init()
        set_train_mode(self.model, self.tc.batchnorm)

        self.net = self.step_module
        if self.dist.distributed:
            self.net = nn.parallel.DistributedDataParallel(
                self.step_module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.optimizer = torch.optim.AdamW(param_groups(self.model, self.tc.lr, self.tc.lr_scale),
                                           lr=self.tc.lr, weight_decay=self.tc.weight_decay)
        self.total_steps = self.tc.epochs * self.steps_per_epoch
        if self.tc.max_steps:
            self.total_steps = min(self.total_steps, self.tc.max_steps)
        self.scheduler, self.per_step_schedule = make_scheduler(self.optimizer, self.tc, self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)

        self.epoch, self.batch, self.step = 0, 0, 0
        self.last_loss = None
        if ckpt is not None:
            self._restore(ckpt, resume)
        self._csv_path = os.path.join(self.out_dir, "log.csv")
        self._val_path = os.path.join(self.out_dir, "val.csv")
        self.tb = None
        if self.dist.is_main:
            os.makedirs(self.out_dir, exist_ok=True)
            self._prepare_csv(self._csv_path, CSV_FIELDS)
            self._prepare_csv(self._val_path, VAL_FIELDS)
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(os.path.join(self.out_dir, "tb"), purge_step=self.step)
            except ImportError:
                self.tb = None
        self.history: list[dict] = []
        self.val_history: list[dict] = []

    # ------------------------------------------------------------- helpers
    def log(self, msg: str) -> None:
        if self.dist.is_main:
            print(msg, file=sys.stderr, flush=True)

    def _from_scratch_init(self) -> None:
        """Optional init for untrained trunks (off in the published configs)."""
        if self.tc.same_trunk_init and not self.tc.pretrained:
            n = copy_query_trunk(self.model)
            self.log(f"memory trunk initialised as a copy of the query trunk ({n} tensors)")
        if self.tc.bn_init_clips > 0 and self.tc.batchnorm != "train":
            clips = SeededClips(self.train_set.inner, self.tc.seed + 17)
            n = min(self.tc.bn_init_clips, len(clips))

            def run(i):
                frames, masks = check_clip(clips[i])
                self.step_module(frames.to(self.device), masks.to(self.device))

            with torch.no_grad():
                used = calibrate(self.model, run, range(n))
            self.log(f"BatchNorm statistics averaged over {used} clips")
        if self.tc.decoder_init_std > 0:
            sample = SeededClips(self.train_set.inner, self.tc.seed + 18)[0]
            set_train_mode(self.model, self.tc.batchnorm)
            scales = normalise_decoder(self.step_module, sample, self.device, self.tc.decoder_init_std)
            self.log(f"decoder convs rescaled to unit output std (factors {min(scales):.3g}.."
                     f"{max(scales):.3g}); logits std {self.tc.decoder_init_std}")

    def _prepare_csv(self, path: str, fields) -> None:
        """Create the CSV with a header, or on resume keep only rows up to the resumed step."""
        rows = []
        if self.step > 0 and os.path.isfile(path):
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= self.step]
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)

    def _append_csv(self, path: str, fields, row: dict) -> None:
        with open(path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=fields).writerow({k: row[k] for k in fields})

    def _restore(self, ckpt: dict, path: str) -> None:
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.batch, self.step = int(ckpt["epoch"]), int(ckpt["batch"]), int(ckpt["step"])
        self.last_loss = ckpt.get("loss")
        if ckpt.get("world_size", 1) != self.dist.world_size:
            self.log(f"warning: {path} was written by {ckpt.get('world_size')} processes, resuming "
                     f"with {self.dist.world_size}: the data order differs from an uninterrupted run")
        if ckpt.get("batches_per_epoch") not in (None, self.batches_per_epoch):
            self.log("warning: the training set size changed since the checkpoint was written")
        old = (ckpt.get("config") or {}).get("train") or {}
        now = dataclasses.asdict(self.tc)
        changed = sorted(k for k in now if k in old and old[k] != now[k] and k not in _RESUME_FREE)
        if changed:
            self.log("warning: resuming with train settings that differ from the checkpoint's: "
                     + ", ".join(f"{k} {old[k]!r} -> {now[k]!r}" for k in changed))
        if "rng" in ckpt:
            set_rng_state(ckpt["rng"])
        self.log(f"resumed from {path}: epoch {self.epoch}, batch {self.batch}, step {self.step}")

    def save(self, path: str) -> None:
        """Write a resumable published-format checkpoint (rank 0 only)."""
        if not self.dist.is_main:
            return
        save_checkpoint(path, self.model, epoch=self.epoch, optimizer=self.optimizer,
                        loss=self.last_loss, seed=self.tc.seed, step=self.step, batch=self.batch,
                        scheduler=self.scheduler.state_dict(),
                        scaler=self.scaler.state_dict() if self.scaler.is_enabled() else None,
                        rng=rng_state(), world_size=self.dist.world_size,
                        batches_per_epoch=self.batches_per_epoch, config=_config_dict(self.cfg))

    @property
    def latest_path(self) -> str:
        return os.path.join(self.out_dir, "latest.pth")

    def _loader(self) -> DataLoader:
        self.sampler.set_epoch(self.epoch, self.batch)
        self.train_set.set_epoch(self.epoch)
        return DataLoader(self.train_set, batch_size=1, sampler=self.sampler,
                          num_workers=self.tc.num_workers, collate_fn=_take_first,
                          pin_memory=self.device.type == "cuda")

    def _autocast(self):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast("cuda", dtype=self.autocast_dtype)

    def clip_loss(self, sample: dict):
        """Loss of one clip: (loss, cross-entropy, uncertainty loss), scalars (with graph
        when gradients are enabled)."""
        frames, masks = check_clip(sample)
        frames = frames.to(self.device, non_blocking=True)
        masks = masks.to(self.device, non_blocking=True)
        with self._autocast():
            logits, s = self.net(frames, masks)
        return vos_loss(logits, s, masks[1:], self.tc.uncertainty_weight)

    def train_clip(self, sample: dict, scale: float = 1.0, sync: bool = True):
        """Forward + backward of one clip (gradients accumulate). Returns (loss, ce, unc) detached."""
        ctx = self.net.no_sync() if (not sync and isinstance(self.net, nn.parallel.DistributedDataParallel)) \
            else nullcontext()
        with ctx:
            loss, ce, unc = self.clip_loss(sample)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at step {self.step} "
                                         f"(clip {sample.get('info', {})}); lower train.lr")
            self.scaler.scale(loss * scale).backward()
        return torch.stack([loss.detach(), ce.detach(), unc.detach()])

    def optimizer_step(self) -> None:
        if self.tc.clip_grad > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.tc.clip_grad)
        factor = self.lr_factor()
        groups = self.optimizer.param_groups
        base = [g["lr"] for g in groups]
        for g in groups:  # the warm-up scales the scheduler's rate for this step only
            g["lr"] *= factor
        self.scaler.step(self.optimizer)
        for g, lr in zip(groups, base):
            g["lr"] = lr
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1

    def base_lr(self) -> float:
        """The scheduler's current rate of the parameters without an lr_scale."""
        groups = self.optimizer.param_groups
        return next((g["lr"] for g in groups if g.get("name") == "default"), groups[0]["lr"])

    def lr_factor(self, step: int | None = None) -> float:
        """Warm-up factor of optimiser step ``step`` (default: the next one): (step+1)/N
        for the first ``train.warmup_steps`` = N steps, then 1."""
        step = self.step if step is None else step
        n = self.tc.warmup_steps
        return min(1.0, (step + 1) / n) if n > 0 else 1.0

    def validate(self) -> Scores | None:
        """J&F on the validation videos (rank 0; the others wait). None without videos."""
        scores = None
        if self.dist.is_main and self.val_videos:
            stop_tracking(self.model)
            scores = evaluate(self.model, self.val_videos, self.cfg.inference, self.device,
                              progress=self.progress)
            set_train_mode(self.model, self.tc.batchnorm)
            row = {"step": self.step, "epoch": self.epoch, "J": f"{scores.J:.5f}",
                   "F": f"{scores.F:.5f}", "JF": f"{scores.JF:.5f}"}
            self._append_csv(self._val_path, VAL_FIELDS, row)
            self.val_history.append({"step": self.step, "J": scores.J, "F": scores.F, "JF": scores.JF})
            if self.tb is not None:
                self.tb.add_scalar("val/JF", scores.JF, self.step)
                self.tb.add_scalar("val/J", scores.J, self.step)
            self.log(f"validation at step {self.step}: {scores}")
        D.barrier(self.dist)
        return scores

    def _time_up(self, start: float) -> bool:
        if self.time_limit is None:
            return False
        flag = torch.tensor([float(time.time() - start > self.time_limit * 60)])
        if self.dist.distributed:
            flag = flag.to(self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    # ---------------------------------------------------------------- loop
    def fit(self) -> Scores | None:
        """Train to the end (epochs, max_steps or time limit); validate at the end.

        Returns the final validation scores (None without validation videos).
        """
        tc = self.tc
        total = self.total_steps
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=total, initial=min(self.step, total), desc="train", unit="step",
                       dynamic_ncols=True)
        start = time.time()
        window_t, window_clips = time.time(), 0
        sums = torch.zeros(3)
        sum_n = 0
        stop = self.step >= total
        scores = None
        try:
            while not stop and self.epoch < tc.epochs:
                n_batches = self.batches_per_epoch
                acc = 0
                acc_sum = torch.zeros(3)
                for sample in self._loader():
                    last = self.batch + 1 == n_batches
                    acc += 1
                    stepping = acc == tc.accumulate or last
                    acc_sum += self.train_clip(sample, 1.0 / tc.accumulate, sync=stepping).cpu()
                    self.batch += 1
                    window_clips += self.dist.world_size
                    if not stepping:
                        continue
                    lr_used = self.base_lr() * self.lr_factor()
                    self.optimizer_step()
                    if self.per_step_schedule:
                        self.scheduler.step()
                    vals = D.mean_over_ranks((acc_sum / acc).to(self.device), self.dist).cpu()
                    acc, acc_sum = 0, torch.zeros(3)
                    sums += vals
                    sum_n += 1
                    self.last_loss = float(vals[0])
                    if last:
                        self.epoch, self.batch = self.epoch + 1, 0
                        if not self.per_step_schedule:
                            self.scheduler.step()
                    done = self.step >= total
                    time_up = self._time_up(start)
                    if self.step % tc.log_every == 0 or done or time_up or last:
                        now = time.time()
                        rate = window_clips / max(now - window_t, 1e-9)
                        mean = sums / max(sum_n, 1)
                        row = {"step": self.step, "epoch": self.epoch + self.batch / n_batches,
                               "loss": f"{mean[0]:.5f}", "ce": f"{mean[1]:.5f}",
                               "uncertainty": f"{mean[2]:.5f}",
                               "lr": f"{lr_used:.3g}",
                               "clips_per_s": f"{rate:.3f}"}
                        row["epoch"] = f"{row['epoch']:.3f}"
                        self.history.append({k: float(v) for k, v in row.items()})
                        if self.dist.is_main:
                            self._append_csv(self._csv_path, CSV_FIELDS, row)
                            if self.tb is not None:
                                for k in ("loss", "ce", "uncertainty", "lr", "clips_per_s"):
                                    self.tb.add_scalar(f"train/{k}", float(row[k]), self.step)
                        if bar is not None:
                            bar.set_postfix(loss=row["loss"], ce=row["ce"], unc=row["uncertainty"],
                                            lr=row["lr"], clips_s=row["clips_per_s"], refresh=False)
                        window_t, window_clips, sums, sum_n = now, 0, torch.zeros(3), 0
                    if bar is not None:
                        bar.update(1)
                    if tc.checkpoint_steps and self.step % tc.checkpoint_steps == 0 and not last:
                        self.save(self.latest_path)
                    if last:
                        self.save(self.latest_path)
                        if self.epoch % tc.save_every == 0 and self.dist.is_main:
                            self.save(os.path.join(self.out_dir, f"epoch_{self.epoch:04d}.pth"))
                        if self.vc.every and self.epoch % self.vc.every == 0 \
                                and self.epoch < tc.epochs and not done:
                            self.validate()
                    if self.on_step is not None:
                        self.on_step(self, self.step)
                    if done or time_up:
                        if time_up:
                            self.log(f"time limit of {self.time_limit} min reached at step {self.step}")
                        stop = True
                        break
            self.save(self.latest_path)
            if bar is not None:
                bar.close()
                bar = None
            scores = self.validate()
        finally:
            if bar is not None:
                bar.close()
            if self.tb is not None:
                self.tb.flush()
        return scores

    def export(self, path: str, half: bool = True) -> None:
        """Weights-only published-format checkpoint (fp16 with ``half``), e.g. a demo file."""
        if self.dist.is_main:
            save_checkpoint(path, self.model, epoch=self.epoch, loss=self.last_loss,
                            seed=self.tc.seed, half=half)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        D.cleanup()
