"""Connecting: pgmig names its sessions."""

from __future__ import annotations

import asyncio

import pytest

from pgmig.db.connect import connect


def _application_name(url: str) -> str:
    async def go() -> str:
        conn = await connect(url)
        try:
            return await conn.fetchval("SELECT current_setting('application_name')")
        finally:
            await conn.close()

    return asyncio.run(go())


def test_sessions_are_named_pgmig_unless_the_url_or_pgappname_says_otherwise(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGAPPNAME", raising=False)
    assert _application_name(database_url) == "pgmig"
    separator = "&" if "?" in database_url else "?"
    assert _application_name(f"{database_url}{separator}application_name=deploy") == "deploy"
    monkeypatch.setenv("PGAPPNAME", "ci-job")
    assert _application_name(database_url) == "ci-job"
