"""Sending a rendered digest: SMTP with a timeout, or an outbox folder of .eml files."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from alerts.render import header_text


class DeliveryError(Exception):
    """The digest was not accepted; `retry` says whether the next digest should simply try again."""

    def __init__(self, message: str, *, retry: bool):
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    starttls: bool = True
    ssl: bool = False
    username: str = ""
    password: str = ""
    timeout: float = 45.0


@dataclass
class Delivery:
    transport: str  # "smtp" or "outbox"
    message_id: str
    path: str | None = None
    refused: dict[str, str] = field(default_factory=dict)


def build_message(
    subject: str, text: str, html: str, sender: str, recipients: Sequence[str], at: datetime
) -> EmailMessage:
    """A multipart/alternative message: plain text first, HTML preferred by clients that can show it."""
    message = EmailMessage()
    message["Subject"] = header_text(subject)
    message["From"] = header_text(sender)
    message["To"] = ", ".join(header_text(r) for r in recipients)
    message["Date"] = format_datetime(at)
    domain = sender.rpartition("@")[2] or "atlaswatch.localhost"
    message["Message-ID"] = make_msgid("atlaswatch", domain=header_text(domain))
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def write_outbox(message: EmailMessage, html: str, outbox: Path) -> Delivery:
    """Write <stamp>.eml and <stamp>.html; the .eml is written to a temporary name first."""
    outbox.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    eml = outbox / f"digest-{stamp}.eml"
    tmp = eml.with_suffix(".eml.part")
    tmp.write_bytes(message.as_bytes())
    (outbox / f"digest-{stamp}.html").write_text(html, encoding="utf-8")
    tmp.replace(eml)
    return Delivery(transport="outbox", message_id=str(message["Message-ID"]), path=str(eml))


def send_smtp(message: EmailMessage, config: SmtpConfig) -> Delivery:
    """Send; raises DeliveryError. Recipients refused while others were accepted are reported."""
    try:
        smtp_class = smtplib.SMTP_SSL if config.ssl else smtplib.SMTP
        with smtp_class(config.host, config.port, timeout=config.timeout) as smtp:
            if config.starttls and not config.ssl:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                else:
                    raise DeliveryError(
                        f"{config.host}:{config.port} does not offer STARTTLS; set [email] starttls = false "
                        "only if the server is on a trusted network",
                        retry=False,
                    )
            if config.username:
                smtp.login(config.username, config.password)
            refused = smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as error:
        raise DeliveryError(
            f"the SMTP server refused the login ({error.smtp_code}): check [email] username and the "
            "password in the environment variable named by [email] password_env",
            retry=False,
        ) from error
    except smtplib.SMTPRecipientsRefused as error:
        raise DeliveryError(
            f"every recipient was refused: {_codes(error.recipients)}", retry=False
        ) from error
    except smtplib.SMTPResponseException as error:
        temporary = 400 <= error.smtp_code < 500
        raise DeliveryError(
            f"the SMTP server answered {error.smtp_code} {error.smtp_error.decode(errors='replace')}",
            retry=temporary,
        ) from error
    except TimeoutError as error:
        raise DeliveryError(
            f"the SMTP server {config.host}:{config.port} timed out after {config.timeout:.0f} s",
            retry=True,
        ) from error
    except (OSError, smtplib.SMTPException) as error:
        raise DeliveryError(
            f"cannot reach the SMTP server {config.host}:{config.port}: {error}", retry=True
        ) from error
    return Delivery(
        transport="smtp", message_id=str(message["Message-ID"]), refused=_codes(refused)
    )


def _codes(recipients: dict) -> dict[str, str]:
    return {
        addr: f"{code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
        for addr, (code, msg) in recipients.items()
    }
