"""Handlers return operation objects; rewrite passes select them by class; kinds read each other through typed accessors.

No database: these check the shapes the planner and the rewrite passes rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List

import pytest
import sqlalchemy as sa

from pgmig.config.discovery import handler_set
from pgmig.errors import SchemaError
from pgmig.ops.base import Operation
from pgmig.ops.column import (
    AddColumn,
    AddColumnIdentity,
    AddNotNull,
    DropColumnSequence,
    ModifyColumnType,
    SetColumnComment,
    SetColumnDefault,
)
from pgmig.ops.constraint import AddCheck, DropConstraint
from pgmig.ops.data import BackfillColumn
from pgmig.ops.enum import AddType, AddTypeValues, RemapTypeValues, SwapTypeValues
from pgmig.ops.index import AddIndex, DropIndex, concurrent
from pgmig.ops.table import AddTable, CreateTable, DropTable, RenameTable
from pgmig.plan.diff import build_plan
from pgmig.plan.renames import Renames
from pgmig.plan.safety import add_remaps, apply_defaults, not_null_needs
from pgmig.schema.handlers.column import Column, ColumnHandler, model_columns
from pgmig.schema.handlers.constraint import Constraint, ConstraintHandler
from pgmig.schema.handlers.enum import Enum, EnumHandler
from pgmig.schema.handlers.index import Index, IndexHandler
from pgmig.schema.handlers.table import Table, TableHandler
from pgmig.schema.objects import Key, SchemaObject, SchemaState, key_kind, key_name, key_schema, key_scope
from pgmig.schema.protocol import ModelContext, ObjectHandler


def column(name: str = "title", **fields: Any) -> Column:
    return Column(schema="public", table="article", name=name, data_type=fields.pop("data_type", "text"), **fields)


def test_each_builtin_handler_returns_operation_objects() -> None:
    table = Table("public", "article", comment="posts")
    assert TableHandler().create(table) == [CreateTable(table_name="article", comment="posts")]
    assert TableHandler().migrate(table, table) == []
    assert TableHandler().destroy(table) == [DropTable(table_name="article")]

    added = ColumnHandler().create(column(nullable=False, comment="c", table_exists=False))
    assert [type(op) for op in added] == [AddColumn, SetColumnComment]
    assert isinstance(added[0], AddColumn) and added[0].new_table and not added[0].nullable

    labels = Enum("public", "mood", ("a", "b"))
    assert EnumHandler().create(labels) == [AddType(type_name="mood", values=("a", "b"))]
    assert EnumHandler().migrate(labels, Enum("public", "mood", ("a", "x", "b"))) == [
        AddTypeValues(type_name="mood", values=("x",), after="a")
    ]
    swap = EnumHandler().migrate(labels, Enum("public", "mood", ("b",)))
    assert [type(op) for op in swap] == [SwapTypeValues]

    check = Constraint(schema="public", table="article", constraint_type="check", expression="(n > 0)", name="pos")
    assert [type(op) for op in ConstraintHandler().migrate(check, check)] == [DropConstraint, AddCheck]

    index = Index(schema="public", table="article", name="ix", keys=("title",))
    assert [type(op) for op in IndexHandler().create(index)] == [AddIndex]
    assert IndexHandler().destroy(index) == [DropIndex(index_name="ix")]


def test_a_column_change_is_a_list_in_the_order_postgres_needs() -> None:
    old = column(data_type="integer", default="0", autoincrement=True)
    new = column(data_type="bigint", default=None, nullable=False, identity="always")
    ops = ColumnHandler().migrate(old, new)
    assert [type(op) for op in ops] == [
        DropColumnSequence,
        SetColumnDefault,
        ModifyColumnType,
        AddNotNull,
        AddColumnIdentity,
    ]


def test_the_default_migrate_is_destroy_then_create() -> None:
    class Only(ObjectHandler):
        kind = "only"

        def create(self, obj: Table) -> List[Operation]:
            return [AddTable(table_name=obj.name)]

        def destroy(self, obj: Table) -> List[Operation]:
            return [DropTable(table_name=obj.name)]

    assert Only().migrate(Table("public", "a"), Table("public", "b")) == [
        DropTable(table_name="a"),
        AddTable(table_name="b"),
    ]


@dataclass(frozen=True)
class Thing(SchemaObject):
    kind = "thing"
    name: str

    @property
    def key(self) -> Key:
        return ("thing", "public", self.name)


def test_a_handler_still_written_for_the_actor_is_a_clear_error() -> None:
    class Old(ObjectHandler):
        kind = "thing"

        async def create(self, obj: Thing) -> None:  # type: ignore[override]
            pass

    with pytest.raises(SchemaError, match=r"Old\.create\(\) for thing public\.x returned coroutine"):
        build_plan(SchemaState(), SchemaState([Thing("x")]), handler_set([Old]))


def test_rewrite_passes_select_operations_by_class() -> None:
    added = AddColumn(table_name="article", column_name="n", data_type="integer", nullable=False)
    made_not_null = AddNotNull(table_name="article", column_name="m")
    unrelated = AddIndex(table_name="article", index_name="ix", columns=("n",))
    ops: List[Operation] = [added, made_not_null, unrelated]

    assert [(need.column, need.adds_column) for need in not_null_needs(ops)] == [("n", True), ("m", False)]
    rewritten = apply_defaults(ops, {("article", "n"): "0", ("article", "m"): "1"})
    assert rewritten == [
        AddColumn(table_name="article", column_name="n", data_type="integer", nullable=False, default="0"),
        SetColumnDefault(table_name="article", column_name="n", default=None),
        BackfillColumn(table_name="article", column_name="m", expression="1"),
        made_not_null,
        unrelated,
    ]

    swap = SwapTypeValues(type_name="mood", values=("b",), columns=(("public", "t", "c", False, None),))
    remapped = add_remaps([swap], {"mood": {"a": "b"}})
    assert remapped == [
        RemapTypeValues(type_name="mood", mapping=(("a", "b"),), columns=(("public", "t", "c", False),)),
        swap,
    ]

    assert concurrent([unrelated]) == [
        AddIndex(table_name="article", index_name="ix", columns=("n",), concurrently=True)
    ]
    assert Renames(tables=[("a", "b")]).operations("public") == [RenameTable(table_name="a", new_name="b")]


def test_key_accessors_name_the_parts_of_a_key() -> None:
    key = ("column", "public", "article", "title")
    assert (key_kind(key), key_schema(key), key_name(key), key_scope(key)) == (
        "column",
        "public",
        "article",
        ("public", "article"),
    )
    assert key_scope(("table", "public", "article")) == key_scope(key)
    assert key_scope(("extension", "citext")) == ("citext",)


def test_kinds_read_what_the_column_build_found_through_model_columns() -> None:
    metadata = sa.MetaData()
    table = sa.Table(
        "article",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("mood", sa.Enum("a", "b", name="mood")),
        sa.Column("n", sa.Integer, sa.CheckConstraint("n > 0", name="positive")),
    )
    models = ModelContext(metadata=[metadata], tables=[table])
    found = model_columns(models)
    assert model_columns(models) is found  # built once per ModelContext
    assert list(ColumnHandler().from_models(models)) == found.columns
    assert [c.name for c in found.enum_columns] == ["mood"]
    assert [type(t).__name__ for t in found.enum_types] == ["Enum"]
    assert [c.name for c in found.column_constraints(table)] == ["positive"]
    assert found.table_types(table) == (("id", "integer"), ("mood", "public.mood"), ("n", "integer"))
    (enum,) = EnumHandler().from_models(models)
    assert enum.labels == ("a", "b") and [c[2] for c in enum.columns] == ["mood"]
