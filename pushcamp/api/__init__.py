"""HTTP only: routing, request parsing, auth, rate limiting, and mapping errors to the
documented bodies. No business rule lives here."""

from pushcamp.api.app import create_app

__all__ = ["create_app"]
