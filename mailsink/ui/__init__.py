"""The web UI: HTML routes, the sanitised preview, thumbnails (templates stay in web/).

Internal: not part of mailsink's public API.
"""
