"""The AFB-URR network: encoders, decoder with uncertain-region refinement."""
from .network import AFBURR, BACKBONES

__all__ = ["AFBURR", "BACKBONES"]
