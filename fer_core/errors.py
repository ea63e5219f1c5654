"""Exceptions that carry a message meant for the user (UI and CLI show str(exc) as is), and the
CLI's exit codes for them."""

EXIT_ERROR = 2  # a FerError: bad input or state, printed as "error: ..."
EXIT_BUSY = 3  # TrainingBusyError: the store's training lock is held by another job
EXIT_INPUT_FAILED = 5  # `predict`: at least one input could not be read (the others were processed)


class FerError(Exception):
    """Base of every error fer_core raises on bad input or state; its message is user-facing."""


class DatasetError(FerError):
    """A dataset source that cannot be read at all (not a zip/folder/CSV we understand, unsafe zip, ...)."""


class UnsafeArchiveError(DatasetError):
    """A zip that breaks a safety rule: path escaping the target, too many members, too large, bomb ratio."""


class ModelFileError(FerError):
    """A file that is not a usable model (not Keras, unsafe content such as a Lambda layer, wrong output size)."""


class StoreError(FerError):
    """A model-store problem: unknown run, corrupt meta.json, missing model file."""


class TrainingBusyError(StoreError):
    """A training is already running on this store."""


class ImageError(FerError):
    """An image that cannot be decoded or is too large."""
