"""The one exception type for unusable input files (frames, masks, videos)."""


class InputError(ValueError):
    """A file given by the user cannot be used; the message names the file and why.

    A subclass of ValueError, so callers that only know "bad value" still catch it;
    the command-line tools turn it into a one-line error and a non-zero exit.
    """
