"""Shared helpers for the test suite: databases, subprocess runners."""
