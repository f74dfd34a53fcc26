"""How a failure inside Bolt is answered: 500 only when trying again may help.

Slack retries a request answered 500 (three times, over about an hour), which is
what a question needs when Redis or the broker hiccupped: the duplicate claim is
released and the retry goes through. A request whose content a listener cannot
use (a field of the wrong type in a signed but malformed payload) will never
work: it is answered 400, logged and counted, instead of being retried.
"""

from __future__ import annotations

import logging

import redis
from slack_bolt.response import BoltResponse

from chatops import metrics

log = logging.getLogger(__name__)


class EnqueueFailed(Exception):
    """The work could not be put on the queue (the broker is away): Slack should send it again."""


RETRYABLE = (EnqueueFailed, redis.RedisError, ConnectionError, TimeoutError)


def answer_error(error: Exception):
    """Bolt's error handler for listeners and middleware."""
    if isinstance(error, RETRYABLE):
        log.error("could not handle a Slack request; Slack will retry", extra={"error": type(error).__name__})
        return None     # Bolt's 500
    metrics.SLACK_REQUESTS_REFUSED.labels(reason="malformed").inc()
    log.warning("a Slack request this app cannot use; answered 400",
                extra={"error": type(error).__name__, "detail": str(error)[:200]})
    return BoltResponse(status=400, body="malformed Slack payload")
