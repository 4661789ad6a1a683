"""An example model set for the quick start.

No `from __future__ import annotations` here: SQLModel resolves field types
at class creation and fails on postponed annotations.
"""

from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Text, text
from sqlmodel import Field, SQLModel


class Author(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    email: str = Field(unique=True)


class Article(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    title: str
    body: str = Field(sa_column=Column(Text, nullable=False, server_default=""))
    published: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    created_at: datetime = Field(default_factory=datetime.utcnow, sa_column_kwargs={"server_default": text("now()")})
    author_id: Optional[int] = Field(default=None, foreign_key="author.id")
