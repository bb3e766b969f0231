"""reviewpipe: a rerunnable systematic-review pipeline."""

from reviewpipe.errors import (
    EntrezError,
    InputError,
    MissingInput,
    ProtocolError,
    ReviewpipeError,
    StaleStore,
)

__version__ = "0.1.0"

__all__ = [
    "EntrezError",
    "InputError",
    "MissingInput",
    "ProtocolError",
    "ReviewpipeError",
    "StaleStore",
    "__version__",
]
