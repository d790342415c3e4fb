"""Shared helpers of the referring tests: a light random LAVT and a small vocabulary."""
import os

import pytest
import torch

LIGHT_SWIN = dict(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4))
LIGHT_WORDS = ["the", "red", "blue", "ball", "cube", "on", "left", "right", "a", "small", "big", "!", ",", "."]
LIGHT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + LIGHT_WORDS
LIGHT_BERT = dict(vocab_size=len(LIGHT_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=64, max_position_embeddings=32, type_vocab_size=2)


def light_lavt(seed: int = 0, window: int = 4, **kwargs):
    """A random light LAVT (Swin C=16, window 4, 2-layer BERT of width 32), eval mode, BN stats randomised."""
    from afb_urr.referring import LAVT
    torch.manual_seed(seed)
    model = LAVT(swin=LIGHT_SWIN, window_size=window, bert_config=LIGHT_BERT, **kwargs)
    for m in model.classifier.modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def write_vocab(folder, tokens=LIGHT_VOCAB) -> str:
    path = os.path.join(str(folder), "vocab.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(tokens) + "\n")
    return path


def tokens(*expressions, vocab=LIGHT_VOCAB):
    """(ids, mask) (B, 20) for expressions of known words (no truncation)."""
    ids = torch.zeros(len(expressions), 20, dtype=torch.int64)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(expressions):
        row = [2] + [vocab.index(w) for w in e.split()] + [3]
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    return ids, mask


@pytest.fixture(scope="module")
def single_thread():
    """These tests run tiny tensors: one intra-op thread avoids contention on a shared 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
