"""The training loop: one clip per step, as published.

:class:`Trainer` puts the rooms of :mod:`afb_urr.training` together: the step
(:mod:`.step`: forward and loss on one clip), the optimiser and its schedule
(:mod:`.optim`: AdamW; StepLR per epoch as published, MultiStepLR or cosine),
BatchNorm handling (:mod:`.batchnorm`, frozen as published), exact resume
(:mod:`.rng`), from-scratch initialisation (:mod:`.init`), logs (:mod:`.logs`)
and validation (:mod:`.validate`). Optional autocast on CUDA, gradient
accumulation, DistributedDataParallel under ``torchrun``.

Checkpoints are published-format dicts (``epoch``, ``model``, ``optimizer``,
``loss``, ``seed``) plus what an exact resume needs (``step``, ``batch``,
``scheduler``, ``scaler``, ``rng``, ``world_size``, ``config``).
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from contextlib import nullcontext

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..checkpoint import save_checkpoint
from ..config import Config
from ..data import collate_clip
from . import distributed as D
from .batchnorm import set_train_mode, stop_tracking
from .config import train_sections
from .init import from_scratch_init, start_model
from .logs import Meter, TrainLog
from .optim import base_lr, build_optimizer, make_scheduler, optimizer_step, total_steps, warmup_factor
from .rng import SeededClips, config_dict, read_resumable, resume_warnings, rng_state, seed_everything, \
    set_rng_state
from .step import ClipStep, amp_dtype, clip_loss
from .validate import Scores, build_val_videos, evaluate


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
        self.dist = D.setup(device)
        self.device = self.dist.device
        self.time_limit = time_limit
        self.progress = progress and self.dist.is_main
        self.on_step = on_step
        self.out_dir = self.tc.output_dir
        self.logs = TrainLog(self.out_dir, self.dist.is_main)
        self.history, self.val_history = self.logs.history, self.logs.val_history
        self.autocast_dtype = amp_dtype(self.tc.amp, self.device)
        if self.tc.amp != "none" and self.autocast_dtype is None:
            self.log(f"train.amp={self.tc.amp} applies on CUDA only; training in fp32 on {self.device.type}")
        seed_everything(self.tc.seed)
        self._data(train_set, val_videos)
        ckpt = read_resumable(resume) if resume else None
        self._network(resume or init, from_scratch=not (resume or init))
        self.optimizer = build_optimizer(self.model, self.tc)
        self.total_steps = total_steps(self.tc, self.steps_per_epoch)
        self.scheduler, self.per_step_schedule = make_scheduler(self.optimizer, self.tc, self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        self.epoch, self.batch, self.step = 0, 0, 0
        self.last_loss = None
        if ckpt is not None:
            self._restore(ckpt, resume)
        self.logs.open(self.step)

    # ------------------------------------------------------------- set-up
    def _data(self, train_set: Dataset | None, val_videos) -> None:
        """The seeded training set, its resumable sampler and the validation videos."""
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

    def _network(self, weights: str | None, from_scratch: bool) -> None:
        """The model on the device, its training step, DDP around it when distributed."""
        self.model = start_model(self.cfg.model.backbone, self.tc.pretrained, weights).to(self.device)
        self.step_module = ClipStep(self.model, self.tc.bank_budget)
        if from_scratch:
            from_scratch_init(self.step_module, self.train_set.inner, self.tc, self.device, self.log)
        set_train_mode(self.model, self.tc.batchnorm)
        self.net = self.step_module
        if self.dist.distributed:
            self.net = nn.parallel.DistributedDataParallel(
                self.step_module, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def _restore(self, ckpt: dict, path: str) -> None:
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.batch, self.step = int(ckpt["epoch"]), int(ckpt["batch"]), int(ckpt["step"])
        self.last_loss = ckpt.get("loss")
        for msg in resume_warnings(ckpt, path, dataclasses.asdict(self.tc), self.dist.world_size,
                                   self.batches_per_epoch):
            self.log(msg)
        if "rng" in ckpt:
            set_rng_state(ckpt["rng"])
        self.log(f"resumed from {path}: epoch {self.epoch}, batch {self.batch}, step {self.step}")

    # ------------------------------------------------------------- helpers
    def log(self, msg: str) -> None:
        self.logs.message(msg)

    def save(self, path: str) -> None:
        """Write a resumable published-format checkpoint (rank 0 only)."""
        if not self.dist.is_main:
            return
        save_checkpoint(path, self.model, epoch=self.epoch, optimizer=self.optimizer,
                        loss=self.last_loss, seed=self.tc.seed, step=self.step, batch=self.batch,
                        scheduler=self.scheduler.state_dict(),
                        scaler=self.scaler.state_dict() if self.scaler.is_enabled() else None,
                        rng=rng_state(), world_size=self.dist.world_size,
                        batches_per_epoch=self.batches_per_epoch, config=config_dict(self.cfg))

    @property
    def latest_path(self) -> str:
        return os.path.join(self.out_dir, "latest.pth")

    def _loader(self) -> DataLoader:
        self.sampler.set_epoch(self.epoch, self.batch)
        self.train_set.set_epoch(self.epoch)
        return DataLoader(self.train_set, batch_size=1, sampler=self.sampler,
                          num_workers=self.tc.num_workers, collate_fn=collate_clip,
                          pin_memory=self.device.type == "cuda")

    def clip_loss(self, sample: dict):
        """Loss of one clip: (loss, cross-entropy, uncertainty loss), scalars (with graph
        when gradients are enabled)."""
        return clip_loss(self.net, sample, self.device, self.autocast_dtype, self.tc.uncertainty_weight)

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
        """Step the optimiser on the accumulated gradients (warm-up applied) and count the step."""
        optimizer_step(self.optimizer, self.scaler, self.model.parameters(), self.tc.clip_grad,
                       self.lr_factor())
        self.step += 1

    def base_lr(self) -> float:
        """The scheduler's current rate of the parameters without an lr_scale."""
        return base_lr(self.optimizer)

    def lr_factor(self, step: int | None = None) -> float:
        """Warm-up factor of optimiser step ``step`` (default: the next one): (step+1)/N
        for the first ``train.warmup_steps`` = N steps, then 1."""
        return warmup_factor(self.step if step is None else step, self.tc.warmup_steps)

    def validate(self) -> Scores | None:
        """J&F on the validation videos (rank 0; the others wait). None without videos."""
        scores = None
        if self.dist.is_main and self.val_videos:
            stop_tracking(self.model)
            scores = evaluate(self.model, self.val_videos, self.cfg.inference, self.device,
                              progress=self.progress)
            set_train_mode(self.model, self.tc.batchnorm)
            self.logs.val_row(self.step, self.epoch, scores)
            self.log(f"validation at step {self.step}: {scores}")
        D.barrier(self.dist)
        return scores

    def _time_up(self) -> bool:
        if self.time_limit is None:
            return False
        flag = torch.tensor([float(time.time() - self._start > self.time_limit * 60)])
        if self.dist.distributed:
            flag = flag.to(self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    # ---------------------------------------------------------------- loop
    def fit(self) -> Scores | None:
        """Train to the end (epochs, max_steps or time limit); validate at the end.

        Returns the final validation scores (None without validation videos).
        """
        if self.progress:
            self.logs.open_bar(self.total_steps, self.step)
        self._start = time.time()
        self._meter = Meter()
        try:
            stop = self.step >= self.total_steps
            while not stop and self.epoch < self.tc.epochs:
                stop = self._run_epoch()
            self.save(self.latest_path)
            self.logs.close_bar()
            return self.validate()
        finally:
            self.logs.close_bar()
            self.logs.flush()

    def _run_epoch(self) -> bool:
        """Train on the rest of this epoch's clips, ``train.accumulate`` clips per
        optimiser step (the epoch's last step takes what is left). True: stop training."""
        acc, acc_sum = 0, torch.zeros(3)
        for sample in self._loader():
            last = self.batch + 1 == self.batches_per_epoch
            acc += 1
            stepping = acc == self.tc.accumulate or last
            acc_sum += self.train_clip(sample, 1.0 / self.tc.accumulate, sync=stepping).cpu()
            self.batch += 1
            self._meter.clips += self.dist.world_size
            if not stepping:
                continue
            if self._after_clips(acc_sum / acc, last):
                return True
            acc, acc_sum = 0, torch.zeros(3)
        return False

    def _after_clips(self, losses: torch.Tensor, last: bool) -> bool:
        """The optimiser step after a group of clips with mean ``losses`` (loss, ce, unc),
        then schedule, log, checkpoints and the end of the epoch when ``last``. True: stop."""
        lr_used = self.base_lr() * self.lr_factor()
        self.optimizer_step()
        if self.per_step_schedule:
            self.scheduler.step()
        losses = D.mean_over_ranks(losses.to(self.device), self.dist).cpu()
        self._meter.add(losses)
        self.last_loss = float(losses[0])
        if last:
            self.epoch, self.batch = self.epoch + 1, 0
            if not self.per_step_schedule:
                self.scheduler.step()
        done = self.step >= self.total_steps
        time_up = self._time_up()
        if self.step % self.tc.log_every == 0 or done or time_up or last:
            self.logs.train_row(self._meter.row(self.step, self.epoch + self.batch / self.batches_per_epoch,
                                                lr_used))
        self.logs.tick()
        if self.tc.checkpoint_steps and self.step % self.tc.checkpoint_steps == 0 and not last:
            self.save(self.latest_path)
        if last:
            self._end_epoch(validate=not done)
        if self.on_step is not None:
            self.on_step(self, self.step)
        if time_up:
            self.log(f"time limit of {self.time_limit} min reached at step {self.step}")
        return done or time_up

    def _end_epoch(self, validate: bool) -> None:
        """Checkpoints at an epoch's end (latest, and numbered every ``train.save_every``
        epochs), and validation every ``val.every`` epochs before the last."""
        self.save(self.latest_path)
        if self.epoch % self.tc.save_every == 0 and self.dist.is_main:
            self.save(os.path.join(self.out_dir, f"epoch_{self.epoch:04d}.pth"))
        if validate and self.vc.every and self.epoch % self.vc.every == 0 and self.epoch < self.tc.epochs:
            self.validate()

    def export(self, path: str, half: bool = True) -> None:
        """Weights-only published-format checkpoint (fp16 with ``half``), e.g. a demo file."""
        if self.dist.is_main:
            save_checkpoint(path, self.model, epoch=self.epoch, loss=self.last_loss,
                            seed=self.tc.seed, half=half)

    def close(self) -> None:
        self.logs.close()
        D.cleanup()
