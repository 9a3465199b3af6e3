"""TLS for the SMTP listener: a server context from the user's certificate or a generated one."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings

__all__ = [
    "SelfSigned",
    "TLSConfigError",
    "check_tls_settings",
    "generate_self_signed",
    "server_context",
]

log = logging.getLogger("mailsink.tls")


class TLSConfigError(ValueError):
    """The TLS settings cannot work; the message names the flags and the reason."""


@dataclass(frozen=True)
class SelfSigned:
    """A generated certificate and its key, both PEM."""

    cert_pem: bytes
    key_pem: bytes
    fingerprint: str
    """SHA-256 of the certificate, hex pairs joined by colons (as browsers show it)."""


def check_tls_settings(settings: Settings) -> None:
    """Refuse TLS settings that contradict each other or name files that cannot be loaded."""
    if settings.smtp_tls_key and not settings.smtp_tls_cert:
        raise TLSConfigError("smtp-tls-key needs --smtp-tls-cert")
    if settings.smtp_tls_cert and settings.smtp_tls_self_signed:
        raise TLSConfigError("give either --smtp-tls-cert or --smtp-tls-self-signed, not both")
    has_tls = bool(settings.smtp_tls_cert or settings.smtp_tls_self_signed)
    for name in ("smtp_tls_implicit", "smtp_require_starttls"):
        if getattr(settings, name) and not has_tls:
            flag = "--" + name.replace("_", "-")
            raise TLSConfigError(
                f"{flag} needs a certificate: --smtp-tls-cert or --smtp-tls-self-signed"
            )
    if settings.smtp_tls_implicit and settings.smtp_require_starttls:
        raise TLSConfigError(
            "--smtp-require-starttls makes no sense with --smtp-tls-implicit "
            "(the connection is encrypted from the start)"
        )
    if settings.smtp_tls_cert:
        # Load once now, so that a wrong path or a key that does not match the certificate
        # is a plain configuration error, not a failure deep in the server's start.
        _load(settings.smtp_tls_cert, settings.smtp_tls_key or None)


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context the SMTP listener uses, or None when TLS is off."""
    if settings.smtp_tls_cert:
        return _load(settings.smtp_tls_cert, settings.smtp_tls_key or None)
    if settings.smtp_tls_self_signed:
        generated = generate_self_signed(settings.hostname)
        log.info(
            "SMTP TLS with a self-signed certificate for %s, SHA-256 %s",
            settings.hostname,
            generated.fingerprint,
        )
        # ssl can load a certificate only from a file: write both to a private directory
        # that is gone again once they are loaded.
        with tempfile.TemporaryDirectory(prefix="mailsink-tls-") as folder:
            cert = Path(folder, "cert.pem")
            key = Path(folder, "key.pem")
            cert.write_bytes(generated.cert_pem)
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(generated.key_pem)
            return _load(str(cert), str(key))
    return None


def generate_self_signed(hostname: str, *, days: int = 365) -> SelfSigned:
    """A new EC P-256 key and a certificate for ``hostname``, ``localhost`` and loopback."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname or "localhost")])
    alt_names: list[x509.GeneralName] = []
    for dns in dict.fromkeys([hostname, "localhost"]):
        if not dns:
            continue
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(dns)))
        except ValueError:
            alt_names.append(x509.DNSName(dns))
    alt_names += [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # An hour of slack: a client whose clock is a little behind still accepts it.
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return SelfSigned(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        fingerprint=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
    )


def _load(cert: str, key: str | None) -> ssl.SSLContext:
    for what, path in (("certificate", cert), ("key", key)):
        if path is not None and not Path(path).is_file():
            raise TLSConfigError(f"cannot read the TLS {what} {path}: no such file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except OSError as exc:
        # ssl.SSLError is an OSError: a file that is not PEM, or a key that does not match.
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
        where = f"{cert} and {key}" if key else cert
        raise TLSConfigError(
            f"cannot load the TLS certificate from {where}: it needs a PEM certificate and the "
            f"private key that matches it ({reason})"
        ) from None
    return context
