"""Domains: `sqlalchemy.dialects.postgresql.DOMAIN` on a column (directly, as ARRAY items, behind a
TypeDecorator) or bound to a MetaData.

What `create_all` creates: `CREATE DOMAIN name AS type [COLLATE c] [DEFAULT d]
[CONSTRAINT n] [NOT NULL] [CHECK (...)]` before the tables. SQLAlchemy's
`constraint_name` names the first constraint clause it writes: the NOT NULL
when the domain has one, else the CHECK. A check Postgres names itself is
`<domain>_check` (ChooseConstraintName); like an unnamed table check, it is
matched by its definition, whatever name the database gives it.

The database side reads pg_type (typtype 'd') of the managed schemas, less
members of extensions: the base type as format_type prints it (an enum or a
domain schema-qualified, as columns are), the collation when it is not the
base type's, NOT NULL, the default (pg_get_expr), the CHECK constraints
(pg_constraint.contypid; PostgreSQL 17+ keeps a domain's NOT NULL there too,
as contype 'n', read as typnotnull instead).

The model's default and checks are compared in Postgres's own spelling: the
normalization service builds each model domain on the server and reads it back.

A domain provides ("type", schema, name), which its columns depend on: it is
created before them and dropped after them. ALTER DOMAIN changes the default,
NOT NULL and the checks in place; it cannot change the base type or the
collation, and such a change is refused (see `DomainHandler.migrate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from pgmig.db.quoting import object_name, stored_name
from pgmig.errors import Hint, ModelsError, SchemaError
from pgmig.ops.base import Operation
from pgmig.ops.domain import (
    AddDomain,
    AddDomainCheck,
    DropDomain,
    DropDomainCheck,
    RenameDomainConstraint,
    SetDomainDefault,
    SetDomainNotNull,
)
from pgmig.plan.normalize import Reads, Renderer, Scratch, render
from pgmig.schema.expressions import functions_called
from pgmig.schema.handlers.column import extension_type, model_columns
from pgmig.schema.objects import Key, SchemaObject
from pgmig.schema.protocol import DatabaseContext, ModelContext, ObjectHandler
from pgmig.schema.types import canonical_type, domain_of, enum_of, enum_type_sql

DomainCheck = Tuple[str, str]
"""(name, expression over VALUE as pg_get_expr prints it) of a domain's CHECK constraint."""


@dataclass(frozen=True)
class Domain(SchemaObject):
    """A domain: base type, collation (None: the base type's), default, NOT NULL, checks by name."""

    kind = "domain"
    schema: str
    name: str
    data_type: str
    collation: Optional[str] = None
    default: Optional[str] = None
    not_null: bool = False
    checks: Tuple[DomainCheck, ...] = ()
    # Names of `checks` the models leave to Postgres (`<domain>_check`): matched by definition.
    generated_names: Tuple[str, ...] = field(default=(), compare=False)
    # The enum or domain the base type is, if any: created before, dropped after.
    type_dependency: Optional[Key] = field(default=None, compare=False)
    # True when an array column has the domain as its element type: Postgres then cannot
    # SET NOT NULL or validate a new check ("cannot alter type ... because column ... uses it").
    in_arrays: bool = field(default=False, compare=False)

    @property
    def key(self) -> Key:
        return ("domain", self.schema, self.name)

    @property
    def provides(self) -> Tuple[Key, ...]:
        """The type its columns wait for (pgmig.schema.handlers.column `type_dependency`)."""
        return (("type", self.schema, self.name),)

    @property
    def dependencies(self) -> Tuple[Key, ...]:
        """Its base type when an enum, a domain or an extension's type (citext), and the functions its
        default and checks call (an extension's): created before it, dropped after it."""
        base = self.type_dependency or extension_type(self.data_type, self.schema)
        called = functions_called(self.default, *(expression for _, expression in self.checks))
        return ((base,) if base else ()) + called

    @property
    def label(self) -> str:
        return f"domain {self.name}"

    def describe(self) -> str:
        """`domain positive integer NOT NULL DEFAULT 1 CHECK positive_check (VALUE > 0)`."""
        text = f"domain {self.name} {self.data_type}"
        if self.collation is not None:
            text += f' COLLATE "{self.collation}"'
        if self.not_null:
            text += " NOT NULL"
        if self.default is not None:
            text += f" DEFAULT {self.default}"
        for name, expression in self.checks:
            text += f" CHECK {name} ({expression})"
        return text


def _sorted_checks(checks: Sequence[DomainCheck]) -> Tuple[DomainCheck, ...]:
    return tuple(sorted(checks))


