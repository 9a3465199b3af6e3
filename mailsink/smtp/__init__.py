"""The SMTP side: protocol, reading DATA, the handler that stores, AUTH, TLS, chaos.

Internal: not part of mailsink's public API.
"""
