"""The ``oauthguard`` command: ``inspect`` a token, ``check`` an issuer, run a development
``issuer``. Exit statuses: 0 accepted or usable, 1 refused or unusable, 2 a usage or input
error, 3 the issuer could not be reached, 4 an unexpected error (see docs/guides/command.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from oauthguard._cli import check, inspect, issuer
from oauthguard._cli.report import INTERNAL, USAGE, Report, UsageError, render_json, render_text

INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def parser() -> argparse.ArgumentParser:
    """The command line: a subcommand and its options, and the options every one takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object (stable)")
    common.add_argument("-v", "--verbose", action="store_true", help="print the library's logs")
    common.add_argument(
        "--allow-http",
        action="store_true",
        help="allow plain http on hosts other than loopback (a development server)",
    )
    common.add_argument("--timeout", type=positive, default=5.0, help="seconds per HTTP call")
    top = argparse.ArgumentParser(
        prog="oauthguard",
        description="Explain tokens, check issuers and run a development issuer.",
        epilog="exit status: 0 accepted/usable, 1 refused/unusable, 2 usage or input error, "
        "3 issuer unreachable, 4 unexpected error",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (inspect, check, issuer):
        module.add_parser(_WithCommon(commands, common))
    return top


class _WithCommon:
    """Adds the shared options to every subcommand's parser."""

    def __init__(
        self,
        commands: argparse._SubParsersAction[argparse.ArgumentParser],
        common: argparse.ArgumentParser,
    ) -> None:
        self.commands = commands
        self.common = common

    def add_parser(self, name: str, **options: Any) -> argparse.ArgumentParser:
        made: argparse.ArgumentParser = self.commands.add_parser(
            name, parents=[self.common], **options
        )
        return made


def positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 < number <= 600:
        raise argparse.ArgumentTypeError(f"{value!r} is not between 0 and 600 seconds")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; its exit status. Errors go to stderr, never as a traceback."""
    args = parser().parse_args(argv)
    try:
        result = args.run(args)
    except UsageError as exc:
        sys.stderr.write(f"oauthguard {args.command}: {exc}\n")
        return USAGE
    except KeyboardInterrupt:
        sys.stderr.write(f"oauthguard {args.command}: interrupted\n")
        return INTERRUPTED
    except Exception as exc:  # a bug of ours: one line, never a traceback
        sys.stderr.write(
            f"oauthguard {args.command}: unexpected error ({type(exc).__name__}: {exc}); "
            "please report it\n"
        )
        return INTERNAL
    if isinstance(result, Report):
        (render_json if args.json else render_text)(result, sys.stdout)
        return result.exit_code
    return int(result)
