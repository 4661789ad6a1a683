"""Operations on functions and triggers, as revision files call them.

A function is written as Postgres prints it: `parameters` is the text
inside the parentheses (not `arguments`, which is how every operation lists
its own), `definition` everything after them (RETURNS, LANGUAGE, options
and the dollar-quoted body). A trigger is its timing and events,
then its table, then the rest (`FOR EACH ROW EXECUTE FUNCTION f()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

from pgmig.api import Operation, qualified, quote_ident, register


@register
@dataclass(frozen=True)
class CreateFunction(Operation):
    name = "create_function"
    function_name: str
    parameters: str
    definition: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [
            f"CREATE OR REPLACE FUNCTION {qualified(self.schema, self.function_name)}({self.parameters})"
            f"{self.definition.rstrip()}"
        ]


@register
@dataclass(frozen=True)
class DropFunction(Operation):
    name = "drop_function"
    function_name: str
    parameters: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"DROP FUNCTION {qualified(self.schema, self.function_name)}({self.parameters})"]


@register
@dataclass(frozen=True)
class CreateTrigger(Operation):
    name = "create_trigger"
    table_name: str
    trigger_name: str
    timing: str
    action: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [
            f"CREATE TRIGGER {quote_ident(self.trigger_name)} {self.timing} "
            f"ON {qualified(self.schema, self.table_name)} {self.action}"
        ]


@register
@dataclass(frozen=True)
class DropTrigger(Operation):
    name = "drop_trigger"
    table_name: str
    trigger_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"DROP TRIGGER {quote_ident(self.trigger_name)} ON {qualified(self.schema, self.table_name)}"]
