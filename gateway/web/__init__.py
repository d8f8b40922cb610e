"""Web: HTTP plumbing every route shares: the JSON error shape, response headers, request
log lines, the development server's request handler and gunicorn's logger and error writer.

May import gateway.core only.
"""
