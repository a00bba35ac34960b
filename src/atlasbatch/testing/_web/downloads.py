"""Result files: ``/static/results/jobNNNNN.txt`` (Apache) and ``/queue/<id>/data.txt`` (Django).

Neither is authenticated or throttled. A file exists from the moment a task finishes (also the
header-only file of a "No data returned" task) until the task is deleted, purged, or the
``expire_after`` fault removes it; ``truncate_rate`` cuts a download in the middle of a line.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from .._scope import fault_applies
from .._state.store import Store
from .._state.tasks import Task
from .._web.api import APACHE_404_HTML, DJANGO_404_HTML, html_response

__all__ = ["ResultFiles", "truncate"]

_RESULT_NAME = re.compile(r"^job(\d+)\.txt$")


def truncate(text: str) -> str:
    """Cut the file in the middle of a line (about 60% in, never on a line boundary)."""
    cut = int(len(text) * 0.6)
    line_start = text.rfind("\n", 0, cut) + 1
    line_end = text.find("\n", line_start)
    line_end = len(text) if line_end < 0 else line_end
    return text[: line_start + max(1, (line_end - line_start) // 2)]


class ResultFiles:
    """The two download endpoints."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def data_txt(self, request: Request) -> Response:
        """``/queue/<id>/data.txt``: Django's 404 page when there is no file."""
        with self.store.lock:
            self.store.advance()
            task = self.store.get(int(request.path_params["task_id"]))
            return self._serve(task, DJANGO_404_HTML, request.method)

    async def static_result(self, request: Request) -> Response:
        """``/static/results/job{id:05d}.txt``: Apache's 404 page when there is no file."""
        name = str(request.path_params["name"])
        match = _RESULT_NAME.match(name)
        with self.store.lock:
            self.store.advance()
            task = None
            if match is not None and name == f"job{int(match.group(1)):05d}.txt":
                task = self.store.get(int(match.group(1)))
            return self._serve(task, APACHE_404_HTML, request.method)

    def _serve(self, task: Task | None, not_found: str, method: str) -> Response:
        text = None if task is None else self.store.result_text(task)
        if text is None:
            return html_response(not_found, 404)
        self.store.stats.downloads += 1
        faults = self.store.faults
        in_scope = fault_applies(faults, "truncate", method.upper(), "results")
        if in_scope and self.store.draw(faults.truncate_rate):
            self.store.stats.faults["truncated"] += 1
            text = truncate(text)
        return Response(text, media_type="text/plain")
