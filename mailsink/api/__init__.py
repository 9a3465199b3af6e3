"""JSON APIs: the native one shaped like Mailpit's API v1, and MailHog's for compatibility.

Internal: not part of mailsink's public API.
"""
