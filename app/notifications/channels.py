"""Transports: SMS over an HTTP gateway, e-mail over SMTP, portal inbox, console.

A transport either returns a provider message id or raises ``PermanentError``
(the message can never be delivered: dead at once) or ``TemporaryError``
(retry later with back-off).
"""
from __future__ import annotations

import json
import logging
import smtplib
import ssl
import string
from collections.abc import Mapping
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr
from http import HTTPStatus
from typing import Any, Protocol

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.notifications.models import Channel, InboxItem, Message
from app.storage import FileStore
from app.transactions import atomic
from app.vn import unaccent

log = logging.getLogger("saoy.notifications")

#: Gateway answers worth another attempt although they are 4xx: timeout, too many requests.
RETRIED = (HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_MANY_REQUESTS)
#: SMTP 530/535: authentication — our configuration, to be fixed and retried, not dropped.
SMTP_AUTH_FAILURES = (530, 535)
SMTP_PERMANENT = 5  # RFC 5321: 5yz replies are permanent failures


def _client_error(status: int) -> bool:
    return HTTPStatus.BAD_REQUEST <= status < HTTPStatus.INTERNAL_SERVER_ERROR


def _smtp_permanent(code: int) -> bool:
    return code // 100 == SMTP_PERMANENT


class DeliveryError(Exception):
    pass


class PermanentError(DeliveryError):
    """The provider refused the message for good (bad number, 4xx, unknown mailbox)."""


class TemporaryError(DeliveryError):
    """Try again later (provider down, 5xx, timeout)."""


class Transport(Protocol):
    name: str

    def send(self, message: Message) -> str: ...


class ConsoleTransport:
    """Demo and development: the message is logged and counts as sent."""

    name = "console"

    def send(self, message: Message) -> str:
        log.info("[%s → %s] %s %s", message.channel.value, message.recipient,
                 message.subject or "", message.body_text)
        return f"console-{message.idempotency_key}"


class SmsGatewayTransport:
    """POST JSON to a Vietnamese SMS gateway; the idempotency key goes along as ``id``."""

    name = "sms-gateway"

    def __init__(self, url: str, token: str | None, body_template: str, unaccented: bool,
                 timeout: float):
        self.url, self.token, self.unaccented, self.timeout = url, token, unaccented, timeout
        self.body_template = json.loads(body_template)

    def _body(self, message: Message) -> Any:
        text = unaccent(message.body_text) if self.unaccented else message.body_text
        values = {"phone": message.recipient, "text": text, "id": message.idempotency_key}

        def fill(node):
            if isinstance(node, str):
                return string.Template(node).safe_substitute(values)
            if isinstance(node, dict):
                return {k: fill(v) for k, v in node.items()}
            if isinstance(node, list):
                return [fill(v) for v in node]
            return node

        return fill(self.body_template)

    def send(self, message: Message) -> str:
        headers = {"Idempotency-Key": message.idempotency_key}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = requests.post(self.url, json=self._body(message), headers=headers,
                                     timeout=self.timeout)
        except requests.RequestException as exc:
            raise TemporaryError(f"gateway unreachable: {exc.__class__.__name__}") from exc
        if _client_error(response.status_code) and response.status_code not in RETRIED:
            raise PermanentError(f"gateway refused ({response.status_code}): "
                                 f"{response.text[:200]}")
        if response.status_code >= HTTPStatus.MULTIPLE_CHOICES:
            raise TemporaryError(f"gateway error ({response.status_code})")
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        return str(payload.get("message_id") or payload.get("id") or message.idempotency_key)


