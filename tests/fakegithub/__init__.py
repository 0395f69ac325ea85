"""A fake GitHub REST API for reachdiff's tests; see README.md in this directory."""

from .faults import SECONDARY_RATE_LIMIT_BODY
from .openapi import OpenAPISubset, default_subset, validate_request, validate_response
from .payloads import Payload, load_payload, make_payload, webhook_headers
from .server import FakeGitHub
from .tarballs import build_tarball, top_directory

__all__ = [
    "SECONDARY_RATE_LIMIT_BODY",
    "FakeGitHub",
    "OpenAPISubset",
    "Payload",
    "build_tarball",
    "default_subset",
    "load_payload",
    "make_payload",
    "top_directory",
    "validate_request",
    "validate_response",
    "webhook_headers",
]
