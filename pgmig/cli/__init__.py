"""pgmig's command line (the `pgmig` script runs `pgmig.cli.app:main`); see app.py."""

from __future__ import annotations

from pgmig.cli.app import app, main

__all__ = ["app", "main"]
