"""What mailsink sends out: release by relay, webhooks, link checks.

Internal: not part of mailsink's public API.
"""
