"""Raw bytes to a parsed message: header values, MIME tree, text from HTML, line lengths.

Internal: not part of mailsink's public API.
"""
