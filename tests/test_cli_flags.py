"""The CLI's side of services with parsed options: flags parsed into typed values, hints worded with flags."""

from __future__ import annotations

import pytest

from pgmig.cli.context import word_hint
from pgmig.cli.flags import parse_defaults, parse_enum_maps, parse_renames
from pgmig.errors import Hint, PgmigError, UsageError
from pgmig.plan.safety import NotNullNeed
from pgmig.services.generate import DestructiveChangeError, UnmappedLabelsError, default_hint


def test_spec_flags_parse_into_typed_values() -> None:
    renames = parse_renames(["article=post", "post.title=post.headline"], ["color.RED=CRIMSON"])
    assert renames.tables == [("article", "post")]
    assert renames.columns == [("post", "title", "headline")]
    assert renames.enum_values == [("color", "RED", "CRIMSON")]
    assert parse_enum_maps(["color.BLUE=GREEN", "color.TEAL=GREEN"]) == {"color": {"BLUE": "GREEN", "TEAL": "GREEN"}}
    assert parse_defaults(["article.note='(none)'"]) == {("article", "note"): "'(none)'"}


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: parse_renames(["a.b=c.d"], []),
            "a column is renamed within its table; rename the table with a separate --rename a=c",
        ),
        (lambda: parse_renames(["a.b=c"], []), "--rename 'a.b=c': use table.old_column=table.new_column"),
        (lambda: parse_renames([], ["color.RED=a.b"]), "--rename-enum-value 'color.RED=a.b': use enum.OLD=NEW"),
        (lambda: parse_enum_maps(["BLUE=GREEN"]), "--map-enum-value 'BLUE=GREEN': use enum.OLD=NEW"),
        (lambda: parse_defaults(["article.note="]), "--default 'article.note=': use table.column=SQL_EXPRESSION"),
    ],
)
def test_bad_spec_flags_are_usage_errors_naming_the_flag(call: object, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        call()  # type: ignore[operator]
    assert message in str(raised.value) and raised.value.exit_code == 2


def test_library_errors_carry_hints_the_cli_words_with_flags() -> None:
    destructive = DestructiveChangeError(["drop column bio of author"])
    assert destructive.changes == ["drop column bio of author"] and "--" not in str(destructive)
    assert destructive.describe(word_hint) == (
        "the revision would delete data (drop column bio of author); review the models, then rerun with --allow-destructive"
    )
    unmapped = UnmappedLabelsError("color", {"BLUE": 1, "TEAL": 2})
    assert unmapped.rows == {"BLUE": 1, "TEAL": 2} and "--" not in str(unmapped)
    assert unmapped.describe(word_hint).endswith(
        "(1 row holds 'BLUE', 2 rows hold 'TEAL'); "
        "move them with --map-enum-value color.BLUE=OTHER --map-enum-value color.TEAL=OTHER"
    )
    need = NotNullNeed("public", "article", "published", True)
    assert word_hint(default_hint([need])) == "give a value with --default article.published=EXPR"
    assert str(default_hint([need])) == "give a value with the option defaults: article.published=EXPR"
    assert str(PgmigError("plain")) == "plain" and PgmigError("plain").describe(word_hint) == "plain"
    assert word_hint(Hint("do it", "no_such_option")) == "do it with the option no_such_option"
