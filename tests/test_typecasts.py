"""The lossless table (pgmig.ops.typecasts) checked against the server, and the row checks it drives.

Every widening entry: values at the extremes of the old type cast to the
new type and back come out equal (compared as the old type's text, which is
stricter than `=`: `1.50` and `1.5` differ). A sample of changes left out of
the table: some value changes or is refused.
"""

from __future__ import annotations

import asyncio
from typing import List, Tuple

import pytest

from pgmig.ops.base import Operation, RowProblem
from pgmig.ops.column import (
    AddColumn,
    AddNotNull,
    ModifyColumnType,
    RenameColumn,
    SetColumnDefault,
    type_change_hazards,
)
from pgmig.ops.constraint import DropConstraint
from pgmig.ops.data import BackfillColumn, ExecuteSQL
from pgmig.ops.enum import RemapTypeValues, RenameTypeValue, SwapTypeValues
from pgmig.ops.index import DropIndex
from pgmig.ops.typecasts import WIDENING_PAIRS, is_lossless, parse_type, time_zone_assumption
from tests.helpers import fetch, run_sql

INT2, INT4, INT8 = (
    ("-32768", "32767", "0"),
    ("-2147483648", "2147483647"),
    ("-9223372036854775808", "9223372036854775807"),
)
STAMPS = ("4713-01-01 00:00:00 BC", "294276-12-31 23:59:59.999999", "2024-03-31 02:30:00", "infinity", "-infinity")
DATES = ("4713-01-01 BC", "294276-12-31", "2024-02-29", "infinity", "-infinity")

# old type, new type, values of the old type (as text) at its extremes
WIDENINGS: List[Tuple[str, str, Tuple[str, ...]]] = [
    ("character varying(10)", "character varying(20)", ("abcdefghij", "", " x ")),
    ("character varying(10)", "character varying", ("abcdefghij",)),
    ("character varying(10)", "text", ("abcdefghij", "a\tb\r\n")),
    ("text", "character varying", ("x" * 100000, "")),
    ("character(5)", "character(8)", ("ab", "abcde")),
    ("character(5)", "text", ("ab", "abcde", "")),
    ("character(5)", "character varying(5)", ("ab", "abcde")),
    ("character", "character varying(1)", ("a",)),
    ("smallint", "integer", INT2),
    ("smallint", "bigint", INT2),
    ("integer", "bigint", INT4),
    ("smallint", "real", INT2),
    ("smallint", "double precision", INT2),
    ("integer", "double precision", INT4),
    ("real", "double precision", ("3.4028235e38", "-3.4028235e38", "1e-45", "0.1", "NaN", "Infinity", "-Infinity")),
    ("smallint", "numeric(5,0)", INT2),
    ("integer", "numeric(12,2)", INT4),
    ("bigint", "numeric(19,0)", INT8),
    ("bigint", "numeric", INT8),
    ("numeric(5,2)", "numeric(8,3)", ("999.99", "-999.99", "0.01")),
    ("numeric(5,2)", "numeric", ("999.99", "-0.01")),
    ("numeric(5,2)", "numeric(6,3)", ("999.99",)),
    ("timestamp(3) without time zone", "timestamp(6) without time zone", ("294276-12-31 23:59:59.999", "infinity")),
    ("timestamp(2) with time zone", "timestamp with time zone", ("2024-01-01 00:00:00.99+00",)),
    ("time(3) without time zone", "time without time zone", ("23:59:59.999", "24:00:00", "00:00:00")),
    ("time(0) with time zone", "time(3) with time zone", ("23:59:59+15:59", "00:00:00-15:59")),
    ("interval(0)", "interval(3)", ("178000000 years", "-178000000 years", "1 day 00:00:01")),
    ("date", "timestamp without time zone", DATES),
    ("date", "timestamp(0) with time zone", DATES),
    ("timestamp without time zone", "timestamp with time zone", STAMPS),
    ("bit varying(3)", "bit varying(5)", ("101", "")),
    ("bit(3)", "bit varying(3)", ("101", "000")),
    ("jsonb", "json", ('{"a": [1, 2.50, null, "\\u00e9x"]}', "[]")),
    ("numeric(10,2)[]", "numeric(12,2)[]", ("{99999999.99,NULL,-0.01}",)),
    ("integer[]", "bigint[]", ("{-2147483648,2147483647}", "{}")),
]
for _type, _values in [
    ("smallint", INT2),
    ("integer", INT4),
    ("bigint", INT8),
    ("numeric", ("-12345678901234567890.123456789", "NaN", "1.50", "Infinity")),
    ("boolean", ("true", "false")),
    ("uuid", ("00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff")),
    ("json", ('{"a" :  1, "a": 2}', " [ ] ")),
    ("jsonb", ('{"a": 1.50}',)),
]:
    WIDENINGS += [(_type, "text", _values), (_type, "character varying", _values)]

