"""POP3 over the captured mail (RFC 1939), so that mail clients and libraries can read it."""
