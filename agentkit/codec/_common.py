"""Small pieces shared by the codec layers."""

from __future__ import annotations

__all__ = ["NotEncodable"]


class NotEncodable(Exception):
    """The value cannot be encoded by this layer; the codec tries its next layer."""
