"""The errors this package raises on purpose; each carries a message meant for the user."""


class SimlmHaystackError(Exception):
    """Base class: the command line prints these as one line and exits non-zero."""


class RecipeError(SimlmHaystackError, ValueError):
    """A recipe is unknown, malformed, or cannot be found for a model."""


class ModelLoadError(SimlmHaystackError, OSError):
    """A checkpoint cannot be loaded (not on disk, hub unreachable, wrong files)."""


class CollectionMismatchError(SimlmHaystackError, ValueError):
    """An existing Qdrant collection has another vector size or distance than the model needs."""


class EncoderMismatchError(CollectionMismatchError):
    """A collection was filled by another encoder (model weights or recipe) than the one about to write or search it."""


class EmptyQueryError(SimlmHaystackError, ValueError):
    """A query is empty or only whitespace: it has no meaning to search for."""


class SettingsError(SimlmHaystackError, ValueError):
    """A setting cannot work with this model or data (e.g. a decoder deeper than the encoder)."""


class DataError(SimlmHaystackError, ValueError):
    """Input data is missing or malformed; the message names the file and line."""


class StoreError(SimlmHaystackError):
    """Qdrant cannot be reached or a write failed; the message says how much was written and how to resume."""


class NonFiniteLossError(SimlmHaystackError, FloatingPointError):
    """Training met a NaN/inf loss; the message names the step, the batch and the last good checkpoint."""
