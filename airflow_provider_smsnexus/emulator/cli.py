"""``smsnexus-emulator``: run a local SMS Nexus server for development.

Prints one start-up line with the base URL and the ``AIRFLOW_CONN_SMSNEXUS_DEFAULT`` value to use,
serves until SIGINT or SIGTERM, then stops cleanly (exit status 0). Without the ``[emulator]`` extra it
says what to install and exits with :data:`EXIT_NOT_INSTALLED` (``--help`` works without it).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.emulator.extra import EmulatorNotInstalledError
from airflow_provider_smsnexus.emulator.settings import (
    DEFAULT_TOKEN,
    LIFECYCLE_AUTO,
    LIFECYCLE_MANUAL,
    NEWEST_FIRST,
    OLDEST_FIRST,
    EmulatorSettings,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

DEFAULT_PORT = 8025
#: The exit status when the web server is missing (the provider was installed without ``[emulator]``).
EXIT_NOT_INSTALLED = 3


def _share(value: str) -> float:
    share = float(value)
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not a share between 0 and 1")
    return share


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return number


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface: one group of options per kind of setting."""
    defaults = EmulatorSettings()
    parser = argparse.ArgumentParser(
        prog="smsnexus-emulator",
        description="A local SMS Nexus API server for developing and testing Airflow DAGs. "
        "Never contacts the real service.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_server_options(parser)
    _add_data_options(parser, defaults)
    _add_limit_options(parser, defaults)
    _add_fault_options(parser)
    _add_drift_options(parser)
    _add_lifecycle_options(parser, defaults)
    return parser


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    server = parser.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on")
    server.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on (0: any free port)")
    server.add_argument(
        "--token",
        action="append",
        dest="tokens",
        metavar="TOKEN",
        default=argparse.SUPPRESS,  # the help says the default: an appended list cannot hold it
        help=f"API token; repeat for more accounts, each token is its own account (default: {DEFAULT_TOKEN})",
    )
    server.add_argument(
        "--allow-remote-inspection",
        action="store_true",
        help="serve the inbox page (/) and the inspection API (/_emulator) to any address, not only to "
        "loopback: for a browser outside a Docker container. Whoever reaches the port can then read every "
        "message and reset the emulator",
    )
    server.add_argument("--access-log", action="store_true", help="log each request line")
    server.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="the server's log level",
    )


def _add_data_options(parser: argparse.ArgumentParser, defaults: EmulatorSettings) -> None:
    data = parser.add_argument_group("accounts and data")
    data.add_argument(
        "--seed-messages",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="messages of history for account 1",
    )
    data.add_argument("--random-seed", type=int, default=None, help="seed for history, faults and lifecycle")
    data.add_argument(
        "--initial-credits", type=int, default=defaults.initial_credits, help="credits per account"
    )
    data.add_argument("--plan", default=defaults.plan, help="plan name shown by /api/balance")
    data.add_argument("--mms-cost", type=int, default=defaults.mms_cost, help="credits per MMS")
    data.add_argument(
        "--allow-http-webhooks", action="store_true", help="accept http:// webhook URLs (local development)"
    )


def _add_limit_options(parser: argparse.ArgumentParser, defaults: EmulatorSettings) -> None:
    limits = parser.add_argument_group("rate limits (fixed window per account and endpoint class)")
    limits.add_argument("--send-limit", type=int, default=defaults.send_limit, help="sends per window")
    limits.add_argument(
        "--read-limit", type=int, default=defaults.read_limit, help="other requests per window"
    )
    limits.add_argument(
        "--window-seconds", type=_positive, default=defaults.window_seconds, help="window length"
    )


def _add_fault_options(parser: argparse.ArgumentParser) -> None:
    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--fail-before-share", type=_share, default=0.0, help="share of requests answered 500"
    )
    faults.add_argument(
        "--fail-after-share", type=_share, default=0.0, help="share of sends processed, then answered 500"
    )
    faults.add_argument(
        "--drop-after-share",
        type=_share,
        default=0.0,
        help="share of sends processed, then connection dropped",
    )
    faults.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every answer")
    faults.add_argument(
        "--live-traffic-per-list",
        type=_non_negative_int,
        default=0,
        help="new messages added on each GET /api/messages",
    )
    faults.add_argument(
        "--fail-before-status", type=int, default=500, help="status of the fail-before answers (e.g. 502)"
    )
    faults.add_argument(
        "--maintenance-page", action="store_true", help="answer every /api request with an HTML page"
    )


