"""A sample project on disk, driven through the CLI as a user would: shared by the revision and check tests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import List

import pytest

from tests.helpers import fetch, pgmig_cli

V1 = """
import enum
from typing import Optional

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class Status(enum.Enum):
    draft = "draft"
    published = "published"


class Author(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=80)


class Post(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    title: str = Field(max_length=100)
    status: Status = Field(sa_column=sa.Column(sa.Enum(Status), nullable=False, server_default="draft"))
"""

# v2: new column with a default, an index, a foreign key, a wider type.
V2 = V1.replace(
    "    title: str = Field(max_length=100)\n",
    "    title: str = Field(max_length=200, index=True)\n"
    "    views: int = Field(default=0, sa_column_kwargs={'server_default': '0'})\n"
    "    author_id: Optional[int] = Field(default=None, foreign_key='author.id')\n",
)

# v3: a new enum label, a column dropped (destructive), a type change.
V3 = (
    V2.replace('    published = "published"\n', '    published = "published"\n    archived = "archived"\n')
    .replace(
        "    views: int = Field(default=0, sa_column_kwargs={'server_default': '0'})\n",
        "    views: int = Field(default=0, sa_type=sa.BigInteger, sa_column_kwargs={'server_default': '0'})\n",
    )
    .replace(
        "    name: str = Field(max_length=80)\n",
        "    name: str = Field(max_length=80)\n    bio: Optional[str] = None\n",
    )
)

V4 = V3.replace("    bio: Optional[str] = None\n", "")


class Project:
    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url
        (root / "pyproject.toml").write_text('[project]\nname = "blog"\n\n[tool.pgmig]\nmodels = ["models.py"]\n')

    def models(self, source: str) -> None:
        (self.root / "models.py").write_text(source)

    def cli(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        # Scratch databases (generate's proof, check, drift) on the test server, not a new embedded one.
        result = pgmig_cli(*args, cwd=self.root, env={"PGMIG_DATABASE_URL": self.url, "PGMIG_DEV_URL": self.url})
        if ok:
            assert result.returncode == 0, f"pgmig {' '.join(args)}: {result.stdout}{result.stderr}"
        return result

    def generate(self, message: str, *extra: str) -> Path:
        result = self.cli("generate", "-m", message, *extra)
        path = Path(result.stdout.strip().splitlines()[-1])
        assert path.exists() and path.parent == self.root / "migrations"
        return path

    def files(self) -> List[Path]:
        return sorted((self.root / "migrations").glob("*.py"))

    def applied(self) -> List[str]:
        return [r["id"] for r in fetch(self.url, "SELECT id FROM pgmig_revisions ORDER BY id")]


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Project:
    return Project(tmp_path, database_url)


def rid(path: Path) -> str:
    """The revision id a generated file name starts with (date_time_random)."""
    return "_".join(path.stem.split("_")[:3])
