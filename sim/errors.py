"""The base class of every error a user can fix: `inhand` prints it as one line and exits 2."""
from __future__ import annotations


class InhandError(Exception):
    """Bad input (a config, checkpoint, bag, path or argument): the message names the file, key and what is accepted."""


class UsageError(InhandError, ValueError):
    """Command-line arguments that parse but do not fit together."""


class CheckpointError(InhandError, ValueError):
    """A checkpoint (policy, training state or pose network) that cannot be used: missing, truncated, corrupt,
    of another format or kind, or incompatible with the config it is loaded for."""
