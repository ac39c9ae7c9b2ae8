"""Reading request bodies: the size limit and the JSON content type, for every route that
takes a body (the demo kv routes and the admin routes)."""

from __future__ import annotations

from aiohttp import web

from broker.api.errors import ApiError, ErrorCode

MAX_REQUEST_BODY_BYTES = 1024 * 1024


def too_large(request: web.Request) -> ApiError:
    length = request.content_length
    size = f"of {length} bytes " if length is not None else ""
    return ApiError(
        ErrorCode.REQUEST_TOO_LARGE,
        f"request body {size}is larger than the limit of {MAX_REQUEST_BODY_BYTES} bytes",
    )


async def read_json_body(request: web.Request) -> bytes:
    """The raw body of a JSON request, refusing other content types and oversized bodies."""
    length = request.content_length
    if length is not None and length > MAX_REQUEST_BODY_BYTES:
        raise too_large(request)
    if request.content_type != "application/json":
        sent = request.headers.get("Content-Type", "(none)")
        raise ApiError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type {sent!r} is not accepted; send the body as application/json",
        )
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        # Chunked bodies carry no Content-Length; aiohttp stops reading past client_max_size.
        raise too_large(request) from None
