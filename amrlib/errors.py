"""The one base of amr-prune's own errors. Every error the project raises for a user to act on is an
:class:`AmrPruneError` (also a ``ValueError`` or ``RuntimeError`` as before, so existing handlers still match),
and carries a ``hint``: what to do next, which the command line prints under the one-line message.
``show_type`` says whether the message reads better prefixed with the class name (``TrackingUnavailable: ...``)
or is already a plain sentence."""
from __future__ import annotations

from typing import ClassVar


class AmrPruneError(Exception):
    #: what the user can do about it (a class default; ``hint=`` on one instance overrides it)
    hint: str = ""
    #: the command line shows ``ClassName: message`` when True, the message alone when False
    show_type: ClassVar[bool] = True

    def __init__(self, *args, hint: str | None = None) -> None:
        super().__init__(*args)
        if hint is not None:
            self.hint = hint
