"""Reading and writing LAVT checkpoints as released.

Two layouts, one forward computation:
- ``lavt_one``: ``{"model": 648-tensor state_dict (backbone., classifier., text_encoder.), "args": Namespace, ...}``
- ``lavt`` (paper release): ``"model"`` holds backbone./classifier. only and
  ``"bert_model"`` the BERT state_dict without prefix; prefixing it with
  ``text_encoder.`` gives the lavt_one layout.

Files are read with ``weights_only=True`` and ``argparse.Namespace`` (the
training options the release stores under ``args``) as the one allowed class.
The architecture is inferred from tensor shapes; only head counts, which no
shape shows, come from the file's ``config`` (our files) or the published
conventions (BERT head width 64, one PWAM head).
"""
from __future__ import annotations

import argparse
import math
import os
import re

import torch

from ..checkpoint import key_mismatches
from .network import LAVT
from .swin import SWIN_SIZES

BERT_HEAD_DIM = 64  # BERT family convention; used when a file does not state the head count
_ANCHORS = ("backbone.patch_embed.proj.weight", "text_encoder.embeddings.word_embeddings.weight")
_NEWER_BERT_BUFFERS = ("text_encoder.embeddings.position_ids",)  # written by transformers > 3.0.2 only


class ReferringCheckpointError(ValueError):
    """The file is not a usable LAVT checkpoint; the message names the file and why (one line)."""


def _short(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f" ... ({len(keys)} in all)" if len(keys) > n else "")


def read_checkpoint(path: str) -> dict:
    """``torch.load`` with weights_only=True and argparse.Namespace allowed -> the file's dict."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"referring checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # the unpickler's refusal or a damaged file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ReferringCheckpointError(
            f"cannot read referring checkpoint {path} safely (weights_only=True, argparse.Namespace allowed): "
            f"{first}") from None
    if not isinstance(blob, dict):
        raise ReferringCheckpointError(f"{path}: expected a dict, got {type(blob).__name__}")
    return blob


def merged_state_dict(blob: dict, path: str = "<checkpoint>") -> dict:
    """The lavt_one state_dict of a file in either layout (``module.`` prefixes dropped)."""
    state = blob.get("model", blob)
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ReferringCheckpointError(f"{path}: 'model' is not a state_dict of tensors")
    state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
    bert = blob.get("bert_model")
    if bert is not None:
        if not isinstance(bert, dict) or not all(torch.is_tensor(v) for v in bert.values()):
            raise ReferringCheckpointError(f"{path}: 'bert_model' is not a state_dict of tensors")
        clash = [k for k in bert if f"text_encoder.{k}" in state]
        if clash:
            raise ReferringCheckpointError(f"{path}: BERT keys both in 'model' and 'bert_model': {_short(clash)}")
        state.update({f"text_encoder.{k[7:] if k.startswith('module.') else k}": v for k, v in bert.items()})
    return {k: v for k, v in state.items() if k not in _NEWER_BERT_BUFFERS}


def _count(state: dict, pattern: str) -> int:
    pat = re.compile(pattern)
    return len({m.group(1) for k in state for m in [pat.match(k)] if m})


def infer_config(state: dict, stated: dict | None = None) -> dict:
    """LAVT constructor arguments from a lavt_one state_dict's shapes.

    ``stated``: the ``config`` a file of ours carries; only its head counts, input size and
    stochastic depth (a training setting, published 0.3) are used.
    """
    stated = stated or {}
    dim = int(state["backbone.patch_embed.proj.weight"].shape[0])
    depths = tuple(_count(state, rf"^backbone\.layers\.{i}\.blocks\.(\d+)\.") for i in range(4))
    tables = [state.get(f"backbone.layers.{i}.blocks.0.attn.relative_position_bias_table") for i in range(4)]
    if min(depths) < 1 or any(t is None for t in tables):
        raise ReferringCheckpointError(f"Swin stages with blocks {depths}: need 4 stages of >= 1 block")
    heads = tuple(int(t.shape[1]) for t in tables)
    side = math.isqrt(int(tables[0].shape[0]))
    if side * side != tables[0].shape[0] or side % 2 == 0:
        raise ReferringCheckpointError(f"relative position table with {tables[0].shape[0]} rows is not (2w-1)^2")
    swin = {"embed_dim": dim, "depths": depths, "num_heads": heads}
    named = [n for n, v in SWIN_SIZES.items() if v == (dim, depths, heads)]

    word = state["text_encoder.embeddings.word_embeddings.weight"]
    hidden = int(word.shape[1])
    bert_heads = (stated.get("bert_config") or {}).get("num_attention_heads")
    if bert_heads is None:
        if hidden % BERT_HEAD_DIM:
            raise ReferringCheckpointError(f"BERT width {hidden} is not a multiple of {BERT_HEAD_DIM}: "
                                           "the file must state num_attention_heads in its 'config'")
        bert_heads = hidden // BERT_HEAD_DIM
    # A BERT without layers (word embeddings only) has no FFN weight: its width shapes nothing.
    ffn = state.get("text_encoder.encoder.layer.0.intermediate.dense.weight")
    ffn = int(ffn.shape[0]) if ffn is not None else int((stated.get("bert_config") or {}).get(
        "intermediate_size", 4 * hidden))
    bert = dict(vocab_size=int(word.shape[0]), hidden_size=hidden,
                num_hidden_layers=_count(state, r"^text_encoder\.encoder\.layer\.(\d+)\."),
                num_attention_heads=int(bert_heads), intermediate_size=ffn,
                max_position_embeddings=int(state["text_encoder.embeddings.position_embeddings.weight"].shape[0]),
                type_vocab_size=int(state["text_encoder.embeddings.token_type_embeddings.weight"].shape[0]))
    return dict(swin=named[0] if named else swin, window_size=(side + 1) // 2, bert_config=bert,
                pwam_heads=tuple(stated.get("pwam_heads", (1, 1, 1, 1))),
                input_size=_input_size(state, stated), ape="backbone.absolute_pos_embed" in state,
                drop_path_rate=float(stated.get("drop_path_rate", 0.3)))


def _input_size(state: dict, stated: dict) -> tuple:
    """The stated input size; else the absolute position embedding's grid x 4; else 480 x 480."""
    if "input_size" in stated:
        return tuple(stated["input_size"])
    pos = state.get("backbone.absolute_pos_embed")
    return (4 * int(pos.shape[-2]), 4 * int(pos.shape[-1])) if pos is not None and pos.dim() == 4 else (480, 480)


