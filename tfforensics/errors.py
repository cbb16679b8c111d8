"""The one user-error type: expected failures that the CLI prints as one line.

Library code raises :class:`UserError` for anything a user can cause and fix (a bad
option, an unreadable or corrupt input, an output that would be refused). The message names
the file or option and says what to do. Anything else that escapes a command is a bug and
keeps its traceback. ``UserError`` derives from ``ValueError`` so that callers of the library
that catch ``ValueError`` keep working.
"""

from __future__ import annotations


class UserError(ValueError):
    """An expected failure with a message that names the file or option and the fix.

    >>> raise UserError("data/manifest.json: field 'classes' is missing; re-run prepare.")
    Traceback (most recent call last):
    ...
    tfforensics.errors.UserError: data/manifest.json: field 'classes' is missing; re-run prepare.
    """


class MissingInputError(UserError, FileNotFoundError):
    """A named input file or directory does not exist (a :class:`UserError` and a ``FileNotFoundError``)."""
