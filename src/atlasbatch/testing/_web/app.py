"""The routes under ``/forcedphot``: token, task list/create, task detail/edit/delete, results."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Match, Route
from starlette.types import Scope

from .._serializer.fields import FieldValue, JsonValue
from .._serializer.radeclist import split_radeclist
from .._serializer.validation import BadRequestError, validate_task
from .._state.store import Store
from .._state.tasks import Task, User
from .._web.api import (
    DJANGO_404_HTML,
    ApiError,
    authenticate,
    check_format,
    detail_response,
    html_response,
    json_response,
    parse_body,
    prelude,
)
from .._web.downloads import ResultFiles
from .._web.imageviews import ImageViews
from .._web.listing import list_tasks

__all__ = ["PREFIX", "create_app"]

PREFIX = "/forcedphot"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_DESCRIPTION = "API endpoint that allows force.sh tasks to be created and deleted."
_PARSES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]


def _not_allowed(method: str) -> ApiError:
    return ApiError(detail_response(405, f'Method "{method}" not allowed.'))


def _options(name: str) -> Response:
    body: JsonValue = {
        "name": name,
        "description": _DESCRIPTION,
        "renders": ["application/json", "text/html"],
        "parses": list(_PARSES),
    }
    return json_response(body)


def _etag(*parts: object) -> str:
    text = "\x1f".join(str(part) for part in parts)
    return '"' + hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest() + '"'


def _full_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


class Views:
    """The endpoints; each takes the store lock for its whole synchronous part."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def token_auth(self, request: Request) -> Response:
        body = await request.body()
        with self.store.lock:
            try:
                check_format(request, None)
                self.store.advance()
                authenticate(request, self.store)
                if request.method != "POST":
                    raise _not_allowed(request.method)
                data, _ = parse_body(request, body)
                return self._obtain_token(data)
            except ApiError as exc:
                return exc.response

    def _obtain_token(self, data: object) -> Response:
        fields = data if isinstance(data, Mapping) else {}
        errors: dict[str, JsonValue] = {
            name: ["This field is required."]
            for name in ("username", "password")
            if not isinstance(fields.get(name), str) or not fields.get(name)
        }
        if errors:
            return json_response(errors, 400)
        user = self.store.user_for_password(str(fields["username"]), str(fields["password"]))
        if user is None:
            body: JsonValue = {"non_field_errors": ["Unable to log in with provided credentials."]}
            return json_response(body, 400)
        return json_response({"token": user.token})

    async def queue(self, request: Request) -> Response:
        body = await request.body()
        suffix = "json" if request.url.path.endswith(".json") else None
        with self.store.lock:
            try:
                user, now = prelude(request, self.store, suffix=suffix)
                method = request.method
                if method in ("GET", "HEAD"):
                    return self._list(request, user)
                if method == "POST":
                    assert user is not None
                    return self._create(request, body, user, now)
                if method == "OPTIONS":
                    return _options("Force Phot Task List")
                raise _not_allowed(method)
            except ApiError as exc:
                return exc.response
            except BadRequestError as exc:
                return json_response(exc.body, 400)

    def _list(self, request: Request, user: User | None) -> Response:
        if user is None:
            raise ApiError(
                detail_response(403, "You do not have permission to perform this action.")
            )
        etag = _etag("json", user.id, _full_path(request), self.store.list_state(user))
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304)
        page = list_tasks(self.store, user, request)
        return json_response(page, headers={"ETag": etag})

    def _create(self, request: Request, raw: bytes, user: User, now: float) -> Response:
        data, is_form = parse_body(request, raw)
        default_min = self.store.mjd_min_default(now)

        def validate(row: Mapping[str, object]) -> dict[str, FieldValue]:
            return validate_task(row, is_form=is_form, mjd_min_default=default_min)

        is_batch = isinstance(data, Mapping) and "radeclist" in data
        rows = split_radeclist(data, validate) if isinstance(data, Mapping) and is_batch else []
        requested = len(rows) if is_batch else 1
        queued = self.store.unstarted_count(user)
        cap = self.store.config.max_queued
        if queued + requested > cap:
            self.store.stats.cap_rejections += 1
            message = (
                f"ERROR: You have too many queued tasks ({queued} queued + {requested} "
                f"requested > {cap})."
            )
            return json_response({"non_field_errors": message}, 400)
        if not is_batch:
            if not isinstance(data, Mapping):
                kind = type(data).__name__
                message = f"Invalid data. Expected a dictionary, but got {kind}."
                return json_response({"non_field_errors": [message]}, 400)
            rows = [validate(data)]
        tasks = self.store.create(user, rows, now)
        bodies: list[JsonValue] = [self.store.serialize(task, user) for task in tasks]
        if is_batch:
            return json_response(bodies, 201)
        task_url = f"{self.store.base_url}/queue/{tasks[0].id}/"
        return json_response(bodies[0], 201, {"Location": task_url})

    async def task(self, request: Request) -> Response:
        body = await request.body()
        suffix = "json" if request.url.path.endswith(".json") else None
        task_id = int(request.path_params["task_id"])
        with self.store.lock:
            try:
                user, now = prelude(request, self.store, suffix=suffix)
                return self._task_action(request, body, user, now, task_id)
            except ApiError as exc:
                return exc.response
            except BadRequestError as exc:
                return json_response(exc.body, 400)

    def _task_action(
        self, request: Request, raw: bytes, user: User | None, now: float, task_id: int
    ) -> Response:
        method = request.method
        if method == "POST":
            raise _not_allowed(method)
        if method == "OPTIONS":
            return _options("Force Phot Task Instance")
        task = self.store.get(task_id)
        if task is None:
            return detail_response(404, "No Task matches the given query.")
        if task.archived:
            if method == "DELETE" and user is not None and self._may_write(user, task):
                return Response(status_code=204)
            return html_response("Page not found", 404)
        if method in ("GET", "HEAD"):
            return self._retrieve(request, task, user)
        assert user is not None
        if not self._may_write(user, task):
            return detail_response(403, "You must be the owner of this object.")
        if method == "DELETE":
            self.store.delete(task)
            return Response(status_code=204)
        data, is_form = parse_body(request, raw)
        if not isinstance(data, Mapping):
            message = f"Invalid data. Expected a dictionary, but got {type(data).__name__}."
            return json_response({"non_field_errors": [message]}, 400)
        attrs = validate_task(
            data,
            is_form=is_form,
            mjd_min_default=self.store.mjd_min_default(now),
            partial=method == "PATCH",
            instance=task.fields,
        )
        self.store.update(task, attrs)
        return json_response(self.store.serialize(task, user))

    @staticmethod
    def _may_write(user: User, task: Task) -> bool:
        return user.is_staff or task.user is user

    def _retrieve(self, request: Request, task: Task, user: User | None) -> Response:
        body = self.store.serialize(task, user)
        etag = _etag("json", _full_path(request), body)
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304)
        return json_response(body, headers={"ETag": etag})

    async def stats(self, request: Request) -> Response:
        del request
        with self.store.lock:
            self.store.advance()
            return json_response(self.store.snapshot())  # type: ignore[arg-type]


