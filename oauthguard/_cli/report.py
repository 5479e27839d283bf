"""What a command found: its checks, each passed or failed with the fix, in text or JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

#: The exit statuses of every command (documented in docs/guides/command.md).
ACCEPTED = 0  # inspect: the guard would accept the token; check: it could use the issuer
REFUSED = 1  # the guard would refuse the token (401) / could not use the issuer
USAGE = 2  # bad arguments or input: a malformed URL or token, http without the opt-in
UNAVAILABLE = 3  # the issuer could not be reached: the guard would answer 503 for now
INTERNAL = 4  # an unexpected error of the command's own (a bug: please report it)

#: The version of the ``--json`` shape; a change that removes or renames a member bumps it.
JSON_VERSION = 1

Status = Literal["pass", "fail", "warn", "skip"]
SYMBOLS: Mapping[Status, str] = {"pass": "✓", "fail": "✗", "warn": "!", "skip": "-"}


class UsageError(Exception):
    """Bad arguments or input: the message is shown on stderr, the exit status is 2."""


@dataclass
class Step:
    """One check: its name, whether it passed, what was found and, when it failed, the fix."""

    name: str
    status: Status
    detail: str
    fix: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass
class Report:
    """A command's result: its checks, a one-line verdict and the exit status it gives."""

    command: str
    subject: str
    steps: list[Step] = field(default_factory=list)
    verdict: str = ""
    exit_code: int = REFUSED
    #: What the command shows before its checks (inspect: the unverified header and claims).
    sections: dict[str, Any] = field(default_factory=dict)
    #: What the text output says after each section's title ("(unverified)").
    sections_note: str = ""
    #: More members of the JSON shape (check: the metadata URL, the keys, the clock offset).
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, status: Status, detail: str, fix: str | None = None) -> Step:
        step = Step(name, status, one_line(detail), None if fix is None else one_line(fix))
        self.steps.append(step)
        return step

    def failed(self, name: str) -> bool:
        return any(step.name == name and step.status == "fail" for step in self.steps)

    def as_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "command": self.command,
            "subject": self.subject,
            "ok": self.exit_code == ACCEPTED,
            "exit_code": self.exit_code,
            "verdict": self.verdict,
            **self.sections,
            **self.facts,
            "checks": [step.as_json() for step in self.steps],
        }


def printable(text: str) -> str:
    """``text`` with anything not printable (terminal escapes a token may carry) escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in text)


def one_line(text: str) -> str:
    """``text`` with anything not printable escaped, newlines too: a line no token or
    answer quoted in it can split or forge."""
    return (
        text
        if text.isprintable()
        else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    )


#: The deepest nesting shown indented: each level repeats on every line below it, so a
#: token nesting deeper would print (and hold in memory) its size times its depth.
MAX_INDENTED_DEPTH = 8


def indent_for(value: object, deepest: int = MAX_INDENTED_DEPTH) -> int | None:
    """2 for a value nesting no deeper than ``deepest``; None (one line) otherwise."""
    return 2 if nesting_depth(value, deepest) <= deepest else None


def nesting_depth(value: object, limit: int) -> int:
    """How deeply ``value`` nests lists and dicts (0 for a scalar), found without recursion
    and no further than one level past ``limit``."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if not isinstance(item, dict | list):
            continue
        deepest = max(deepest, depth)
        if depth > limit:
            break
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children)
    return deepest


def render_text(report: Report, out: TextIO) -> None:
    """The report for a person: sections as indented JSON, one line per check, the verdict."""
    for title, value in report.sections.items():
        out.write(f"{title.replace('_', ' ')}{report.sections_note}:\n")
        shown = json.dumps(value, indent=indent_for(value), ensure_ascii=False, default=str)
        out.write("".join(f"  {line}\n" for line in printable(shown).splitlines()))
    if report.sections:
        out.write("\n")
    width = max((len(step.name) for step in report.steps), default=0)
    for step in report.steps:
        out.write(f"{SYMBOLS[step.status]} {step.name.ljust(width)}  {step.detail}\n")
        if step.fix:
            out.write(f"  {' ' * width}  fix: {step.fix}\n")
    out.write(f"\n{one_line(report.verdict)}\n")


def render_json(report: Report, out: TextIO) -> None:
    """The report for a script: one JSON object (the shape of docs/guides/command.md)."""
    document = report.as_json()
    text = json.dumps(document, indent=indent_for(document, MAX_INDENTED_DEPTH + 1), default=str)
    out.write(_JSON_ESCAPE.sub(_quoted_surrogate, text))
    out.write("\n")


# A JSON escape, scanned left to right: a surrogate pair, a lone surrogate, any other.
_JSON_ESCAPE = re.compile(r"\\ud[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}|\\ud[89a-f][0-9a-f]{2}|\\.")


def _quoted_surrogate(escape: re.Match[str]) -> str:
    """RFC 8259 §8.2 / RFC 7493 §2.1: a lone surrogate (which a token's JSON may hold) is
    written as the text ``\\udXXXX``, as the text output shows it; strict parsers refuse
    the escape itself."""
    found = escape.group()
    return "\\" + found if len(found) == 6 else found
