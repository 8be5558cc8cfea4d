"""`sealer`: parse the command line and dispatch. Every user-facing error is one line, exit 1."""

from __future__ import annotations

import os
import sys

from cluster.errors import InputError, SealerError, UnreadHosts
from sealer_cli.parser import LOG_LEVELS, build_parser

GROUPS = {
    "image": "image_command",
    "state": "state_command",
    "sandbox": "sandbox_command",
    "connections": "connections_command",
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    if args.command in GROUPS and not getattr(args, GROUPS[args.command]):
        parser.parse_args([args.command, "--help"])
    try:
        start_log(getattr(args, "log_level", None) or os.environ.get("SEALER_LOG", ""))
    except (ValueError, OSError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    from sealer_cli.commands import report_retries  # late: `--help` loads no operation

    try:
        return _run(args)
    finally:
        report_retries()  # after the command's own error, if any


def _run(args) -> int:
    """The command, with every error as one line on stderr and its exit code."""
    from sealer_cli.commands import run_command

    try:
        return run_command(args)
    except InputError as e:
        for line in e.problems:
            print(line, file=sys.stderr)
        return 1
    except UnreadHosts as e:  # each host and why, then the one-line error
        if not getattr(args, "json", False):
            from views.text import render_unread, use_colour

            sys.stdout.write(render_unread(e.hosts, use_colour(), e.joining))
        print(f"Error: {e}", file=sys.stderr)
        return e.exit_code
    except SealerError as e:
        print(f"Error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:  # a bug: still one line, with a way to see more
        import logging

        logging.getLogger("sealer").error("internal error", exc_info=True)  # with --log-level
        if os.environ.get("SEALER_DEBUG"):
            raise
        print(
            f"Error: internal error: {type(e).__name__}: {e} (set SEALER_DEBUG=1 for a "
            f"traceback, and please report it)",
            file=sys.stderr,
        )
        return 1


def start_log(level: str) -> None:
    """--log-level / SEALER_LOG: sealer's loggers (sealer.ssh: each remote command, masked;
    sealer.apply: each action, internal errors with their tracebacks) to stderr, or to the
    file SEALER_LOG_PATH names (appended), as Terraform's TF_LOG and TF_LOG_PATH."""
    if not level:
        return
    import logging

    if level.lower() not in LOG_LEVELS:
        raise ValueError(f"SEALER_LOG: {level!r} is not one of {', '.join(LOG_LEVELS)}")
    path = os.environ.get("SEALER_LOG_PATH", "")
    handler = logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("sealer")
    logger.addHandler(handler)
    logger.setLevel(level.upper())


if __name__ == "__main__":
    sys.exit(main())
