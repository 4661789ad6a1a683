"""Enums: registered from the start so the kind is known; reading and changing them lands with issue 3."""

from __future__ import annotations

from ..handler import ObjectHandler


class EnumHandler(ObjectHandler):
    kind = "enum"
