"""pgmig-functions: functions and triggers as pgmig schema objects.

    from pgmig_functions import function, trigger

    function(SQLModel, "touch_updated_at", returns="trigger", language="plpgsql",
             body="BEGIN NEW.updated_at := now(); RETURN NEW; END")
    trigger(SQLModel, "post", "post_touch", function="touch_updated_at",
            timing="BEFORE", events=["UPDATE"])

Importing this package registers its operations, which is why revision
files that create or drop functions start with `import pgmig_functions`.
"""

from __future__ import annotations

from . import ops
from .declare import FunctionDeclaration, TriggerDeclaration, function, trigger
from .handler import Function, FunctionHandler, Trigger, TriggerHandler

__all__ = [
    "Function",
    "FunctionDeclaration",
    "FunctionHandler",
    "Trigger",
    "TriggerDeclaration",
    "TriggerHandler",
    "function",
    "ops",
    "trigger",
]
