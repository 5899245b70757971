"""The routes every web server of the bot carries besides its webhook: `/healthz` for the
proxy, and `/metrics` for whoever runs the server (only with METRICS_TOKEN, and only for a
request that carries it)."""

from __future__ import annotations

import hmac

from aiohttp import web

from bot.app import App
from bot.metrics import CONTENT_TYPE
from db import broadcasts as broadcast_store
from db import queries


def add_service_routes(web_app: web.Application, app: App) -> None:
    """`/healthz`, and `/metrics` when METRICS_TOKEN is set (404 otherwise)."""

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_app.router.add_get("/healthz", healthz)
    token = app.settings.metrics_token
    if token is None:
        return
    expected = f"Bearer {token.get_secret_value()}".encode()

    async def metrics(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return web.Response(status=401, text="unauthorized")
        async with app.conversation.sessions() as session:
            app.metrics.signatures.set(await queries.counted_signatures(session))
            app.metrics.outbox.set(await broadcast_store.outbox_depth(session))
        return web.Response(body=app.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    web_app.router.add_get("/metrics", metrics)
