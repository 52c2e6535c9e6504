"""riskcore: a risk simulator and backtester for perpetual-futures margin."""
from . import margin
from .book import Book, Fill, Order, Position, Settings
from .brackets import Brackets
from .enums import Leg, MarginMode, PositionMode, Side
from .errors import BracketError, Refused, RiskcoreError
from .inputs import InputError, PricePaths
from .result import Result
from .simulate import simulate
from .table import BookFormatError, BookTable

__all__ = ["Book", "Fill", "Order", "Position", "Settings", "Brackets", "BracketError", "Leg", "MarginMode", "PositionMode", "Refused",
           "RiskcoreError", "Side", "margin", "InputError", "PricePaths", "Result", "simulate",
           "BookTable", "BookFormatError"]
__version__ = "0.1.0"
