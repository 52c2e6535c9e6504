"""The pure-Python reference engine: the executable specification of a simulation."""
from .engine import ReferenceEngine

__all__ = ["ReferenceEngine"]
