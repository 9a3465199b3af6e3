"""For test suites: Server thread runner, pytest plugin and fixture, Mail, assertions, client.

Internal: import what tests use from ``mailsink`` itself.
"""
