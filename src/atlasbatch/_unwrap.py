"""Task-group errors as the caller should see them: the one AtlasBatchError that stopped a run.

anyio's task groups raise an ``ExceptionGroup`` whenever a child task fails, often nested
(the pipeline's group inside the CLI's), which prints as a 70-line traceback. What stopped
the run is one :class:`AtlasBatchError` inside (a full disk, a rejected certificate, a
refused token); the CLI and the Python API both re-raise that one, its cause kept.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from atlasbatch._exceptions import AtlasBatchError

__all__ = ["first_error", "unwrapped"]


def first_error(
    group: BaseExceptionGroup[BaseException],
) -> AtlasBatchError | KeyboardInterrupt | None:
    """The first atlasbatch error (else a KeyboardInterrupt) inside nested groups, or None."""
    interrupt: KeyboardInterrupt | None = None
    for exc in group.exceptions:
        found: BaseException | None = exc
        if isinstance(exc, BaseExceptionGroup):
            found = first_error(exc)
        if isinstance(found, AtlasBatchError):
            return found
        if isinstance(found, KeyboardInterrupt) and interrupt is None:
            interrupt = found
    return interrupt


@contextlib.contextmanager
def unwrapped() -> Iterator[None]:
    """Re-raise the atlasbatch error inside a task group's exception group as itself.

    A group holding no atlasbatch error (a bug) propagates unchanged, with every traceback.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        leaf = first_error(group)
        if leaf is None:
            raise
        # ``from leaf.__cause__`` keeps the real cause (the OSError of a full disk) and
        # hides the group, which says nothing more.
        raise leaf from leaf.__cause__
