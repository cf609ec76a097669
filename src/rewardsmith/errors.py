"""User-facing errors.

A :class:`RewardsmithError` carries a one-line message meant for the person at the terminal;
the CLI prints it and exits non-zero instead of showing a traceback. Library code raises it for
bad input (missing files, malformed data, unknown names) and lets real bugs propagate.
"""

from __future__ import annotations


class RewardsmithError(Exception):
    """An error caused by the user's input or environment, with a message that says what to fix."""


class DataError(RewardsmithError):
    """A data file or split is missing, empty or malformed."""


class ConfigError(RewardsmithError):
    """A configuration value, name or path is invalid."""
