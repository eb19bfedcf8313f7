"""A local SMTP server that keeps every message it receives in a Maildir, and the reads of
that Maildir behind the demo's /dev/mailbox/ page.

``make run`` starts it as the Procfile's ``mail`` process (``manage.py run_mailcatcher``), and
the exchange's default email settings point at it, so a newcomer can read every email the
exchange sends without a real mail server. Nothing here touches the database.
"""

import email
import email.policy
import logging
import mailbox
import os
import signal
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

logger = logging.getLogger(__name__)


class MailCatcherError(Exception):
    """The catcher could not start (most often: its port is taken)."""


def maildir_open(directory: Path | str) -> mailbox.Maildir:
    """The Maildir at ``directory``, created with its parents when missing."""
    path = Path(directory)
    # mailbox.Maildir(create=True) makes neither missing parents nor the subdirectories of
    # an existing empty directory.
    for subdirectory in ("tmp", "new", "cur"):
        (path / subdirectory).mkdir(parents=True, exist_ok=True)
    return mailbox.Maildir(path, create=False)


class _MaildirHandler(Message):
    """aiosmtpd handler: adds each message, with the envelope's X-MailFrom and X-RcptTo
    headers, to the Maildir."""

    def __init__(self, directory: Path | str):
        super().__init__()
        self.maildir = maildir_open(directory)

    def handle_message(self, message) -> None:
        self.maildir.add(message)
        subject = str(make_header(decode_header(message["Subject"] or "")))
        logger.info("caught email to %s: %s", message["X-RcptTo"], subject)


class MailCatcher:
    """The SMTP server on ``host:port``, in a thread of its own, storing into ``directory``.

    ``start()`` returns once the server answers and raises ``MailCatcherError`` when it
    cannot listen; ``stop()`` closes it. Also a context manager.
    """

    def __init__(self, directory: Path | str, host: str = "127.0.0.1", port: int = 1025):
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self._controller: Controller | None = None

    def start(self) -> "MailCatcher":
        self._check_port_free()
        controller = Controller(
            _MaildirHandler(self.directory),
            hostname=self.host,
            port=self.port,
            # The banner's name; the default asks DNS for this machine's FQDN, which can
            # take seconds where DNS does not answer.
            server_hostname="mailcatcher.localhost",
            ready_timeout=5.0,
        )
        try:
            controller.start()
        except OSError as exc:
            # The server thread has ended; aiosmtpd leaves its loop open.
            controller.loop.close()
            if isinstance(exc, TimeoutError):
                raise MailCatcherError(f"the mail catcher did not start: {exc}") from exc
            raise self._port_error(exc) from exc
        self._controller = controller
        return self

    def _check_port_free(self) -> None:
        # aiosmtpd reports a failed bind only after its whole ready timeout; a bind of our
        # own (with SO_REUSEADDR, as asyncio's server does) says at once.
        try:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            with socket.create_server((self.host, self.port), family=family):
                pass
        except OSError as exc:
            raise self._port_error(exc) from exc

    def _port_error(self, exc: OSError) -> MailCatcherError:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return MailCatcherError(
            f"the mail catcher cannot listen on {self.host}:{self.port} ({reason})."
            " Another SMTP server or mail catcher may hold the port: stop it, or pick another"
            " port with EMAIL_PORT (the catcher follows it unless MAILCATCHER_PORT is set),"
            " e.g. `EMAIL_PORT=2525 make run`."
        )

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> "MailCatcher":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def mailcatcher_run(*, directory: Path | str, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT (from the main thread), then close the port.

    Raises ``MailCatcherError`` when the port is taken.
    """
    # aiosmtpd logs every SMTP command at INFO; one line per message (ours) is enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        with MailCatcher(directory, host, port):
            logger.info("catching email on %s:%s into %s", host, port, directory)
            stop.wait()
        logger.info("mail catcher stopped")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# --- Reading the Maildir (the /dev/mailbox/ page) --------------------------------------


@dataclass(frozen=True)
class CaughtEmail:
    key: str
    received: datetime
    sender: str
    to: str
    subject: str
    headers: list[tuple[str, str]]
    text: str
    html: str


_SHOWN_HEADERS = ("Date", "From", "To", "Cc", "Reply-To", "Subject", "X-MailFrom", "X-RcptTo")


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return ""
    try:
        return part.get_content()
    except (LookupError, UnicodeError):
        # An unknown or wrong charset: show what can be shown rather than fail the page.
        return part.get_payload(decode=True).decode("utf-8", errors="replace")


def _caught_email(maildir: mailbox.Maildir, key: str) -> CaughtEmail:
    # The delivery time (the file's, to the microsecond) orders the list; the Date header
    # has whole seconds only.
    received = datetime.fromtimestamp(maildir.get_message(key).get_date(), UTC)
    message = email.message_from_bytes(maildir.get_bytes(key), policy=email.policy.default)
    return CaughtEmail(
        key=key,
        received=received,
        sender=str(message.get("From", "")),
        to=str(message.get("To", "") or message.get("X-RcptTo", "")),
        subject=str(message.get("Subject", "")),
        headers=[(name, str(message[name])) for name in _SHOWN_HEADERS if name in message],
        text=_body(message, "plain"),
        html=_body(message, "html"),
    )


def mailbox_message_list(directory: Path | str) -> list[CaughtEmail]:
    """Every message in the Maildir at ``directory``, newest first (empty if none)."""
    if not Path(directory).is_dir():
        return []
    maildir = maildir_open(directory)
    messages = []
    for key in maildir.iterkeys():
        try:
            messages.append(_caught_email(maildir, key))
        except (KeyError, FileNotFoundError):
            continue  # emptied from another request since the listing
    return sorted(messages, key=lambda message: (message.received, message.key), reverse=True)


def mailbox_message_get(directory: Path | str, key: str) -> CaughtEmail | None:
    """The message ``key`` of the Maildir at ``directory``, or None when there is none."""
    if not Path(directory).is_dir():
        return None
    maildir = maildir_open(directory)
    try:
        return _caught_email(maildir, key)
    except (KeyError, FileNotFoundError):
        return None


def mailbox_empty(directory: Path | str) -> int:
    """Delete every message of the Maildir at ``directory``; returns how many there were."""
    if not Path(directory).is_dir():
        return 0
    maildir = maildir_open(directory)
    keys = list(maildir.iterkeys())
    for key in keys:
        maildir.discard(key)
    return len(keys)
