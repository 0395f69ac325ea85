"""Maintainers' scripts; a package so tests import them by one module name (mypy, pytest)."""
