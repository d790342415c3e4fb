"""Text -> mask: LAVT referring segmentation (Swin + PWAM + gates + decoder + BERT).

``LAVT`` is the published ``lavt_one`` network; ``load_referring_model`` reads the
released ``lavt_one`` and ``lavt`` files; ``WordPieceTokenizer`` encodes an
expression as published; ``mask_from_text`` turns sentences into a label map.
transformers is imported only when a LAVT is built.
"""
from .loading import ReferringCheckpointError, load_referring_model, save_referring_model
from .network import LAVT, NUM_TOKENS, count_parameters
from .prompt import TextMasks, mask_from_text, preprocess
from .tokenizer import VocabularyError, WordPieceTokenizer, load_tokenizer

__all__ = ["LAVT", "NUM_TOKENS", "count_parameters", "load_referring_model", "save_referring_model",
           "ReferringCheckpointError", "WordPieceTokenizer", "load_tokenizer", "VocabularyError",
           "mask_from_text", "TextMasks", "preprocess"]
