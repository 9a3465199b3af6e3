"""Storage: the only place that knows tables, columns and SQL.

Internal: not part of mailsink's public API.
"""
