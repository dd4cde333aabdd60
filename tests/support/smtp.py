"""A real SMTP server on loopback (aiosmtpd), started by a test, keeping every mail."""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller

from .registry import free_port


class _Keep:
    def __init__(self, mails: list[Message]):
        self.mails = mails

    async def handle_DATA(self, server, session, envelope):
        mail = message_from_bytes(envelope.content)
        mail["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.mails.append(mail)
        return "250 OK"


class LocalSmtpServer:
    """Mail sent to 127.0.0.1:``port`` lands in ``mails``."""

    def __init__(self):
        self.mails: list[Message] = []
        self.port = free_port()
        self._controller = Controller(_Keep(self.mails), hostname="127.0.0.1", port=self.port)

    def start(self) -> "LocalSmtpServer":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
