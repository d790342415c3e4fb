"""afb-urr: video object segmentation with an Adaptive Feature Bank and
Uncertain-Region Refinement (AFB-URR, NeurIPS 2020)."""
from .bank import FeatureBank
from .checkpoint import load_model, save_checkpoint
from .config import load_config
from .model import AFBURR
from .segmenter import Segmenter, StepResult

__all__ = ["AFBURR", "FeatureBank", "Segmenter", "StepResult", "load_model", "save_checkpoint",
           "load_config"]
__version__ = "0.1.0"
