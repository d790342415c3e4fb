"""BERT WordPiece tokenisation (uncased) to the published 20 ids.

Basic step: drop control characters, map whitespace to spaces, put spaces
around CJK ideographs, lower-case, strip accents (NFD, drop combining marks),
split off every punctuation character. WordPiece step: greedy longest match
from the left with ``##`` continuation pieces; a word with no full match (or
more than 100 characters) becomes ``[UNK]``.

Encoding: ``[CLS] pieces [SEP]``, cut to the first 20 ids (QUIRK kept: more
than 18 pieces lose ``[SEP]``), right-padded with id 0; mask 1 on kept ids.
The vocabulary (one token a line, line number = id) comes with the user's BERT
files; ``[PAD]`` must be id 0 because the published code pads with 0.
"""
from __future__ import annotations

import os
import unicodedata
import warnings

import torch

MAX_WORD_CHARS = 100
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


class VocabularyError(ValueError):
    """The vocabulary file is missing or unusable (one-line message naming it)."""


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
                                             (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
                                             (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))


def basic_tokens(text: str) -> list[str]:
    """Lower-cased, accent-stripped words and punctuation marks of ``text``."""
    chars = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        chars.append(f" {ch} " if _is_cjk(cp) else " " if _is_whitespace(ch) else ch)
    out = []
    for word in "".join(chars).split():
        word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        piece = ""
        for ch in word:
            if _is_punctuation(ch):
                out += [piece, ch] if piece else [ch]
                piece = ""
            else:
                piece += ch
        if piece:
            out.append(piece)
    return out


class WordPieceTokenizer:
    """Expression -> 20 token ids and an attention mask, as the published LAVT does.

    Args:
        vocab: tokens in id order (line i of vocab.txt is id i).
        max_tokens: ids kept after adding [CLS]/[SEP] (published 20).
    """

    def __init__(self, vocab: list[str], max_tokens: int = 20, source: str = "<vocab>"):
        self.source = source
        self.vocab = {}
        for i, tok in enumerate(vocab):
            if tok in self.vocab:
                raise VocabularyError(f"{source}: token {tok!r} appears twice (lines {self.vocab[tok] + 1}, {i + 1})")
            self.vocab[tok] = i
        missing = [t for t in SPECIAL_TOKENS if t not in self.vocab]
        if missing:
            raise VocabularyError(f"{source}: not a BERT vocabulary, special tokens {missing} are missing")
        if self.vocab["[PAD]"] != 0:
            raise VocabularyError(f"{source}: [PAD] must be line 1 (id 0), found at id {self.vocab['[PAD]']}")
        if max_tokens < 2:
            raise ValueError(f"max_tokens must be >= 2, got {max_tokens}")
        self.max_tokens = int(max_tokens)
        self.unk, self.cls, self.sep = self.vocab["[UNK]"], self.vocab["[CLS]"], self.vocab["[SEP]"]

    @classmethod
    def from_file(cls, path: str, max_tokens: int = 20) -> "WordPieceTokenizer":
        with open(path, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f]
        return cls(lines, max_tokens, source=path)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _pieces(self, word: str) -> list[str]:
        if len(word) > MAX_WORD_CHARS:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                if sub in self.vocab:
                    break
                end -= 1
            if end == start:
                return ["[UNK]"]
            pieces.append(sub)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of ``text`` (no special tokens)."""
        return [p for word in basic_tokens(text) for p in self._pieces(word)]

    def encode(self, text: str) -> tuple[list[int], list[int]]:
        """(ids, mask), each ``max_tokens`` long. Empty expression -> ValueError; too long -> warning."""
        if not isinstance(text, str):
            raise TypeError(f"expression must be a string, got {type(text).__name__}")
        pieces = self.tokenize(text)
        if not pieces:
            raise ValueError(f"empty referring expression {text!r}")
        ids = [self.cls] + [self.vocab[p] for p in pieces] + [self.sep]
        if len(ids) > self.max_tokens:
            warnings.warn(f"expression {text!r} has {len(pieces)} word pieces; kept the first {self.max_tokens} "
                          f"ids (published truncation: [SEP] and the tail are dropped)", stacklevel=2)
            ids = ids[:self.max_tokens]
        pad = self.max_tokens - len(ids)
        return ids + [0] * pad, [1] * len(ids) + [0] * pad

    def __call__(self, expressions) -> tuple[torch.Tensor, torch.Tensor]:
        """One expression or a list -> (token_ids, attention_mask), each (B, max_tokens) int64."""
        if isinstance(expressions, str):
            expressions = [expressions]
        if not expressions:
            raise ValueError("no referring expression given")
        enc = [self.encode(e) for e in expressions]
        return (torch.tensor([e[0] for e in enc], dtype=torch.int64),
                torch.tensor([e[1] for e in enc], dtype=torch.int64))


def load_tokenizer(path: str, max_tokens: int = 20) -> WordPieceTokenizer:
    """``path``: a vocab.txt, or a tokenizer folder that holds one."""
    if path is None or not str(path):
        raise VocabularyError("no BERT vocabulary given: pass the vocab.txt of the model's BERT files")
    file = os.path.join(path, "vocab.txt") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise VocabularyError(f"BERT vocabulary not found: {file} (give a vocab.txt or a folder holding one)")
    return WordPieceTokenizer.from_file(file, max_tokens)
