"""Stored messages in Mailpit's and MailHog's JSON shapes (for the API and webhooks).

Internal: not part of mailsink's public API.
"""
