"""The Web Push protocol (RFC 8030, 8291, 8292), usable on its own as a library."""