def _slash_redirect(app: Starlette) -> Callable[[Request], Awaitable[Response]]:
    async def not_found(request: Request) -> Response:
        path = request.url.path
        if not path.endswith("/"):
            scope: Scope = {**request.scope, "path": path + "/"}
            if any(route.matches(scope)[0] == Match.FULL for route in app.router.routes):
                query = request.url.query
                return RedirectResponse(path + "/" + (f"?{query}" if query else ""), 301)
        return html_response(DJANGO_404_HTML, 404)

    return not_found


def create_app(store: Store) -> Starlette:
    """The Starlette application (without the fault/stats middleware)."""
    views = Views(store)
    files = ResultFiles(store)
    images = ImageViews(store, prefix=PREFIX)
    task_path = f"{PREFIX}/queue/{{task_id:int}}"
    job_path = f"{PREFIX}/static/results/job{{task_id:int}}"
    routes = [
        Route(f"{PREFIX}/api-token-auth/", views.token_auth, methods=ALL_METHODS),
        Route(f"{PREFIX}/queue/", views.queue, methods=ALL_METHODS),
        Route(f"{PREFIX}/queue.json", views.queue, methods=ALL_METHODS),
        Route(f"{PREFIX}/queue/{{task_id:int}}/", views.task, methods=ALL_METHODS),
        Route(f"{PREFIX}/queue/{{task_id:int}}.json", views.task, methods=ALL_METHODS),
        Route(f"{PREFIX}/queue/{{task_id:int}}/data.txt", files.data_txt, methods=["GET"]),
        Route(f"{task_path}/requestimages/", images.request_images, methods=ALL_METHODS),
        Route(f"{task_path}/images.zip", images.queue_zip, methods=["GET"]),
        Route(f"{task_path}/preview.jpg", images.queue_preview, methods=["GET"]),
        Route(f"{job_path}.zip", images.static_zip, methods=["GET"]),  # before {name} below
        Route(f"{job_path}.jpg", images.static_preview, methods=["GET"]),
        Route(f"{PREFIX}/static/results/{{name}}", files.static_result, methods=["GET"]),
        Route(f"{PREFIX}/_emulator/stats.json", views.stats, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.router.redirect_slashes = False
    not_found = _slash_redirect(app)

    async def handle_404(request: Request, exc: Exception) -> Response:
        del exc
        return await not_found(request)

    app.add_exception_handler(404, handle_404)
    return app
