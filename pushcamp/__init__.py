"""pushcamp: a self-hosted Web Push campaign server.

The HTTP API is call-compatible with Insider One's Web Push API; see README.md.
"""

__version__ = "0.1.0"