# old type, new type, a value of the old type that the new type changes or refuses
NARROWINGS = [
    ("numeric(10,2)", "integer", "19.99"),
    ("double precision", "numeric(3,1)", "1.25"),
    ("double precision", "numeric(3,1)", "123.4"),
    ("timestamp without time zone", "date", "2024-01-01 13:45:10"),
    ("timestamp with time zone", "date", "2024-01-01 13:45:10+00"),
    ("integer", "smallint", "40000"),
    ("bigint", "integer", "2147483648"),
    ("bigint", "double precision", "9007199254740993"),
    ("integer", "real", "16777217"),
    ("double precision", "real", "0.1"),
    ("numeric", "double precision", "0.1000000000000000055511151231257827"),
    ("character varying(20)", "character varying(10)", "abcdefghijkl"),
    ("text", "character(3)", "ab  "),
    ("text", "character varying(3)", "abcd"),
    ("character(5)", "character varying(3)", "abcd"),
    ("numeric(8,3)", "numeric(8,2)", "1.234"),
    ("numeric(8,3)", "numeric(8,4)", "99999.999"),
    ("numeric", "numeric(10,2)", "1.234"),
    ("timestamp(6) without time zone", "timestamp(3) without time zone", "2024-01-01 00:00:00.123456"),
    ("time without time zone", "time(0) without time zone", "12:00:00.5"),
    ("json", "jsonb", '{"a": 1, "a": 2}'),
    ("text", "integer", "007"),
    ("text", "integer", "abc"),
    ("text", "boolean", "yes"),
    ("bit varying(5)", "bit varying(3)", "10101"),
    ("bit varying(3)", "bit(3)", "1"),
    ("numeric(10,2)[]", "integer[]", "{19.99}"),
    ("character varying(5)", "character varying(5)[]", "abc"),
]


def _base(data_type: str) -> str:
    return parse_type(data_type)[0]


def round_trips(url: str, old: str, new: str, value: str) -> Tuple[bool, str]:
    """Whether `value` (as `old`) cast to `new` and back comes out the same; the server's error otherwise."""
    import asyncpg

    async def go() -> Tuple[bool, str]:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("SET TimeZone = 'UTC'")
            same = await conn.fetchval(
                f"SELECT ((($1::text::{old})::{new})::{old})::text = ($1::text::{old})::text", value
            )
            return bool(same), ""
        except asyncpg.PostgresError as exc:
            return False, str(exc)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_every_widening_pair_is_checked() -> None:
    checked = {(_base(old), _base(new)) for old, new, _ in WIDENINGS}
    assert WIDENING_PAIRS <= checked, WIDENING_PAIRS - checked


@pytest.mark.parametrize("old, new, values", WIDENINGS)
def test_widening_keeps_extreme_values_on_the_server(
    database_url: str, old: str, new: str, values: Tuple[str, ...]
) -> None:
    assert is_lossless(old, new)
    assert "deletes_data" not in type_change_hazards(old, new)
    for value in values:
        assert round_trips(database_url, old, new, value) == (True, ""), f"{value!r} as {old} -> {new}"


@pytest.mark.parametrize("old, new, value", NARROWINGS)
def test_narrowing_changes_a_value_on_the_server(database_url: str, old: str, new: str, value: str) -> None:
    assert not is_lossless(old, new)
    assert "deletes_data" in type_change_hazards(old, new)
    assert round_trips(database_url, old, new, value)[0] is False, f"{value!r} as {old} -> {new} came back"


def test_enum_to_text_is_lossless_and_back_is_not() -> None:
    assert is_lossless("mood", "text", old_is_enum=True)
    assert is_lossless("mood[]", "character varying[]", old_is_enum=True)
    assert not is_lossless("mood", "character varying(3)", old_is_enum=True)
    assert not is_lossless("text", "mood")
    assert not is_lossless("mood", "other_mood", old_is_enum=True)
    assert ModifyColumnType(table_name="t", column_name="c", data_type="text", old_data_type="mood").hazards() == (
        "rewrites_table",
        "deletes_data",
        "access_exclusive_lock",
    )
    op = ModifyColumnType(table_name="t", column_name="c", data_type="text", old_data_type="mood", old_is_enum=True)
    assert "deletes_data" not in op.hazards()


