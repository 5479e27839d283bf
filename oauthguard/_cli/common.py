"""What the commands share: the HTTP client that remembers what it was answered, the
library's log lines kept for the report, the token read from an argument or stdin."""

from __future__ import annotations

import contextlib
import email.utils
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO
from urllib.parse import urlsplit

import httpx

from oauthguard._cli.report import UsageError, one_line
from oauthguard._http.urls import INSECURE_HTTP, fetchable, https_or_loopback
from oauthguard._wire.redaction import token_digest

#: The longest token read from stdin; the guard itself refuses any over 16 KiB.
MAX_INPUT_BYTES = 1024 * 1024
#: Schemes a token pasted from an Authorization header may start with.
SCHEMES = ("bearer", "dpop")


@dataclass(frozen=True)
class Streams:
    """Where a command reads its input and writes its output and its errors: the process's
    own streams, or any text streams a caller (a test) hands to ``main``."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO


@dataclass
class Answer:
    """What one server answered: its status, and the headers the reports quote."""

    url: str
    status: int
    date: str | None
    cache_control: str | None
    received_at: float


@dataclass
class Exchanges:
    """Every response the commands' HTTP client received, in order."""

    answers: list[Answer] = field(default_factory=list)

    async def record(self, response: httpx.Response) -> None:
        self.answers.append(
            Answer(
                str(response.request.url),
                response.status_code,
                response.headers.get("date"),
                response.headers.get("cache-control"),
                time.time(),
            )
        )

    def of(self, url: str) -> Answer | None:
        """The last answer from ``url``."""
        for answer in reversed(self.answers):
            if answer.url == url:
                return answer
        return None

    def clock_offset(self) -> float | None:
        """Seconds the servers' clocks are ahead of ours (RFC 9110 §6.6.1 ``Date``: whole
        seconds), from the most recent answer that had a Date; None when none did."""
        for answer in reversed(self.answers):
            if answer.date is None:
                continue
            try:
                sent = email.utils.parsedate_to_datetime(answer.date).timestamp()
            except (TypeError, ValueError):
                continue
            return round(sent - answer.received_at)
        return None


def http_client(exchanges: Exchanges, timeout: float) -> httpx.AsyncClient:
    """The HTTP client the library's fetches run on, each answer recorded."""
    return httpx.AsyncClient(timeout=timeout, event_hooks={"response": [exchanges.record]})


class KeptLogs(logging.Handler):
    """The library's log lines while a command runs (its fetch failures say why), kept for
    the report instead of printed: ``-v`` prints them to stderr too."""

    def __init__(self, echo: TextIO | None) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.echo = echo

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        self.lines.append(line)
        if self.echo is not None:
            self.echo.write(f"{record.levelname.lower()}: {one_line(line)}\n")

    def since(self, start: int, level_word: str = "") -> list[str]:
        return [line for line in self.lines[start:] if level_word in line]


@contextlib.contextmanager
def kept_logs(echo: TextIO | None) -> Iterator[KeptLogs]:
    """Keep the ``oauthguard`` logger's lines for the duration of a command (printed to
    ``echo`` too, when given: ``-v``)."""
    logger = logging.getLogger("oauthguard")
    handler = KeptLogs(echo)
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def checked_url(name: str, value: str, allow_http: bool) -> str:
    """An absolute http(s) URL without query or fragment; plain http only on loopback
    unless opted in. ``UsageError`` naming the option otherwise."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018  # raises ValueError for a port out of range or not a number
    except ValueError:
        raise UsageError(f"{name} {value!r} is not a URL") from None
    if parts.scheme not in ("https", "http") or not host or parts.query or parts.fragment:
        raise UsageError(
            f"{name} {value!r} is not an https URL without query or fragment "
            "(like https://issuer.example.com)"
        )
    if not (https_or_loopback(value) or allow_http or fetchable(value)):
        raise UsageError(
            f"{name} {value!r} is plain http on a host other than loopback: tokens and keys "
            f"could be read and changed on the way. For a development server, pass "
            f"--allow-http (or set {INSECURE_HTTP}=1)"
        )
    return value


def read_token(argument: str | None, stdin: TextIO) -> str:
    """The token given as ``argument``, or read from stdin when it is ``-`` or absent; a
    scheme in front (a pasted ``Authorization`` value) is dropped."""
    if argument is None or argument == "-":
        if argument is None and stdin.isatty():
            raise UsageError("give the token as an argument, or on stdin: ... | oauthguard inspect")
        text = stdin.read(MAX_INPUT_BYTES + 1)
        if len(text) > MAX_INPUT_BYTES:
            raise UsageError(f"the input is longer than {MAX_INPUT_BYTES} bytes: not a token")
    else:
        text = argument
    token = text.strip()
    scheme, _, rest = token.partition(" ")
    if rest and scheme.lower() in SCHEMES:
        token = rest.strip()
    if not token:
        raise UsageError("the token is empty")
    if any(c.isspace() for c in token) or not token.isascii():
        raise UsageError(
            "the token holds spaces or characters outside ASCII: not one token "
            f"(fingerprint {token_digest(token)})"
        )
    return token