def _mismatch_error(path: str, state: dict, expected: dict, what: str) -> ReferringCheckpointError:
    parts = [f"{path} is not a {what} checkpoint"] + key_mismatches(state, expected, shown=5)
    return ReferringCheckpointError("; ".join(parts))


def model_from_state_dict(state: dict, stated: dict | None = None, path: str = "<state_dict>") -> LAVT:
    """Build the LAVT that ``state`` (lavt_one layout) was saved from and load it strictly (fp32)."""
    if not all(k in state for k in _ANCHORS):
        if any(k.startswith(("encoder_q.", "encoder_m.", "keyval_")) for k in state):
            raise ReferringCheckpointError(f"{path} is an AFB-URR (segmentation) checkpoint, not a referring "
                                           "(LAVT) one: give it as the segmentation weights (--weights)")
        with torch.device("meta"):
            released = LAVT("base", 12).state_dict()
        raise _mismatch_error(path, state, released, "LAVT (lavt_one or lavt)")
    try:
        cfg = infer_config(state, stated)
    except (KeyError, ReferringCheckpointError) as e:
        raise ReferringCheckpointError(f"{path}: cannot infer the LAVT architecture: {e}") from None
    model = LAVT(**cfg)
    expected = model.state_dict()
    if set(expected) != set(state) or any(state[k].shape != v.shape for k, v in expected.items()):
        raise _mismatch_error(path, state, expected, f"LAVT ({cfg['swin']}, window {cfg['window_size']})")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    return model


def load_referring_model(path: str, device: str | torch.device = "cpu") -> LAVT:
    """A released (lavt_one or lavt) or our own LAVT file -> the model in eval mode on ``device``."""
    blob = read_checkpoint(path)
    stated = blob.get("config") if isinstance(blob.get("config"), dict) else None
    model = model_from_state_dict(merged_state_dict(blob, path), stated, path)
    digest = blob.get("vocab_digest")
    model.vocab_digest = digest if isinstance(digest, str) else None  # files of ours: the vocabulary they need
    return model.to(device).eval()


def vocab_file_for(weights: str) -> str:
    """Where the vocabulary of one of our exported models lies: ``<weights stem>_vocab.txt``."""
    return os.path.splitext(weights)[0] + "_vocab.txt"


def save_referring_model(path: str, model: LAVT, layout: str = "lavt_one", args: argparse.Namespace | None = None,
                         half: bool = False, **extra) -> None:
    """Write ``model`` in a released layout (plus its ``config``), atomically; ``half`` stores fp16."""
    if layout not in ("lavt_one", "lavt"):
        raise ValueError(f"layout must be 'lavt_one' or 'lavt', got {layout!r}")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    blob = {"model": state, "args": args, "config": model.config}
    if layout == "lavt":
        blob["model"] = {k: v for k, v in state.items() if not k.startswith("text_encoder.")}
        blob["bert_model"] = {k[len("text_encoder."):]: v for k, v in state.items() if k.startswith("text_encoder.")}
    blob.update(extra)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.save(blob, tmp)
    os.replace(tmp, path)
