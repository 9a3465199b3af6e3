"""SMTP by hand and TLS: certificates from trustme, a raw SMTP conversation, dot-stuffing."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

from mailsink import Server

__all__ = ["RawSMTP", "TLSFiles", "greeted", "stuff", "tls_files"]


@dataclass
class TLSFiles:
    """A test CA and a server certificate it issued, written to files."""

    ca: trustme.CA
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts the test CA and checks the host name."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


def tls_files(folder: Path) -> TLSFiles:
    """A CA and a certificate for localhost and 127.0.0.1, the key in its own file."""
    ca = trustme.CA()
    issued = ca.issue_cert("localhost", "127.0.0.1")
    cert, key = folder / "cert.pem", folder / "key.pem"
    for blob in issued.cert_chain_pems:
        with cert.open("ab") as out:
            out.write(blob.bytes())
    issued.private_key_pem.write_to_path(str(key))
    return TLSFiles(ca, cert, key)


class RawSMTP:
    """An SMTP conversation on a plain socket, for what smtplib will not send."""

    def __init__(
        self, address: tuple[str, int], *, timeout: float = 30, source: str | None = None
    ) -> None:
        """Connect to ``address``, from the local address ``source`` if given."""
        bind = None if source is None else (source, 0)
        self.sock = socket.create_connection(address, timeout=timeout, source_address=bind)
        self.file = self.sock.makefile("rb")

    def reply(self) -> tuple[int, str]:
        """One reply, all its lines joined by newlines; (0, '') when the server hung up."""
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                return 0, "\n".join(lines)
            lines.append(line[4:].rstrip(b"\r\n").decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(lines)

    def send(self, data: bytes) -> None:
        """Write bytes as they are."""
        self.sock.sendall(data)

    def command(self, line: str | bytes) -> tuple[int, str]:
        """Send one command line and read its reply."""
        raw = line if isinstance(line, bytes) else line.encode()
        self.send(raw + b"\r\n")
        return self.reply()

    def rest(self) -> bytes:
        """Everything the server still sends until it closes; TimeoutError if it never does."""
        try:
            return self.file.read()
        except ConnectionResetError:
            return b""

    def close(self) -> None:
        """Close the socket."""
        self.file.close()
        self.sock.close()

    def __enter__(self) -> RawSMTP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def greeted(server: Server) -> RawSMTP:
    """A raw conversation past the greeting and EHLO."""
    raw = RawSMTP(server.smtp_address)
    assert raw.reply()[0] == 220
    assert raw.command("EHLO client.test")[0] == 250
    return raw


def stuff(data: bytes) -> bytes:
    """SMTP transparency (RFC 5321 4.5.2) as smtplib does it: a dot starting a line is
    doubled, a line ending at any LF (bare or not); the data ends with CRLF."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\n.", b"\n..")
