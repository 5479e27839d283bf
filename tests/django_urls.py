"""The Django views and URLconf of tests/test_django.py (its ``ROOT_URLCONF``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.views import View

from oauthguard import InsufficientScope, require
from oauthguard.django import access_token, token_required


def seen(request: HttpRequest) -> JsonResponse:
    """What a view saw of the token: ``access_token`` and the raw ASGI scope agree."""
    token = access_token(request)
    assert token is not None and request.scope["auth"] is token
    return JsonResponse({"sub": token.subject, "scopes": sorted(token.scopes)})


@token_required("orders:read")
def list_orders(request: HttpRequest) -> HttpResponse:
    return seen(request)


@token_required(require("orders:write"))
async def create_order(request: HttpRequest) -> HttpResponse:
    return seen(request)


@token_required(any_scopes="reports:read admin")
async def reports(request: HttpRequest) -> HttpResponse:
    return seen(request)


@method_decorator(token_required("admin"), name="dispatch")
class Admin(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return seen(request)


class AsyncAdmin(View):
    @method_decorator(token_required("admin"))
    async def get(self, request: HttpRequest) -> HttpResponse:
        return seen(request)


@token_required("orders:read", clients="console", claims={"tenant": "acme"}, actors=["mcp-server"])
def console(request: HttpRequest) -> HttpResponse:
    return seen(request)


def me(request: HttpRequest) -> HttpResponse:
    return seen(request)


def by_hand(request: HttpRequest) -> HttpResponse:
    raise InsufficientScope("only the owner may do this", scope="orders:own")


async def by_hand_async(request: HttpRequest) -> HttpResponse:
    raise InsufficientScope("only the owner may do this", scope="orders:own")


def health(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"auth": access_token(request)})


@token_required("admin")
def public_page(request: HttpRequest) -> HttpResponse:
    return seen(request)


urlpatterns: list[Any] = [
    path("api/orders", list_orders),
    path("api/orders/new", create_order),
    path("api/reports", reports),
    path("api/admin", Admin.as_view()),
    path("api/async-admin", AsyncAdmin.as_view()),
    path("api/console", console),
    path("api/me", me),
    path("api/ruled", me),
    path("api/by-hand", by_hand),
    path("api/by-hand-async", by_hand_async),
    path("health", health),
    path("public/page", public_page),
]
