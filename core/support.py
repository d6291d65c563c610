"""What a runtime cannot run of the user's network: the one exception exporters raise for it.

Its own module (not the table of targets) so an exporter that raises it does not read the table, and
adding a row rebuilds nothing.
"""
from __future__ import annotations


class NotSupported(RuntimeError):
    """A runtime cannot run the user's network: raised by an exporter, with the operator, the runtime
    and what to use instead. The build reports the target "not supported by this network: ..." (no
    failure) and every other target still builds, serves and answers."""

    def __init__(self, what: str, runtime: str, instead: str):
        super().__init__(f"{what} ({runtime}); use {instead} instead")
