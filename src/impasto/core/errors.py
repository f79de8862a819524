"""One exception type for every mistake a user can make.

The CLI turns an :class:`ImpastoError` into a single line on stderr and exit code 2; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os


class ImpastoError(Exception):
    """A user-facing problem: bad input, bad option, missing resource."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, parameter: str | None = None) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = message
        #: the library parameter at fault (``weights``, ``strength``...); the CLI names its flag instead
        self.parameter = parameter
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)