DOMAINS_QUERY = """
SELECT n.nspname AS schema,
       t.typname AS name,
       CASE WHEN bt.typtype IN ('e', 'd')
            THEN pg_catalog.quote_ident(bn.nspname) || '.' || pg_catalog.quote_ident(bt.typname)
            ELSE pg_catalog.format_type(t.typbasetype, t.typtypmod) END AS data_type,
       CASE WHEN t.typcollation <> bt.typcollation THEN co.collname END AS collation,
       pg_catalog.pg_get_expr(t.typdefaultbin, 0) AS default_expr,
       t.typnotnull AS not_null,
       COALESCE((
           SELECT array_agg(ARRAY[c.conname::text, pg_catalog.pg_get_expr(c.conbin, 0)] ORDER BY c.conname)
           FROM pg_catalog.pg_constraint c
           WHERE c.contypid = t.oid AND c.contype = 'c'
       ), '{}') AS checks,
       bt.typtype::text AS base_typtype, bn.nspname AS base_schema, bt.typname AS base_name,
       EXISTS (
           SELECT 1 FROM pg_catalog.pg_type at
           JOIN pg_catalog.pg_attribute a ON a.atttypid = at.oid AND a.attnum > 0 AND NOT a.attisdropped
           WHERE at.typelem = t.oid AND at.typcategory = 'A'
       ) AS in_arrays
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype
JOIN pg_catalog.pg_namespace bn ON bn.oid = bt.typnamespace
LEFT JOIN pg_catalog.pg_collation co ON co.oid = t.typcollation
WHERE t.typtype = 'd' AND n.nspname = ANY($1::text[]) AND t.typname LIKE $2
  AND NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_depend d
      WHERE d.classid = 'pg_catalog.pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
  )
ORDER BY n.nspname, t.typname
"""


def _domains_of(rows: Sequence[Any]) -> List[Domain]:
    out = []
    for row in rows:
        base = row["base_typtype"]
        out.append(
            Domain.of(
                schema=row["schema"],
                name=row["name"],
                data_type=row["data_type"],
                collation=row["collation"],
                default=row["default_expr"],
                not_null=row["not_null"],
                checks=_sorted_checks([(name, expression) for name, expression in row["checks"]]),
                generated_names=(),
                type_dependency=(
                    ("enum" if base == "e" else "type", row["base_schema"], row["base_name"])
                    if base in ("e", "d")
                    else None
                ),
                in_arrays=row["in_arrays"],
            )
        )
    return out


DomainShape = Tuple[str, Optional[str], Optional[str], Tuple[str, ...]]
"""(base type, collation, default, check expressions) of a model domain, as the models write them."""


class DomainSpelling(Renderer[DomainShape]):
    """A domain's base type, default and checks as Postgres prints them: [type, default, [check, ...]].

    Each shape is a scratch domain (CREATE DOMAIN in the scratch schema, a
    temporary one when the role may), its checks named `c<i>` in order.
    """

    kind = "domain"
    object_kind = "domain"
    fields = ("data_type", "default", "checks")
    relations = 0.01  # a domain is no relation: it takes no lock table slot

    def reads(self, what: DomainShape) -> Reads:
        return Reads(types=(what[0],))

    def statements(self, items: Sequence[Tuple[int, DomainShape]], scratch: Scratch) -> List[str]:
        out: List[str] = []
        for number, (data_type, collation, default, checks) in items:
            named = tuple((f"c{index}", expression) for index, expression in enumerate(checks))
            op = AddDomain(
                domain_name=scratch.name("d", number),
                data_type=data_type,
                collation=collation,
                default=default,
                checks=named,
                schema=scratch.schema,
            )
            out += op.statements()
        return out

    async def read(
        self, items: Sequence[Tuple[int, DomainShape]], scratch: Scratch, db: DatabaseContext
    ) -> Dict[int, Any]:
        rows = await db.connection.fetch(DOMAINS_QUERY, [scratch.namespace], scratch.pattern)
        prefix = scratch.name("d", "")
        out: Dict[int, Any] = {}
        for domain in _domains_of(rows):
            number = int(domain.name[len(prefix) :])
            checks = dict(domain.checks)
            out[number] = [domain.data_type, domain.default, [checks[f"c{i}"] for i in range(len(checks))]]
        return out


