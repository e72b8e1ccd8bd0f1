"""What stands before every route: the API key and the size of a request body. Both are plain ASGI middleware,
so they guard Hayhooks' routes, the pipelines' and the MCP endpoints alike, and answer in JSON.

The key is read from the environment only (:data:`API_KEY_VARIABLE`), never from the command line, where other
users of the machine could read it in the process list.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from simlm_haystack.errors import SettingsError

#: The environment variable holding the API key; when set, every request needs ``Authorization: Bearer <key>``.
API_KEY_VARIABLE = "SIMLM_HAYSTACK_API_KEY"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def api_key_from_environment(environ: MutableMapping[str, str] | None = None) -> str | None:
    """The API key of :data:`API_KEY_VARIABLE`, or None when it is not set.

    :raises SettingsError: It is set but empty or whitespace (an unprotected server is never the silent result of
        a typo in a deployment's environment).
    """
    value = (os.environ if environ is None else environ).get(API_KEY_VARIABLE)
    if value is None:
        return None
    if not value.strip():
        raise SettingsError(f"{API_KEY_VARIABLE} is set but empty: set it to the key, or unset it to serve without one")
    return value.strip()


async def send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()) -> None:
    """Answer with ``body`` as JSON."""
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class ApiKeyMiddleware:
    """Refuses every HTTP request without ``Authorization: Bearer <key>``: a 401 that says only that a key is
    needed (not whether the one sent was close, nor which routes exist). Keys are compared in constant time.

    :param app: The application guarded.
    :param api_key: The key.
    """

    def __init__(self, app: ASGIApp, *, api_key: str) -> None:
        self.app = app
        self._expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sent = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                sent = value
                break
        if not hmac.compare_digest(sent, self._expected):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await send_json(
                send,
                401,
                {"detail": "Unauthorized: send 'Authorization: Bearer <key>'"},
                [(b"www-authenticate", b"Bearer")],
            )
            return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuses a request body over ``max_bytes`` with a 413, before it is parsed (by its ``Content-Length``, or
    while it arrives when it has none).

    :param app: The application guarded.
    :param max_bytes: The largest body accepted.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_bytes:
                await self._refuse(send, declared.decode(errors="replace"))
                return
            await self.app(scope, receive, send)
            return
        # No declared length (chunked): read the body here, up to the limit, and hand it on whole.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(send, f"more than {self.max_bytes}")
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: str) -> None:
        await send_json(
            send,
            413,
            {"detail": f"Request body of {size} bytes is too large: this server takes at most {self.max_bytes}"},
        )