def _add_drift_options(parser: argparse.ArgumentParser) -> None:
    drift = parser.add_argument_group("what the API reference does not promise")
    drift.add_argument(
        "--list-order",
        choices=[NEWEST_FIRST, OLDEST_FIRST],
        default=NEWEST_FIRST,
        help="the order of the message and conversation lists",
    )
    drift.add_argument(
        "--ignore-date-params", action="store_true", help="GET /api/messages ignores start/end_date"
    )
    drift.add_argument(
        "--clock-offset-seconds", type=float, default=0.0, help="server clock minus the machine's clock"
    )
    drift.add_argument(
        "--reorder-conversations-per-list",
        type=_non_negative_int,
        default=0,
        help="old conversations that get a reply on each GET /api/conversations",
    )
    drift.add_argument(
        "--status-changes-per-list",
        type=_non_negative_int,
        default=0,
        help="listed messages that move one status on at each GET /api/messages",
    )


def _add_lifecycle_options(parser: argparse.ArgumentParser, defaults: EmulatorSettings) -> None:
    lifecycle = parser.add_argument_group("message lifecycle")
    lifecycle.add_argument(
        "--lifecycle",
        choices=[LIFECYCLE_AUTO, LIFECYCLE_MANUAL],
        default=LIFECYCLE_AUTO,
        help="auto: messages move on after the delays below; manual: when the inspection API says",
    )
    lifecycle.add_argument(
        "--sent-delay", type=float, default=defaults.sent_delay, help="seconds queued -> sent"
    )
    lifecycle.add_argument(
        "--final-delay", type=float, default=defaults.final_delay, help="seconds sent -> delivered/failed"
    )
    lifecycle.add_argument(
        "--failure-share", type=_share, default=defaults.failure_share, help="share of messages that fail"
    )
    lifecycle.add_argument(
        "--reply-share", type=_share, default=defaults.reply_share, help="share of recipients replying"
    )
    lifecycle.add_argument(
        "--stop-share", type=_share, default=defaults.stop_share, help="share of recipients replying STOP"
    )
    lifecycle.add_argument(
        "--reply-delay", type=float, default=defaults.reply_delay, help="seconds delivered -> reply"
    )


def settings_from_args(args: argparse.Namespace) -> EmulatorSettings:
    """Turn parsed arguments into :class:`EmulatorSettings`.

    :param args: the parsed command line.
    """
    names = set(EmulatorSettings.runtime_fields()) | {"seed_messages", "allow_remote_inspection"}
    values: dict[str, Any] = {name: getattr(args, name) for name in names if hasattr(args, name)}
    values["tokens"] = list(dict.fromkeys(getattr(args, "tokens", None) or [DEFAULT_TOKEN]))
    return EmulatorSettings(**values)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGINT/SIGTERM.

    :param argv: arguments (default: ``sys.argv[1:]``).
    :return: the exit status.
    """
    args = build_parser().parse_args(argv)
    settings = settings_from_args(args)

    from airflow_provider_smsnexus.emulator.server import EmulatorServer

    try:
        server = EmulatorServer(
            settings,
            host=args.host,
            port=args.port,
            access_log=args.access_log,
            log_level=args.log_level,
            configure_logging=True,
        )
    except EmulatorNotInstalledError as exc:
        print(f"smsnexus-emulator: {exc}", file=sys.stderr)
        return EXIT_NOT_INSTALLED
    except OSError as exc:
        print(f"smsnexus-emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2

    def stop(signum: int, _frame: Any) -> None:
        # A second signal cuts open connections short.
        server.request_stop(force=server.stopping)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    connection = json.dumps(
        {"conn_type": "smsnexus", "host": server.base_url, "password": settings.tokens[0]}
    )
    print(
        f"SMS Nexus emulator on {server.base_url} ({len(settings.tokens)} account(s), "
        f"{settings.seed_messages} seeded messages); "
        f"AIRFLOW_CONN_SMSNEXUS_DEFAULT='{connection}'",
        flush=True,
    )
    server.serve()
    print("SMS Nexus emulator stopped", flush=True)
    return 0
