"""POP3 over the captured mail (RFC 1939): the session's commands, framing, the listener.

Internal: not part of mailsink's public API.
"""
