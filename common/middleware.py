"""Middleware: an optional X-DB-Queries header for benchmarks, and a short chain for the public endpoints."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string


class QueryCountHeaderMiddleware:
    """Adds X-DB-Queries (the request's SQL statements) when LEADCRM_QUERY_COUNT_HEADER is on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not settings.LEADCRM_QUERY_COUNT_HEADER:
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        count = 0

        def counter(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
            nonlocal count
            count += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counter):
            response = self.get_response(request)
        response["X-DB-Queries"] = str(count)
        return response


class PublicEndpointMiddleware:
    """Serves the public endpoints through a short middleware chain; every other URL through the full one.

    ``LEADCRM_PUBLIC_PATHS`` (regular expressions over ``path_info``) name endpoints that have no login and
    read no cookie: the web-form submit URL, posted from other sites hundreds of times a second. They skip
    the session, CSRF, authentication, user-language and messages middleware that follow this one in
    ``MIDDLEWARE`` (~0.2 ms of CPU a request) and pass through ``LEADCRM_PUBLIC_MIDDLEWARE`` only, in that order:
    CORS (their own allowed origins), the browser's language, common and clickjacking headers. Middleware
    listed before this one (security headers, static files) applies to both. Other URLs are untouched.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        paths = list(getattr(settings, "LEADCRM_PUBLIC_PATHS", ()))
        if not paths:
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.public_paths = re.compile("|".join(f"(?:{path})" for path in paths))
        self.public = _ShortChain(list(settings.LEADCRM_PUBLIC_MIDDLEWARE))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.public_paths.match(request.path_info):
            return cast(HttpResponse, self.public.chain(request))
        return self.get_response(request)


class _ShortChain(BaseHandler):
    """A middleware chain of its own around Django's URL resolution and view call (``BaseHandler``'s, sync)."""

    def __init__(self, paths: list[str]) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        handler = convert_exception_to_response(self._get_response)  # type: ignore[attr-defined]  # not in the stubs
        for path in reversed(paths):
            try:
                instance = import_string(path)(handler)
            except MiddlewareNotUsed:
                continue
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self.chain = handler
