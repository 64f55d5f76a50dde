"""The base class of every error a user can fix: `inhand` prints it as one line and exits 2."""
from __future__ import annotations


class InhandError(Exception):
    """Bad input (a config, checkpoint, bag, path or argument): the message names the file, key and what is accepted."""


class UsageError(InhandError, ValueError):
    """Command-line arguments that parse but do not fit together."""
