"""Calls to the Hugging Face Hub, retried: transient errors (HTTP 408, 429, 5xx, connection errors,
timeouts) are retried with exponential backoff; a 401/403 becomes a :class:`~hf_rerank.hub.errors.HubAuthError`
saying what to do; anything else passes through."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from hf_rerank.hub.errors import HubAuthError, PublishError

logger = logging.getLogger("hf_rerank")

TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
AUTH_FAILED = (
    "the Hugging Face Hub refused the token ({why}). Set HF_TOKEN to a valid token with write access "
    "(https://huggingface.co/settings/tokens) or run `hf auth login`, then publish again"
)


@dataclass(frozen=True)
class Retry:
    """Retries of transient Hub errors: ``attempts`` tries, waiting ``base_delay * 2**i`` s (at most ``max_delay``)."""

    attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 60.0

    def call(self, what: str, function, *args, **kwargs):
        """``function(*args, **kwargs)``, retried on transient errors; 401/403 raise :class:`HubAuthError`."""
        for attempt in range(1, self.attempts + 1):
            try:
                return function(*args, **kwargs)
            except Exception as error:
                status = http_status(error)
                if status in (401, 403):
                    why = (
                        "401 Unauthorized"
                        if status == 401
                        else "403 Forbidden: no write access to this namespace or repository"
                    )
                    raise HubAuthError(f"{what}: " + AUTH_FAILED.format(why=why)) from None
                if not is_transient(error) or attempt == self.attempts:
                    if is_transient(error):
                        raise PublishError(
                            f"{what}: still failing after {attempt} attempts ({describe(error)})"
                        ) from error
                    raise
                delay = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
                logger.warning(
                    "%s: %s; retrying in %.1f s (attempt %d of %d)",
                    what,
                    describe(error),
                    delay,
                    attempt + 1,
                    self.attempts,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")


def causes(error: BaseException):
    """``error`` and the exceptions it was raised from (huggingface_hub wraps upload errors)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def http_status(error: BaseException) -> int | None:
    from huggingface_hub.errors import HfHubHTTPError

    for cause in causes(error):
        if isinstance(cause, HfHubHTTPError) and cause.response is not None:
            return cause.response.status_code
    return None


def is_transient(error: BaseException) -> bool:
    """HTTP 408/429/5xx, or a connection error or timeout anywhere in the cause chain."""
    import httpx2

    return http_status(error) in TRANSIENT_STATUS or any(
        isinstance(cause, (httpx2.TransportError, ConnectionError, TimeoutError)) for cause in causes(error)
    )


def describe(error: BaseException) -> str:
    status = http_status(error)
    return f"HTTP {status}" if status else type(error).__name__
