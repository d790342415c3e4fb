"""Checkpoints in the published format: a ``torch.save``d dict with ``epoch``,
``model`` (the state_dict), ``optimizer``, ``loss`` and ``seed``.

``load_model`` reads published files as they are. The only renaming it
applies is dropping a ``module.`` prefix (left by DataParallel / DDP
wrappers); anything else that does not match is an error naming the keys.
"""
from __future__ import annotations

import os
import re

import torch

from .model import AFBURR

# (bottleneck blocks?, blocks in layer1..3) -> torchvision backbone name
_DEPTHS = {
    (False, (2, 2, 2)): "resnet18",
    (False, (3, 4, 6)): "resnet34",
    (True, (3, 4, 6)): "resnet50",
    (True, (3, 4, 23)): "resnet101",
}


# How files written by torch.save begin: a zip archive (the default since PyTorch 1.6) or,
# for the legacy format, a pickle (protocol 2+ opcode 0x80).
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")


class CheckpointError(ValueError):
    """The file is not a usable AFB-URR checkpoint."""


def _strip_prefix(state: dict) -> dict:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def infer_backbone(state: dict) -> str:
    """Name of the ResNet trunk that produced ``state`` (from its key names and shapes)."""
    bottleneck = "encoder_q.res2.0.conv3.weight" in state
    blocks = []
    for layer in ("res2", "res3", "res4"):
        pat = re.compile(rf"^encoder_q\.{layer}\.(\d+)\.")
        idx = {int(m.group(1)) for k in state for m in [pat.match(k)] if m}
        blocks.append(len(idx))
    name = _DEPTHS.get((bottleneck, tuple(blocks)))
    if name is None:
        raise CheckpointError(
            "not an AFB-URR checkpoint: cannot recognise the encoder trunk "
            f"(bottleneck={bottleneck}, blocks per stage={blocks}); "
            f"first keys: {list(state)[:5]}")
    return name


def read_state_dict(path: str) -> tuple[dict, dict]:
    """Load ``path`` and return (state_dict, the whole file's dict)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if not head.startswith(_TORCH_MAGIC):
        raise CheckpointError(f"{path} is not a checkpoint (not a file torch.save writes: "
                              f"it starts with {head!r})")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # PyTorch's messages run to many lines of advice: keep the first
        first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise CheckpointError(f"{path} is not a checkpoint torch can read: {first}") from e
    if not isinstance(blob, dict):
        raise CheckpointError(f"{path}: expected a dict, got {type(blob).__name__}")
    state = blob["model"] if "model" in blob else blob
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: 'model' is not a state_dict of tensors")
    return _strip_prefix(dict(state)), blob


def load_model(path: str, device: str | torch.device = "cpu") -> AFBURR:
    """Build the network a checkpoint was saved from and load it with ``strict=True``.

    The backbone is inferred from the state_dict; fp16 checkpoints are cast to
    fp32. A state_dict that does not match raises :class:`CheckpointError`
    listing the missing and unexpected keys. The model is returned in eval mode.
    """
    state, _ = read_state_dict(path)
    try:
        backbone = infer_backbone(state)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    model = AFBURR(backbone)
    expected = model.state_dict()
    problems = key_mismatches(state, expected)
    if problems:
        parts = [f"{path} is not an AFB-URR ({backbone}) checkpoint:"] + problems
        raise CheckpointError("\n  ".join(parts))
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def key_mismatches(state: dict, expected: dict, shown: int = 8) -> list[str]:
    """What keeps ``state`` from loading strictly into a model whose state_dict is ``expected``:
    phrases naming the missing keys, unexpected keys and shape mismatches (empty when it fits)."""
    def head(xs):
        return ", ".join(xs[:shown]) + (f" ... ({len(xs)} in all)" if len(xs) > shown else "")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}"
             for k, v in expected.items() if k in state and state[k].shape != v.shape]
    named = (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong))
    return [f"{what}: {head(xs)}" for what, xs in named if xs]


def save_checkpoint(path: str, model: torch.nn.Module, epoch: int = 0, optimizer=None, loss=None,
                    seed: int = 0, half: bool = False, **extra) -> None:
    """Write a published-format checkpoint (atomically). ``half`` stores fp16 weights."""
    state = model.state_dict()
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    blob = {"epoch": epoch, "model": state,
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "loss": float(loss) if loss is not None else None, "seed": seed}
    blob.update(extra)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.save(blob, tmp)
    os.replace(tmp, path)