class SmtpTransport:
    """Multipart text + HTML e-mail with the certified PDF attached."""

    name = "smtp"

    def __init__(self, config: Mapping[str, Any], files: FileStore):
        self.config, self.files = config, files

    def build(self, message: Message) -> MIMEMultipart:
        """Legacy MIME classes on purpose: the modern ``EmailMessage`` folding drops the
        space between RFC 2047 encoded words (CPython), which garbles Vietnamese subjects."""
        name, addr = parseaddr(self.config["MAIL_FROM"])
        email = MIMEMultipart("mixed")
        email["From"] = formataddr((name, addr), charset="utf-8")
        email["To"] = message.recipient
        email["Subject"] = Header(message.subject or "SaoY", "utf-8")
        email["Date"] = formatdate(localtime=False)
        domain = addr.split("@")[-1] if "@" in addr else "saoy.localhost"
        # Stable per message: a resend after a crash carries the same Message-ID.
        email["Message-ID"] = f"<{message.idempotency_key}@{domain}>"
        body = MIMEMultipart("alternative")
        body.attach(MIMEText(message.body_text, "plain", "utf-8"))
        if message.body_html:
            body.attach(MIMEText(message.body_html, "html", "utf-8"))
        email.attach(body)
        for item in message.attachments or []:
            _, _, subtype = item.get("mimetype", "application/pdf").partition("/")
            part = MIMEApplication(self.files.read_bytes(item["sha256"]), _subtype=subtype)
            part.add_header("Content-Disposition", "attachment",
                            filename=("utf-8", "", item["filename"]))
            email.attach(part)
        return email

    def send(self, message: Message) -> str:
        email = self.build(message)
        cfg = self.config
        security = (cfg.get("SMTP_SECURITY") or "none").lower()
        try:
            if security == "ssl":
                server = smtplib.SMTP_SSL(cfg["SMTP_HOST"], cfg["SMTP_PORT"],
                                          timeout=cfg["SMTP_TIMEOUT"],
                                          context=ssl.create_default_context())
            else:
                server = smtplib.SMTP(cfg["SMTP_HOST"], cfg["SMTP_PORT"],
                                      timeout=cfg["SMTP_TIMEOUT"])
            with server:
                if security == "starttls":
                    server.starttls(context=ssl.create_default_context())
                if cfg.get("SMTP_USER"):
                    server.login(cfg["SMTP_USER"], cfg.get("SMTP_PASSWORD") or "")
                server.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(_smtp_permanent(c) for c in codes):
                raise PermanentError(f"recipient refused: {codes}") from exc
            raise TemporaryError(f"recipient deferred: {codes}") from exc
        except smtplib.SMTPResponseException as exc:
            if _smtp_permanent(exc.smtp_code) and exc.smtp_code not in SMTP_AUTH_FAILURES:
                raise PermanentError(f"SMTP {exc.smtp_code}") from exc
            raise TemporaryError(f"SMTP {exc.smtp_code}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryError(f"SMTP unavailable: {exc.__class__.__name__}") from exc
        return email["Message-ID"]


class PortalTransport:
    """The citizen's inbox in this system; idempotent on the message id."""

    name = "portal"

    def __init__(self, session_factory):
        self.session_factory = session_factory

    def send(self, message: Message) -> str:
        session: Session = self.session_factory()
        try:
            with atomic(session):
                existing = session.scalars(
                    select(InboxItem).where(InboxItem.message_id == message.id)).first()
                if existing is None:
                    existing = InboxItem(user_id=int(message.recipient), message_id=message.id,
                                         title=message.subject or "SaoY", body=message.body_text)
                    session.add(existing)
            return f"inbox-{existing.id}"
        finally:
            session.close()


def transports_from_config(config: Mapping[str, Any], files: FileStore,
                           session_factory) -> dict[Channel, Transport]:
    console = ConsoleTransport()
    sms: Transport = console
    if config.get("SMS_GATEWAY_URL"):
        sms = SmsGatewayTransport(config["SMS_GATEWAY_URL"], config.get("SMS_GATEWAY_TOKEN"),
                                  config["SMS_GATEWAY_TEMPLATE"], config["SMS_UNACCENTED"],
                                  config["SMS_TIMEOUT"])
    email: Transport = SmtpTransport(config, files) if config.get("SMTP_HOST") else console
    return {Channel.sms: sms, Channel.email: email,
            Channel.portal: PortalTransport(session_factory)}