class DomainHandler(ObjectHandler):
    kind = "domain"

    # -- reading -----------------------------------------------------------------

    def from_models(self, models: ModelContext) -> List[Domain]:
        """The domains `create_all` would create, once each; one without a schema goes to the first
        managed schema.

        Raises SchemaError when one name is declared twice differently, ModelsError when it is in a
        schema pgmig does not manage (left out, `up` would fail on the columns of its type).
        """
        found: Dict[Key, Domain] = {}
        declared = list(model_domains(models))
        if not declared:  # most models: no pass over every column for arrays of nothing
            return []
        in_arrays = {
            column.type_dependency
            for column in model_columns(models).columns
            if column.type_dependency is not None and column.data_type.endswith("]")
        }
        for sa_domain in declared:
            obj = _domain(sa_domain, models)
            obj = obj.evolve(in_arrays=("type", obj.schema, obj.name) in in_arrays)
            existing = found.setdefault(obj.key, obj)
            if existing != obj:
                raise SchemaError(
                    f"domain {obj.schema}.{obj.name} is declared twice differently: "
                    f"{existing.describe()} and {obj.describe()}"
                )
        return list(found.values())

    async def from_database(self, db: DatabaseContext) -> List[Domain]:
        return _domains_of(await db.fetch(DOMAINS_QUERY, list(db.schemas), "%"))

    async def normalize(self, objects: List[SchemaObject], db: DatabaseContext) -> List[SchemaObject]:
        """The model domains' base type, default and checks as the server prints them; a check the
        models leave unnamed takes the name of the database's check of the same definition."""
        domains = [obj for obj in objects if isinstance(obj, Domain)]
        if not domains:
            return objects
        shapes = {id(obj): _shape(obj) for obj in domains}
        rendered = await render(db, DomainSpelling(), shapes.values())
        current = {obj.key: obj for obj in await self.from_database(db)}
        out: List[SchemaObject] = []
        for obj in objects:
            if isinstance(obj, Domain):
                result = rendered.get(shapes[id(obj)])
                if result is not None:
                    data_type, default, expressions = result
                    checks = [(name, expression) for (name, _), expression in zip(obj.checks, expressions)]
                    obj = obj.evolve(data_type=data_type, default=default, checks=_sorted_checks(checks))
                obj = _adopt_names(obj, current.get(obj.key))
            out.append(obj)
        return out

    # -- changing ----------------------------------------------------------------

    def create(self, obj: Domain) -> List[Operation]:
        return [
            AddDomain(
                domain_name=obj.name,
                data_type=obj.data_type,
                collation=obj.collation,
                default=obj.default,
                not_null=obj.not_null,
                checks=obj.checks,
                schema=obj.schema,
            )
        ]

    def migrate(self, old: Domain, new: Domain) -> List[Operation]:
        """ALTER DOMAIN for the default, NOT NULL and the checks: checks dropped first, then renamed
        (same definition, another name), then added (NOT VALID, then validated).

        Raises SchemaError for a new base type or collation: ALTER DOMAIN cannot change them, and
        DROP DOMAIN fails while a column has the type; and for NOT NULL added while an array column
        has the domain as its element type (Postgres refuses it). A check added then stays NOT VALID.
        """
        if (old.data_type, old.collation) != (new.data_type, new.collation):
            raise SchemaError(
                f"domain {new.schema}.{new.name}: its base type or collation changes "
                f"({old.data_type}{_collate(old)} -> {new.data_type}{_collate(new)}), which ALTER DOMAIN "
                f"cannot do; declare a domain under a new name, move the columns to it, "
                f"and drop this one in a later revision"
            )
        if new.not_null and not old.not_null and old.in_arrays:
            raise SchemaError(
                f"domain {new.schema}.{new.name}: NOT NULL cannot be added while an array column has the "
                f"domain as its element type (Postgres: cannot alter type because a column uses it); "
                f"make the columns NOT NULL instead, or move the array columns off the domain first"
            )
        common = dict(domain_name=new.name, schema=new.schema)
        ops: List[Operation] = []
        if old.default != new.default:
            ops.append(SetDomainDefault(default=new.default, **common))
        if old.not_null != new.not_null:
            ops.append(SetDomainNotNull(not_null=new.not_null, **common))
        before, after = dict(old.checks), dict(new.checks)
        same = {name for name in before if after.get(name) == before[name]}
        dropped = [(n, e) for n, e in old.checks if n not in same]
        added = [(n, e) for n, e in new.checks if n not in same]
        renames: List[Tuple[str, str]] = []
        for name, expression in list(dropped):
            match = next((n for n, e in added if e == expression and n not in before), None)
            if match is not None:
                renames.append((name, match))
                dropped.remove((name, expression))
                added.remove((match, expression))
        ops += [DropDomainCheck(constraint_name=name, **common) for name, _ in dropped]
        ops += [RenameDomainConstraint(constraint_name=a, new_name=b, **common) for a, b in renames]
        # Under an array column Postgres cannot validate: the check stays NOT VALID (new values only).
        validate = not old.in_arrays
        ops += [AddDomainCheck(constraint_name=n, expression=e, validate=validate, **common) for n, e in added]
        return ops

    def destroy(self, obj: Domain) -> List[Operation]:
        return [DropDomain(domain_name=obj.name, schema=obj.schema)]


