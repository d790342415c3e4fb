"""Adaptive Feature Bank: one video's key/value memory, per object.

Per object i (0 = background) the bank holds keys (Ck x M_i), values
(Cv x M_i), the frame index at which each entry was inserted and an
accumulated read-out score. New features are merged into similar entries
(``absorb``), the least-frequently-used entries are dropped when the
per-object budget would be exceeded (``evict``). The bank never touches the
network: it only stores and updates tensors. Features keep the dtype they come in
(a Segmenter in bf16 / fp16 stores half-precision features, half the bytes); the
similarities and the merge are computed in fp32 whatever that dtype.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import EVICTION_MODES, InferenceConfig


def _fp32(x: torch.Tensor) -> torch.Tensor:
    """Half-precision features as fp32 for similarities and merges (others as they are)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class FeatureBank:
    """Key/value memory of one video, one bank per object (background included).

    Args:
        num_objects: K, objects including background.
        config: an :class:`InferenceConfig` (default: its defaults); the
            keywords below override its fields:
        budget: entries over all objects; per object ``budget // K``, and
            x0.8 when K == 2 (published behaviour).
        update_rate: r in the merge ``|old| * ((1 - r) * old/|old| + r * mean(new))``.
        merge_threshold: cosine similarity above which a new feature merges.
        eviction: "threshold" (published: drop every entry with
            LFU <= int(min LFU) + 1, repeated until the new entries fit) or
            "minimal" (drop only as many least-used entries as needed).
        readout_threshold: attention weight above which a read counts.
        chunk_bytes: most bytes of similarity one absorb materialises.
        score_max: read-out scores are clamped to [0, score_max].
    """

    def __init__(self, num_objects: int, config: InferenceConfig | None = None, *,
                 score_max: float = 1e5, **overrides):
        cfg = (config or InferenceConfig()).replace(**overrides)
        if cfg.eviction not in EVICTION_MODES:
            raise ValueError(f"eviction must be one of {EVICTION_MODES}, got {cfg.eviction!r}")
        if cfg.budget <= 0:
            raise ValueError(f"budget must be positive, got {cfg.budget}")
        if not 0.0 <= cfg.update_rate <= 1.0:
            raise ValueError(f"update_rate must be in [0, 1], got {cfg.update_rate}")
        self.budget = int(cfg.budget)
        self.update_rate = float(cfg.update_rate)
        self.merge_threshold = float(cfg.merge_threshold)
        self.eviction = cfg.eviction
        self.readout_threshold = float(cfg.readout_threshold)
        self.score_max = float(score_max)
        self.chunk_bytes = int(cfg.chunk_bytes)
        self._set_objects(num_objects)
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.inserted_at: list[torch.Tensor] = []
        self.scores: list[torch.Tensor] = []
        self.evicted = [0] * self.num_objects

    # ------------------------------------------------------------------ state
    def _set_objects(self, num_objects: int) -> None:
        if num_objects < 1:
            raise ValueError(f"num_objects must be >= 1 (background included), got {num_objects}")
        self.num_objects = int(num_objects)

    @staticmethod
    def object_budget(budget: int, num_objects: int) -> int:
        """Entries allowed per object: budget // K, x0.8 when K == 2 (published)."""
        per = budget // num_objects
        return int(0.8 * per) if num_objects == 2 else per

    @property
    def per_object_budget(self) -> int:
        return self.object_budget(self.budget, self.num_objects)

    @property
    def sizes(self) -> list[int]:
        """Entries per object, background first."""
        return [int(k.shape[1]) for k in self.keys]

    def __len__(self) -> int:
        return sum(self.sizes)

    def check_fits(self, new_per_object: int, num_objects: int | None = None) -> None:
        """Raise if one frame's features can never fit in the per-object budget."""
        per = self.object_budget(self.budget, num_objects or self.num_objects)
        if new_per_object > per:
            raise ValueError(
                f"bank budget too small: {new_per_object} features per object per frame, but the "
                f"per-object budget is {per} (budget {self.budget} over "
                f"{num_objects or self.num_objects} objects); raise the budget")

    def init(self, keys: torch.Tensor, values: torch.Tensor, frame_index: int) -> None:
        """(Re)start the bank from one frame: keys K x Ck x N, values K x Cv x N.

        K may differ from the previous one (an object appeared): the per-object
        budget follows the new K.
        """
        if keys.dim() != 3 or values.dim() != 3 or keys.shape[0] != values.shape[0] \
                or keys.shape[2] != values.shape[2]:
            raise ValueError(f"keys K x Ck x N and values K x Cv x N expected, got "
                             f"{tuple(keys.shape)} and {tuple(values.shape)}")
        self.check_fits(keys.shape[2], keys.shape[0])
        self._set_objects(keys.shape[0])
        n = keys.shape[2]
        self.keys = [k.clone() for k in keys]
        self.values = [v.clone() for v in values]
        self.inserted_at = [torch.full((n,), frame_index, dtype=torch.long, device=keys.device)
                            for _ in range(self.num_objects)]
        self.scores = [torch.zeros(n, dtype=torch.float32, device=keys.device)
                       for _ in range(self.num_objects)]
        self.evicted = [0] * self.num_objects

    def add_objects(self, keys: torch.Tensor, values: torch.Tensor, frame_index: int) -> None:
        """Append banks for new objects (keys K' x Ck x N) while keeping the old ones.

        Old banks larger than the new per-object budget are evicted down to it.
        """
        self.check_fits(keys.shape[2], self.num_objects + keys.shape[0])
        n = keys.shape[2]
        self._set_objects(self.num_objects + keys.shape[0])
        for k, v in zip(keys, values):
            self.keys.append(k.clone())
            self.values.append(v.clone())
            self.inserted_at.append(torch.full((n,), frame_index, dtype=torch.long, device=k.device))
            self.scores.append(torch.zeros(n, dtype=torch.float32, device=k.device))
            self.evicted.append(0)
        for i in range(self.num_objects):
            if self.sizes[i] > self.per_object_budget:
                self.evict(i, 0, frame_index)

    # ------------------------------------------------------------- read-outs
    def add_readout(self, obj: int, counts: torch.Tensor) -> None:
        """Add log(count + 1) to object ``obj``'s entry scores (counts: M)."""
        self.scores[obj] += torch.log1p(counts.to(self.scores[obj].dtype))

    # ---------------------------------------------------------------- absorb
    def _best_match(self, normed_bank: torch.Tensor, normed_new: torch.Tensor):
        """For each new feature its most similar entry: (similarity N, index N).

        Chunked over bank entries so at most ``chunk_bytes`` of similarities exist.
        """
        m, n = normed_bank.shape[1], normed_new.shape[1]
        step = max(1, self.chunk_bytes // max(n * normed_new.element_size(), 1))
        best_sim = best_idx = None
        for start in range(0, m, step):
            sim = normed_bank[:, start:start + step].t() @ normed_new  # m' x N
            s, j = sim.max(dim=0)
            j = j + start
            if best_sim is None:
                best_sim, best_idx = s, j
            else:
                better = s > best_sim  # ties keep the earlier entry, as one argmax would
                best_sim = torch.where(better, s, best_sim)
                best_idx = torch.where(better, j, best_idx)
        return best_sim, best_idx

    def _merge(self, bank: torch.Tensor, new_normed: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Merge normalised new features (C x S) into bank columns ``idx`` (S): new bank C x M.
        The arithmetic runs in fp32 (at least); the bank keeps its dtype."""
        work = torch.promote_types(bank.dtype, torch.float32)
        uniq, inverse = torch.unique(idx, return_inverse=True)
        sums = torch.zeros(bank.shape[0], uniq.numel(), dtype=work, device=bank.device)
        sums.index_add_(1, inverse, new_normed.to(work))
        counts = torch.bincount(inverse, minlength=uniq.numel()).to(work)
        mean = sums / counts
        old = bank[:, uniq].to(work)
        mag = old.norm(dim=0)
        merged = mag * ((1 - self.update_rate) * F.normalize(old, dim=0) + self.update_rate * mean)
        out = bank.clone()
        out[:, uniq] = merged.to(bank.dtype)
        return out

    def absorb(self, keys: torch.Tensor, values: torch.Tensor, frame_index: int) -> list[int]:
        """Add one frame's features (keys K x Ck x N, values K x Cv x N) at ``frame_index``.

        Each new feature merges into its most similar entry when the cosine
        similarity exceeds the merge threshold (all features choosing one entry
        are averaged), else it is appended; LFU eviction makes room first.
        Returns the number of appended entries per object.
        """
        if keys.shape[0] != self.num_objects or values.shape[0] != self.num_objects:
            raise ValueError(f"bank has {self.num_objects} objects, got features for {keys.shape[0]}")
        self.check_fits(keys.shape[2])
        appended = []
        for i in range(self.num_objects):
            kb, vb = self.keys[i], self.values[i]
            new_k = F.normalize(_fp32(keys[i]), dim=0)
            sim, idx = self._best_match(F.normalize(_fp32(kb), dim=0), new_k)
            merge = sim > self.merge_threshold
            if bool(merge.any()):
                kb = self._merge(kb, new_k[:, merge], idx[merge])
                vb = self._merge(vb, F.normalize(_fp32(values[i][:, merge]), dim=0), idx[merge])
            self.keys[i], self.values[i] = kb, vb
            add = ~merge
            n_add = int(add.sum())
            if self.sizes[i] + n_add > self.per_object_budget:
                self.evict(i, n_add, frame_index)
            self.keys[i] = torch.cat([self.keys[i], keys[i][:, add]], dim=1)
            self.values[i] = torch.cat([self.values[i], values[i][:, add]], dim=1)
            self.inserted_at[i] = torch.cat([
                self.inserted_at[i],
                torch.full((n_add,), frame_index, dtype=torch.long, device=kb.device)])
            self.scores[i] = torch.cat([
                self.scores[i], torch.zeros(n_add, dtype=self.scores[i].dtype, device=kb.device)])
            self.scores[i].clamp_(0, self.score_max)
            appended.append(n_add)
        return appended

    # ----------------------------------------------------------------- evict
    def lfu(self, obj: int, frame_index: int) -> torch.Tensor:
        """Least-frequently-used measure per entry: score / (t - inserted_at)."""
        age = (frame_index - self.inserted_at[obj]).clamp_min(1).to(self.scores[obj].dtype)
        return self.scores[obj] / age

    def evict(self, obj: int, incoming: int, frame_index: int) -> int:
        """Drop object ``obj``'s least-used entries so that ``incoming`` more fit. Returns #dropped."""
        budget = self.per_object_budget
        if incoming > budget:
            raise ValueError(f"{incoming} incoming entries exceed the per-object budget {budget}")
        size = self.sizes[obj]
        lfu = self.lfu(obj, frame_index)
        if self.eviction == "minimal":
            excess = size + incoming - budget
            if excess <= 0:
                return 0
            order = torch.argsort(lfu, stable=True)
            keep = torch.ones(size, dtype=torch.bool, device=lfu.device)
            keep[order[:excess]] = False
        else:
            keep = torch.ones(size, dtype=torch.bool, device=lfu.device)
            kept = size
            # Published loop: each round drops every entry with LFU <= int(min LFU) + 1.
            while kept + incoming > budget:
                threshold = int(lfu[keep].min()) + 1
                keep &= lfu > threshold
                kept = int(keep.sum())
        self.keys[obj] = self.keys[obj][:, keep]
        self.values[obj] = self.values[obj][:, keep]
        self.inserted_at[obj] = self.inserted_at[obj][keep]
        self.scores[obj] = self.scores[obj][keep]
        dropped = size - int(keep.sum())
        self.evicted[obj] += dropped
        return dropped

    def __repr__(self) -> str:
        return (f"FeatureBank(objects={self.num_objects}, sizes={self.sizes}, "
                f"per_object_budget={self.per_object_budget})")
