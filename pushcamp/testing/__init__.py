"""Test helpers that ship with pushcamp, such as the push-service simulator."""
