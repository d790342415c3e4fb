"""The BERT text encoder inside LAVT (key prefix ``text_encoder``).

transformers' ``BertModel`` built from a ``BertConfig`` (nothing downloaded), no
pooler. Its parameter names equal the release's (transformers 3.0.2); its
``position_ids`` / ``token_type_ids`` buffers are non-persistent, so the
state_dict holds exactly the published keys.
"""
from __future__ import annotations

import torch
from torch import nn

BERT_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
               "max_position_embeddings", "type_vocab_size")

BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2)


def check_bert_config(bert_config: dict | None) -> dict:
    """BERT-base defaults overridden by ``bert_config`` (only the :data:`BERT_FIELDS`)."""
    cfg = dict(BERT_BASE)
    unknown = sorted(set(bert_config or {}) - set(BERT_FIELDS))
    if unknown:
        raise ValueError(f"bert_config: unknown fields {unknown}; allowed: {list(BERT_FIELDS)}")
    cfg.update({k: int(v) for k, v in (bert_config or {}).items()})
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise ValueError(f"bert_config: hidden_size {cfg['hidden_size']} does not split into "
                         f"{cfg['num_attention_heads']} heads")
    return cfg


def build_text_encoder(bert_config: dict | None = None) -> nn.Module:
    """A randomly initialised BertModel without pooler (LayerNorm eps 1e-12, erf-GELU, pad id 0)."""
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    cfg = BertConfig(**check_bert_config(bert_config), hidden_act="gelu", layer_norm_eps=1e-12, pad_token_id=0,
                     hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return BertModel(cfg, add_pooling_layer=False)
    finally:
        hf_logging.set_verbosity(verbosity)


def encode_words(encoder: nn.Module, token_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, N) ids and mask -> last layer's hidden states, channel-first (B, D, N).

    Token types all 0, positions 0..N-1; padded keys get the additive mask (their
    own hidden states are still produced and later masked by PWAM).
    """
    hidden = encoder(input_ids=token_ids, attention_mask=attention_mask).last_hidden_state
    return hidden.transpose(1, 2)
