"""Import and export: files and mbox into a store, a search out as mbox.

Internal: not part of mailsink's public API.
"""
