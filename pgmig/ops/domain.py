"""Operations on domains (`sqlalchemy.dialects.postgresql.DOMAIN`).

Statements follow the PostgreSQL docs, "CREATE DOMAIN" and "ALTER DOMAIN".
A domain's base type and collation cannot be altered: the domain kind
refuses such a change rather than dropping a type its columns use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from pgmig.db.quoting import qualified, quote_ident
from pgmig.ops.base import Hazard, Operation, register
from pgmig.ops.table import Check


def _domain_check(check: Any) -> Tuple[str, str]:
    """A revision file's `Check(expression, name=...)` (or earlier pgmig's `[name, expression]`) as
    (name, expression); TypeError for a check without a name (a domain's are named in the catalog)."""
    if isinstance(check, Check):
        if check.name is None:
            raise TypeError(f"a domain's Check({check.expression!r}) needs name=")
        return (check.name, check.expression)
    name, expression = check
    return (str(name), str(expression))


def _alter(schema: str, domain_name: str) -> str:
    return f"ALTER DOMAIN {qualified(schema, domain_name)}"


@register
@dataclass(frozen=True)
class AddDomain(Operation):
    """CREATE DOMAIN with its base type (as format_type spells it), collation, default,
    NOT NULL and named CHECK constraints (`checks`: `Check("VALUE > 0", name="positive")`, an
    expression over VALUE; the `[name, expression]` pairs earlier pgmig wrote are read too)."""

    name = "add_domain"
    argument_types = {"checks": Sequence[Union[Check, Sequence[str]]]}
    locks = 4
    domain_name: str
    data_type: str
    collation: Optional[str] = None
    default: Optional[str] = None
    not_null: bool = False
    checks: Tuple[Tuple[str, str], ...] = ()
    schema: str = "public"

    def __post_init__(self) -> None:
        # A revision file writes the checks as lists: the operation keeps (name, expression) tuples.
        if isinstance(self.checks, str):
            raise TypeError("checks must be a list of Check(expression, name=...), not a string")
        object.__setattr__(self, "checks", tuple(_domain_check(check) for check in self.checks))

    def arguments(self) -> Dict[str, Any]:
        args = super().arguments()
        if "checks" in args:
            args["checks"] = [Check(expression, name=name) for name, expression in self.checks]
        return args

    def statements(self) -> List[str]:
        sql = f"CREATE DOMAIN {qualified(self.schema, self.domain_name)} AS {self.data_type}"
        if self.collation is not None:
            sql += f" COLLATE {quote_ident(self.collation)}"
        if self.default is not None:
            sql += f" DEFAULT {self.default}"
        if self.not_null:
            sql += " NOT NULL"
        for check_name, expression in self.checks:
            sql += f" CONSTRAINT {quote_ident(check_name)} CHECK ({expression})"
        return [sql]


@register
@dataclass(frozen=True)
class DropDomain(Operation):
    """DROP DOMAIN (no CASCADE): Postgres refuses while a column still has the type."""

    name = "drop_domain"
    locks = 4
    domain_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"DROP DOMAIN {qualified(self.schema, self.domain_name)}"]


@register
@dataclass(frozen=True)
class SetDomainDefault(Operation):
    """ALTER DOMAIN ... SET DEFAULT (None: DROP DEFAULT); only later inserts see it."""

    name = "set_domain_default"
    locks = 2
    domain_name: str
    default: Optional[str] = None
    schema: str = "public"

    def statements(self) -> List[str]:
        how = f"SET DEFAULT {self.default}" if self.default is not None else "DROP DEFAULT"
        return [f"{_alter(self.schema, self.domain_name)} {how}"]


@register
@dataclass(frozen=True)
class SetDomainNotNull(Operation):
    """ALTER DOMAIN ... SET NOT NULL (checks every column of the type) or DROP NOT NULL."""

    name = "set_domain_not_null"
    locks = 2
    domain_name: str
    not_null: bool = True
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"{_alter(self.schema, self.domain_name)} {'SET' if self.not_null else 'DROP'} NOT NULL"]

    def hazards(self) -> Tuple[Hazard, ...]:
        # Docs, "ALTER DOMAIN": SET NOT NULL fails if any column of the type holds a NULL: it reads them all.
        return (Hazard.FULL_SCAN,) if self.not_null else ()


@register
@dataclass(frozen=True)
class AddDomainCheck(Operation):
    """ADD CONSTRAINT ... CHECK ... NOT VALID, then VALIDATE CONSTRAINT: new values are checked at
    once, the existing ones of every column of the type by the validation.

    `validate=False` leaves the check NOT VALID (existing values unchecked): Postgres cannot
    validate a domain's check while an array column has the domain as its element type
    ("cannot alter type ... because column ... uses it").
    """

    name = "add_domain_check"
    locks = 4
    domain_name: str
    constraint_name: str
    expression: str
    validate: bool = True
    schema: str = "public"

    def statements(self) -> List[str]:
        alter, name = _alter(self.schema, self.domain_name), quote_ident(self.constraint_name)
        statements = [f"{alter} ADD CONSTRAINT {name} CHECK ({self.expression}) NOT VALID"]
        if self.validate:
            statements.append(f"{alter} VALIDATE CONSTRAINT {name}")
        return statements

    def hazards(self) -> Tuple[Hazard, ...]:
        return (Hazard.FULL_SCAN,) if self.validate else ()


@register
@dataclass(frozen=True)
class DropDomainCheck(Operation):
    """ALTER DOMAIN ... DROP CONSTRAINT."""

    name = "drop_domain_check"
    locks = 4
    domain_name: str
    constraint_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"{_alter(self.schema, self.domain_name)} DROP CONSTRAINT {quote_ident(self.constraint_name)}"]


@register
@dataclass(frozen=True)
class RenameDomainConstraint(Operation):
    """ALTER DOMAIN ... RENAME CONSTRAINT: the same check under the name the models give it."""

    name = "rename_domain_constraint"
    locks = 2
    domain_name: str
    constraint_name: str
    new_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [
            f"{_alter(self.schema, self.domain_name)} RENAME CONSTRAINT "
            f"{quote_ident(self.constraint_name)} TO {quote_ident(self.new_name)}"
        ]
