"""The ``oauthguard`` command: ``inspect`` a token, ``check`` an issuer, run a development
``issuer``. Exit statuses: 0 accepted or usable, 1 refused or unusable, 2 a usage or input
error, 3 the issuer could not be reached, 4 an unexpected error (see docs/guides/command.md)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from oauthguard._cli import check, inspect, issuer
from oauthguard._cli.common import Streams
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


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command with the arguments ``argv`` (default: the process's); its exit
    status. It reads and writes the streams given (default: the process's own). Errors go
    to ``stderr`` as one line, never as a traceback."""
    streams = Streams(stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr)
    try:  # argparse writes its usage errors and --help to sys.stdout and sys.stderr
        with contextlib.redirect_stdout(streams.stdout), contextlib.redirect_stderr(streams.stderr):
            args = parser().parse_args(argv)
    except SystemExit as exited:  # --help (0) or bad arguments (2), already printed
        return exited.code if isinstance(exited.code, int) else USAGE
    try:
        result = args.run(args, streams)
        if isinstance(result, Report):
            (render_json if args.json else render_text)(result, streams.stdout)
            return result.exit_code
        return int(result)
    except UsageError as exc:
        streams.stderr.write(f"oauthguard {args.command}: {exc}\n")
        return USAGE
    except KeyboardInterrupt:
        streams.stderr.write(f"oauthguard {args.command}: interrupted\n")
        return INTERRUPTED
    except Exception as exc:  # a bug of ours, or an output that cannot print the report
        streams.stderr.write(
            f"oauthguard {args.command}: unexpected error ({type(exc).__name__}: {exc}); "
            "please report it\n"
        )
        return INTERNAL
