"""Operations on views: what revision files call as `migrator.actor.<name>(...)`.

Arguments are plain strings and booleans so a generated revision file can
spell them out; `definition` is the query as SQL (Postgres's own rendering
once the view exists), and `index_definition` is what follows `USING` in
`CREATE INDEX`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

from pgmig.api import Hazard, Operation, qualified, quote_ident, register


def _what(materialized: bool) -> str:
    return "MATERIALIZED VIEW" if materialized else "VIEW"


@register
@dataclass(frozen=True)
class CreateView(Operation):
    """Create a view, or with `replace` swap its query in place (CREATE OR REPLACE VIEW).

    `replace` is only used for plain views whose new columns extend the old
    ones, which is what Postgres allows; it keeps views built on this one.
    """

    name = "create_view"
    view_name: str
    definition: str
    schema: str = "public"
    materialized: bool = False
    replace: bool = False

    def statements(self) -> List[str]:
        create = (
            "CREATE OR REPLACE VIEW" if self.replace and not self.materialized else f"CREATE {_what(self.materialized)}"
        )
        query = self.definition.strip().rstrip(";")
        return [f"{create} {qualified(self.schema, self.view_name)} AS\n{query}"]

    def hazards(self) -> Tuple[Hazard, ...]:
        # Filling a materialized view runs its whole query.
        return (Hazard.FULL_SCAN,) if self.materialized else ()


@register
@dataclass(frozen=True)
class DropView(Operation):
    name = "drop_view"
    view_name: str
    schema: str = "public"
    materialized: bool = False

    def statements(self) -> List[str]:
        return [f"DROP {_what(self.materialized)} {qualified(self.schema, self.view_name)}"]


@register
@dataclass(frozen=True)
class CreateViewIndex(Operation):
    """Index a materialized view; `index_definition` is the text after USING (`btree (email)`)."""

    name = "create_view_index"
    view_name: str
    index_name: str
    index_definition: str
    unique: bool = False
    schema: str = "public"

    def statements(self) -> List[str]:
        how = "CREATE UNIQUE INDEX" if self.unique else "CREATE INDEX"
        return [
            f"{how} {quote_ident(self.index_name)} ON {qualified(self.schema, self.view_name)} "
            f"USING {self.index_definition}"
        ]


@register
@dataclass(frozen=True)
class DropViewIndex(Operation):
    name = "drop_view_index"
    index_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"DROP INDEX {qualified(self.schema, self.index_name)}"]
