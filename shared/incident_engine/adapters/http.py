"""UrllibPoster: the webhook sender's HTTP, with the standard library only (no layer weight)."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from typing import Any


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could lead past the address checks made for the registered URL: never follow.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class UrllibPoster:
    def resolve(self, host: str) -> list[str]:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                response.read(64 * 1024)  # drain a little so the connection closes cleanly
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