def test_a_domain_is_proven_only_unchanged() -> None:
    assert is_lossless("public.positive", "public.positive")
    assert not is_lossless("integer", "public.positive")
    assert not is_lossless("public.positive", "integer")


def test_binary_coercible_relabels_are_binary_coercible_on_the_server(database_url: str) -> None:
    """The pairs of different types that `type_change_hazards` claims no rewrite for are casts
    Postgres marks binary coercible (pg_cast castmethod 'b')."""
    pairs = [("character varying", "text"), ("text", "character varying")]
    for old, new in pairs:
        assert type_change_hazards(old, new) == ("access_exclusive_lock",)
        rows = fetch(
            database_url,
            "SELECT castmethod::text FROM pg_cast WHERE castsource = $1::regtype AND casttarget = $2::regtype",
            old,
            new,
        )
        assert rows == [{"castmethod": "b"}]


def test_time_zone_assumption_is_said() -> None:
    said = time_zone_assumption("timestamp without time zone", "timestamp with time zone")
    assert said is not None and "TimeZone" in said
    assert time_zone_assumption("date", "timestamp with time zone") is not None
    assert time_zone_assumption("integer", "bigint") is None


# -- preflight: what a step would do to the rows the database holds --------------------------


def preflight(url: str, steps: List[Operation]) -> List[RowProblem]:
    import asyncpg

    async def go() -> List[RowProblem]:
        conn = await asyncpg.connect(url)
        try:
            found: List[RowProblem] = []
            for index, op in enumerate(steps):
                found += await op.preflight(conn, steps[:index])
            return found
        finally:
            await conn.close()

    return asyncio.run(go())


def modify(old: str, new: str, table: str = "t", schema: str = "public") -> ModifyColumnType:
    return ModifyColumnType(
        table_name=table, column_name="c", data_type=new, using=f'"c"::{new}', old_data_type=old, schema=schema
    )


def test_type_change_counts_the_rows_it_changes(database_url: str) -> None:
    run_sql(
        database_url,
        'CREATE SCHEMA "my app"',
        'CREATE TABLE "my app".t (c numeric(10,2))',
        'INSERT INTO "my app".t VALUES (19.99), (20), (NULL), (0.5)',
    )
    [problem] = preflight(database_url, [modify("numeric(10,2)", "integer", schema="my app")])
    assert not problem.fails
    assert problem.message.startswith("2 of 4 rows change under numeric(10,2) -> integer of my app.t.c (e.g. ")
    assert "becomes" in problem.message
    assert preflight(database_url, [modify("numeric(10,2)", "numeric(12,2)", schema="my app")]) == []


def test_type_change_that_a_row_refuses_fails(database_url: str) -> None:
    run_sql(database_url, "CREATE TABLE t (c double precision)", "INSERT INTO t VALUES (1.25), (123.4)")
    [problem] = preflight(database_url, [modify("double precision", "numeric(3,1)")])
    assert problem.fails and "numeric field overflow" in problem.message
    run_sql(database_url, "CREATE TABLE u (c text)", "INSERT INTO u VALUES ('12'), ('abc')")
    [problem] = preflight(database_url, [modify("text", "integer", table="u")])
    assert problem.fails and '"abc"' in problem.message


def test_type_change_after_a_step_that_may_change_the_rows_says_nothing(database_url: str) -> None:
    run_sql(database_url, "CREATE TABLE t (c numeric(10,2))", "INSERT INTO t VALUES (19.99)")
    step = modify("numeric(10,2)", "integer")
    assert preflight(database_url, [ExecuteSQL(sql="UPDATE t SET c = round(c)"), step]) == []
    assert preflight(database_url, [BackfillColumn(table_name="t", column_name="c", expression="0"), step]) == []
    assert (
        len(preflight(database_url, [BackfillColumn(table_name="other", column_name="c", expression="0"), step])) == 1
    )
    # Steps that change no value (the generated default drop, rebuilt indexes and checks) do not hide it.
    keeps = [
        SetColumnDefault(table_name="t", column_name="c", default=None),
        DropIndex(index_name="t_c_idx"),
        DropConstraint(table_name="t", constraint_name="t_c_check"),
    ]
    assert len(preflight(database_url, [*keeps, step])) == 1
    renamed = RenameColumn(table_name="t", column_name="d", new_name="c")
    assert preflight(database_url, [renamed, step]) == []