def _collate(obj: Domain) -> str:
    return f' COLLATE "{obj.collation}"' if obj.collation is not None else ""


def _shape(obj: Domain) -> DomainShape:
    return (obj.data_type, obj.collation, obj.default, tuple(expression for _, expression in obj.checks))


def _adopt_names(obj: Domain, current: Optional[Domain]) -> Domain:
    """`obj` with each check whose name the models leave to Postgres named as the database's check of
    the same definition that no other model check claims (Postgres's `<domain>_check` otherwise)."""
    if not obj.generated_names or current is None:
        return obj
    given = {name for name, _ in obj.checks if name not in obj.generated_names}
    free = [(name, expression) for name, expression in current.checks if name not in given]
    checks: List[DomainCheck] = []
    for name, expression in obj.checks:
        if name in obj.generated_names:
            match = next((pair for pair in free if pair[1] == expression), None)
            if match is not None:
                free.remove(match)
                name = match[0]
        checks.append((name, expression))
    return obj.evolve(checks=_sorted_checks(checks))


def _domain(sa_domain: Any, models: ModelContext) -> Domain:
    """A model DOMAIN as `create_all` creates it (the default and check as SQLAlchemy writes them)."""
    schema = sa_domain.schema or models.schema
    label = f"domain {schema}.{sa_domain.name}"
    if schema not in models.schemas:
        raise ModelsError(
            f"{label} is in schema {schema!r}, which pgmig does not manage (schemas: {', '.join(models.schemas)})",
            hint=Hint("manage that schema too", "schemas", (*models.schemas, schema)),
        )
    name = models.stored(str(sa_domain.name), ("type", schema), label)
    ddl = models.ddl
    base = sa_domain.data_type
    enum = enum_of(base, models.schema, models.dialect)
    domain = None if enum else domain_of(base, models.schema, models.dialect)
    data_type = canonical_type(models.type_sql(base))
    dependency: Optional[Key] = None
    if enum or domain:  # qualified whatever the search_path, as DOMAINS_QUERY reads it
        named = enum or domain
        assert named is not None
        data_type = enum_type_sql(*named, array_suffix=data_type[len(data_type.rstrip("[]")) :])
        dependency = ("enum" if enum else "type", *named)
    default = None if sa_domain.default is None else str(ddl.render_default_string(sa_domain.default))
    checks: List[DomainCheck] = []
    generated: Tuple[str, ...] = ()
    if sa_domain.check is not None:
        expression = ddl.sql_compiler.process(sa_domain.check, include_table=False, literal_binds=True)
        # SQLAlchemy writes CONSTRAINT <name> before NOT NULL: the name is the NOT NULL's then.
        if sa_domain.constraint_name is not None and not sa_domain.not_null:
            check_name = stored_name(str(sa_domain.constraint_name))
        else:
            check_name = object_name(name, None, "check")
            generated = (check_name,)
        checks.append((check_name, str(expression)))
    return Domain.of(
        schema=schema,
        name=name,
        data_type=data_type,
        collation=sa_domain.collation,
        default=default,
        not_null=bool(sa_domain.not_null),
        checks=_sorted_checks(checks),
        generated_names=generated,
        type_dependency=dependency,
    )


def model_domains(models: ModelContext) -> Iterator[Any]:
    """The DOMAINs `create_all` creates: those of the tables' columns (directly, as ARRAY items,
    behind a TypeDecorator), then those bound to a MetaData (SQLAlchemy 2.1's `get_schema_objects`)."""
    from sqlalchemy.dialects.postgresql import DOMAIN

    seen: Set[int] = set()
    for sa_type in model_columns(models).domain_types.values():
        if sa_type.create_type:
            seen.add(id(sa_type))
            yield sa_type
    for metadata in models.metadata:
        get_objects = getattr(metadata, "get_schema_objects", None)
        if get_objects is None:
            continue
        for schema in (None, *models.schemas):
            for sa_type in get_objects(DOMAIN, schema=schema):
                if sa_type.create_type and id(sa_type) not in seen:
                    seen.add(id(sa_type))
                    yield sa_type


__all__ = ["Domain", "DomainHandler", "DomainSpelling", "model_domains"]
