"""The exception types for unusable input files (frames, masks, videos, dataset folders)."""


class InputError(ValueError):
    """A file given by the user cannot be used; the message names the file and why.

    A subclass of ValueError, so callers that only know "bad value" still catch it;
    the command-line tools turn it into a one-line error and a non-zero exit.
    """


class MissingInputError(InputError, FileNotFoundError):
    """A file or folder that should exist does not (also a FileNotFoundError)."""


class MaskFormatError(InputError):
    """A mask file that is not an index PNG (or not a readable image)."""
