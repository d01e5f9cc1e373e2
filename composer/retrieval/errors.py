"""The one error type a user of the image library can cause and act on."""
from __future__ import annotations


class LibraryError(RuntimeError):
    """A problem the user can fix (missing folder, a library written by another encoder, weights
    that cannot be had offline). The message is one line; the CLI prints it and exits 2."""
