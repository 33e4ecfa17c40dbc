"""A local SMTP sink for development and tests: every message lands as an .eml file.

`objectvision-mail-sink --port 1025 --directory .data/mail` and point SMTP_HOST/SMTP_PORT
at it. It accepts any sender and recipient and relays nothing.
"""

import argparse
import email
import logging
import os
import signal
import threading
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

logger = logging.getLogger(__name__)


class MaildirHandler:
    """aiosmtpd handler writing each message atomically (temp file, then rename)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(content)
        os.replace(temporary, self.directory / name)
        logger.info("message stored", extra={"file": name, "recipients": list(envelope.rcpt_tos)})
        return "250 Message accepted for delivery"


class MailSink:
    """The sink as an object: tests start one on a free port and read what it received."""

    def __init__(self, directory: Path, *, host: str = "127.0.0.1", port: int = 1025) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self._controller = Controller(MaildirHandler(directory), hostname=host, port=port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[EmailMessage]:
        """Every stored message, oldest first."""
        return [
            email.message_from_bytes(path.read_bytes(), policy=default_policy)
            for path in sorted(self.directory.glob("*.eml"))
        ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="objectvision-mail-sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--directory", type=Path, default=Path(".data") / "mail")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # aiosmtpd logs every SMTP command at INFO; one line per stored message is enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    sink = MailSink(args.directory.resolve(), host=args.host, port=args.port)
    stopping = threading.Event()

    def _stop(_signum: int, _frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sink.start()
    logger.info("mail sink listening on %s:%d, writing to %s", args.host, args.port, args.directory)
    stopping.wait()
    sink.stop()
