"""The image endpoints: ``POST /queue/<id>/requestimages/`` and the zip and preview files.

``requestimages`` (§14) is not throttled; it checks, in this order: the method (405), the
credentials (401), a non-archived FP task (404, Django's plain ``Page not found``), the
owner (403), the user's live IMGZIP tasks (429 at five, §10, a plain-string
``non_field_errors``), and then creates the child only for a finished, error-free parent;
either way it answers 302, to ``/queue/?newids=<child id>`` when it made one and to
``/queue/`` when not.

The files (§2, §12), neither authenticated nor throttled: ``/queue/<id>/images.zip`` (an
image request's id, or its parent's) and ``/static/results/job{parent:05d}.zip``;
``/queue/<id>/preview.jpg`` and ``/static/results/job{id:05d}.jpg``. The ``truncate``
fault cuts them like result files.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .._scope import fault_applies
from .._sky.stamps import image_zip, preview_jpeg
from .._state.images import (
    MAX_USER_IMGZIP_TASKS,
    has_preview,
    has_zip,
    is_image,
    too_many_text,
    zip_owner,
)
from .._state.store import Store
from .._state.tasks import Task
from .._web.api import (
    APACHE_404_HTML,
    DJANGO_404_HTML,
    ApiError,
    authenticate,
    detail_response,
    html_response,
    json_response,
)

__all__ = ["ImageViews"]

_WWW_AUTHENTICATE = 'Basic realm="api"'


class ImageViews:
    """The four image routes of one store."""

    def __init__(self, store: Store, *, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    async def request_images(self, request: Request) -> Response:
        """``POST /queue/<id>/requestimages/``: make an IMGZIP child of a finished FP task."""
        await request.body()
        task_id = int(request.path_params["task_id"])
        with self.store.lock:
            try:
                return self._request(request, task_id)
            except ApiError as exc:
                return exc.response

    def _request(self, request: Request, task_id: int) -> Response:
        now = self.store.advance()
        user = authenticate(request, self.store)
        if request.method != "POST":
            return detail_response(405, f'Method "{request.method}" not allowed.')
        if user is None:
            text = "Authentication credentials were not provided."
            return detail_response(401, text, {"WWW-Authenticate": _WWW_AUTHENTICATE})
        parent = self.store.get(task_id)
        if parent is None or parent.archived or is_image(parent):
            return html_response("Page not found", 404)
        if not (user.is_staff or parent.user is user):
            return detail_response(403, "You must be the owner of this object.")
        live = self.store.live_images(parent.user)
        if live >= MAX_USER_IMGZIP_TASKS:
            return json_response({"non_field_errors": too_many_text(live)}, 429)
        if parent.state != "finished" or parent.error_msg is not None:
            return RedirectResponse(f"{self.prefix}/queue/", 302)  # nothing made
        child = self.store.request_images(parent, now)
        return RedirectResponse(f"{self.prefix}/queue/?newids={child.id}", 302)

    async def queue_zip(self, request: Request) -> Response:
        """``/queue/<id>/images.zip``: Django's 404 page when there is no zip."""
        with self.store.lock:
            self.store.advance()
            task = self.store.get(int(request.path_params["task_id"]))
            owner = None if task is None else zip_owner(task)
        return await self._zip(owner, request, DJANGO_404_HTML)

    async def static_zip(self, request: Request) -> Response:
        """``/static/results/job{parent:05d}.zip``: Apache's 404 page when there is none."""
        with self.store.lock:
            self.store.advance()
            parent = self._named(request, "zip")
            owner = None if parent is None else parent.image_child
        return await self._zip(owner, request, APACHE_404_HTML)

    async def queue_preview(self, request: Request) -> Response:
        """``/queue/<id>/preview.jpg``."""
        with self.store.lock:
            self.store.advance()
            task = self.store.get(int(request.path_params["task_id"]))
        return await self._preview(task, DJANGO_404_HTML)

    async def static_preview(self, request: Request) -> Response:
        """``/static/results/job{id:05d}.jpg``."""
        with self.store.lock:
            self.store.advance()
            task = self._named(request, "jpg")
        return await self._preview(task, APACHE_404_HTML)

    def _named(self, request: Request, suffix: str) -> Task | None:
        """The task a static file's name names, when the name is exactly the server's."""
        task_id = int(request.path_params["task_id"])
        if not request.url.path.endswith(f"/job{task_id:05d}.{suffix}"):
            return None
        return self.store.get(task_id)

    async def _zip(self, owner: Task | None, request: Request, not_found: str) -> Response:
        with self.store.lock:
            parent = owner.parent if owner is not None and has_zip(owner) else None
            if parent is None:
                return html_response(not_found, 404)
            job = parent.job
            mjd = 57000.0 if job is None or job.mjd_min is None else job.mjd_min
            ra, dec = _coordinate(parent.fields["ra"]), _coordinate(parent.fields["dec"])
        data = await run_in_threadpool(image_zip, parent.id, ra=ra, dec=dec, mjd=mjd)
        return self._file(data, "application/zip", request.method)

    async def _preview(self, task: Task | None, not_found: str) -> Response:
        with self.store.lock:
            if task is None or not has_preview(task):
                return html_response(not_found, 404)
        data = await run_in_threadpool(preview_jpeg, task.id)
        return self._file(data, "image/jpeg", "GET")

    def _file(self, data: bytes, media_type: str, method: str) -> Response:
        with self.store.lock:
            faults = self.store.faults
            in_scope = fault_applies(faults, "truncate", method.upper(), "results")
            if in_scope and self.store.draw(faults.truncate_rate):
                self.store.stats.faults["truncated"] += 1
                data = data[: len(data) * 6 // 10]
        return Response(data, media_type=media_type)


def _coordinate(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
