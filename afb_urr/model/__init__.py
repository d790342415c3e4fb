"""The AFB-URR network: encoders, decoder with uncertain-region refinement."""
from .fold import fold_batchnorm
from .network import AFBURR, BACKBONES

__all__ = ["AFBURR", "BACKBONES", "fold_batchnorm"]
