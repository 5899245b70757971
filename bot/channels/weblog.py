"""The access log of the bot's web servers: what was asked and answered, nothing more.

aiohttp's own line holds the request line with its query string (Facebook's
`hub.verify_token` arrives there), the caller's address and their browser. Here a line is
the method, the path without the query, the status and the time taken, for every server
the bot starts (`web.AppRunner(..., access_log_class=AccessLog)`).
"""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse


class AccessLog(AbstractAccessLogger):
    """One line a request: `POST /messenger/webhook 200 0.004s`."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        """Log the request without its query string (secrets) or who sent it."""
        # The raw path keeps percent-escapes, so a line break typed in a URL stays "%0A".
        # Every update is a request: the ordinary ones are DEBUG, refusals and errors INFO.
        level = logging.DEBUG if response.status < 400 else logging.INFO
        self.logger.log(
            level, "%s %s %s %.3fs", request.method, request.rel_url.raw_path, response.status,
            time,
        )  # fmt: skip

    @property
    def enabled(self) -> bool:
        """Whether a line would be written at all (aiohttp skips the work otherwise)."""
        return self.logger.isEnabledFor(logging.INFO)
