"""pgmig-views: views and materialized views as pgmig schema objects.

Importing this package registers its operations, which is why revision
files that create or drop views start with `import pgmig_views`.
"""

from __future__ import annotations

from . import ops
from .declare import ViewDeclaration, ViewIndex, view, view_index
from .handler import View, ViewHandler

__all__ = ["View", "ViewDeclaration", "ViewHandler", "ViewIndex", "ops", "view", "view_index"]