def test_not_null_on_null_rows_fails(database_url: str) -> None:
    run_sql(database_url, "CREATE TABLE t (c int)", "INSERT INTO t VALUES (1), (NULL), (NULL)")
    [problem] = preflight(database_url, [AddNotNull(table_name="t", column_name="c")])
    assert problem.fails and problem.message.startswith("2 rows of public.t hold NULL in c")
    backfill = BackfillColumn(table_name="t", column_name="c", expression="0")
    assert preflight(database_url, [backfill, AddNotNull(table_name="t", column_name="c")]) == []


def test_shorter_string_without_using_is_refused_beyond_blanks(database_url: str) -> None:
    run_sql(
        database_url, "CREATE TABLE t (c varchar(20))", "INSERT INTO t VALUES ('abc'), ('abcd      '), ('abcdefgh')"
    )
    step = ModifyColumnType(
        table_name="t", column_name="c", data_type="character varying(4)", old_data_type="character varying(20)"
    )
    [problem] = preflight(database_url, [step])
    assert problem.fails and problem.message.startswith("1 of 3 rows hold strings too long for character varying(20)")
    assert "(e.g. 'abcdefgh')" in problem.message and "becomes" not in problem.message
    run_sql(database_url, "DELETE FROM t WHERE c = 'abcdefgh'")
    [problem] = preflight(database_url, [step])  # the blanks go: a change, which Postgres makes
    assert not problem.fails and problem.message.startswith("1 of 2 rows change under")


def test_not_null_column_added_to_a_table_with_rows_fails(database_url: str) -> None:
    run_sql(database_url, "CREATE TABLE t (a int)", "INSERT INTO t VALUES (1), (2)")
    step = AddColumn(table_name="t", column_name="b", data_type="integer", nullable=False)
    [problem] = preflight(database_url, [step])
    assert problem.fails and problem.message.startswith("table public.t has 2 rows")
    assert (
        preflight(
            database_url, [AddColumn(table_name="t", column_name="b", data_type="integer", nullable=False, default="0")]
        )
        == []
    )
    run_sql(database_url, "DELETE FROM t")
    assert preflight(database_url, [step]) == []


def test_enum_swap_counts_rows_holding_removed_labels(database_url: str) -> None:
    run_sql(
        database_url,
        "CREATE TYPE mood AS ENUM ('ok', 'gone', 'also')",
        "CREATE TABLE t (c mood, cs mood[])",
        "INSERT INTO t VALUES ('gone', '{gone,ok}'), ('gone', '{}'), ('ok', '{also}')",
    )
    columns = (("public", "t", "c", False, None), ("public", "t", "cs", True, None))
    swap = SwapTypeValues(type_name="mood", values=("ok",), columns=columns, removed_values=("gone", "also"))
    messages = [p.message for p in preflight(database_url, [swap])]
    assert all(p.fails for p in preflight(database_url, [swap]))
    assert [m.split(",")[0] for m in messages] == [
        "2 rows of public.t.c hold label 'gone' of enum mood",
        "1 row of public.t.cs holds label 'gone' of enum mood",
        "1 row of public.t.cs holds label 'also' of enum mood",
    ]
    assert "remap_type_values(type_name='mood', mapping={'gone': 'OTHER'}" in messages[0]
    remap = RemapTypeValues(
        type_name="mood", mapping=(("gone", "ok"), ("also", "ok")), columns=tuple(c[:4] for c in columns)
    )
    assert preflight(database_url, [remap, swap]) == []
    assert preflight(database_url, [RenameTypeValue(type_name="mood", old_value="gone", new_value="ok2"), swap]) == []


def test_a_lock_timeout_is_not_taken_for_rows_that_fail(database_url: str) -> None:
    """Only a row's own error (a data exception, a domain's check) says the step would fail."""
    import asyncpg

    run_sql(database_url, "CREATE TABLE t (c numeric(10,2))", "INSERT INTO t VALUES (19.99)")

    async def go() -> List[RowProblem]:
        holder, conn = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
        try:
            await conn.execute("SET lock_timeout = '100ms'")
            async with holder.transaction():
                await holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                return await modify("numeric(10,2)", "integer").preflight(conn, [])
        finally:
            await holder.close()
            await conn.close()

    assert asyncio.run(go()) == []
    assert len(preflight(database_url, [modify("numeric(10,2)", "integer")])) == 1
