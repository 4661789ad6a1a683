"""pgmig-functions against a real PostgreSQL: conformance, normal form, ordering."""

from __future__ import annotations

import sqlalchemy as sa
from pgmig_functions import FunctionHandler, TriggerHandler, function, trigger

from pgmig.testing import database_url, pgmig_server  # noqa: F401  (fixtures)
from pgmig.testing.conformance import ConformanceSuite, builtin_handlers, migrate_to, plan_for

HANDLERS = [*builtin_handlers(), FunctionHandler, TriggerHandler]

TOUCH = "BEGIN NEW.updated_at := now(); RETURN NEW; END"


def models(version: int = 1) -> sa.MetaData:
    """A post table with an updated_at trigger and a SQL function over it."""
    md = sa.MetaData()
    sa.Table(
        "post",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )
    if version == 3:
        return md
    function(md, "touch_updated_at", returns="trigger", language="plpgsql", body=TOUCH)
    events = ["UPDATE"] if version == 1 else ["INSERT", "UPDATE"]
    trigger(md, "post", "post_touch", function="touch_updated_at", events=events)
    function(
        md,
        "post_count",
        arguments="min_length integer DEFAULT 0",
        returns="bigint",
        body="SELECT count(*) FROM post WHERE length(title) >= min_length" + (" AND id > 0" if version == 2 else ""),
        options="STABLE",
        depends_on=["post"],
    )
    return md


class TestFunctionConformance(ConformanceSuite):
    kinds = ("function", "trigger")
    handlers = HANDLERS

    def initial(self) -> sa.MetaData:
        return models(1)

    def changed(self) -> sa.MetaData:
        return models(2)

    def removed(self) -> sa.MetaData:
        return models(3)


def test_definitions_written_differently_never_diff(database_url: str) -> None:
    migrate_to(database_url, models(1), HANDLERS)
    md = sa.MetaData()
    sa.Table(
        "post",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )
    function(md, "touch_updated_at", returns="TRIGGER", language="PLPGSQL", body=TOUCH)
    trigger(md, "post", "post_touch", function="touch_updated_at", timing="before", events=["update"], for_each="row")
    function(
        md,
        "post_count",
        arguments="min_length int4 default 0",
        returns="int8",
        body="SELECT count(*) FROM post WHERE length(title) >= min_length",
        options="stable",
        depends_on=["post"],
    )
    plan = plan_for(database_url, md, HANDLERS)
    assert plan.is_empty, [c.to_json() for c in plan.changes]


def test_functions_and_triggers_come_after_their_tables(database_url: str) -> None:
    plan = plan_for(database_url, models(1), HANDLERS)
    order = [(c.action, c.key[:3]) for c in plan.changes]
    table_at = order.index(("create", ("table", "public", "post")))
    function_at = order.index(("create", ("function", "public", "post_count")))
    touch_at = order.index(("create", ("function", "public", "touch_updated_at")))
    trigger_at = order.index(("create", ("trigger", "public", "post")))
    assert table_at < function_at and touch_at < trigger_at and table_at < trigger_at


def test_trigger_runs_and_a_new_return_type_replaces_the_function(database_url: str) -> None:
    migrate_to(database_url, models(1), HANDLERS)
    md = models(1)
    md.info["pgmig"] = [d for d in md.info["pgmig"] if getattr(d, "name", "") != "post_count"]
    function(
        md,
        "post_count",
        arguments="min_length integer DEFAULT 0",
        returns="integer",
        body="SELECT count(*)::integer FROM post WHERE length(title) >= min_length",
        depends_on=["post"],
    )
    plan = migrate_to(database_url, md, HANDLERS)
    assert [op.name for op in plan.operations] == ["drop_function", "create_function"]
    assert plan_for(database_url, md, HANDLERS).is_empty


def test_a_default_calling_a_function_waits_for_it_both_ways(database_url: str) -> None:
    """A column default calling a function of the models: the function is created first, dropped after."""
    md = sa.MetaData()
    function(md, "next_code", returns="text", body="SELECT 'c-' || floor(random() * 1000)::int::text")
    sa.Table(
        "ticket",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.Text, server_default=sa.text("next_code()")),
    )
    keys = [c.key for c in migrate_to(database_url, md, HANDLERS).changes]
    (created,) = [key for key in keys if key[0] == "function"]
    assert keys.index(created) < keys.index(("table", "public", "ticket")), keys
    assert plan_for(database_url, md, HANDLERS).is_empty
    dropped = [c.key for c in migrate_to(database_url, sa.MetaData(), HANDLERS).changes]
    assert dropped.index(("table", "public", "ticket")) < dropped.index(created), dropped
