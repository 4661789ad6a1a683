"""Model registries: where the desired schema lives.

A registry is an entry point of `pgmig.registries` or a `--models` value. It
may name a module (imported for its side effects), a `MetaData`, a class with
`.metadata` (SQLModel, a declarative base) or a callable returning one of
these. All registries merge; a table defined twice is an error naming both.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from pgmig.config.entrypoints import REGISTRIES_GROUP, find
from pgmig.errors import Hint, ModelsError


@dataclass
class Registry:
    """One source of models: where it came from and the MetaData it yielded."""

    name: str
    origin: str
    metadata: List[Any] = field(default_factory=list)


@dataclass
class LoadedModels:
    registries: List[Registry]
    tables: List[Any]

    @property
    def metadata(self) -> List[Any]:
        seen: Dict[int, Any] = {}
        for registry in self.registries:
            for md in registry.metadata:
                seen.setdefault(id(md), md)
        return list(seen.values())


def load_models(specs: Sequence[str], root: Path, schema: str = "public", schemas: Sequence[str] = ()) -> LoadedModels:
    """Load the configured `models` values, or every `pgmig.registries` entry point when none are given.

    `schemas` are the managed schemas (default: `schema` alone); see `merge_tables`.
    """
    if str(root) not in sys.path:
        # Like `python -m`, make the project's own packages importable.
        sys.path.insert(0, str(root))
    registries: List[Registry] = []
    if specs:
        for spec in specs:
            registries.append(Registry(spec, "the models setting", _metadata_of(_load_spec(spec, root), spec)))
    else:
        found = find(REGISTRIES_GROUP)
        if not found:
            raise ModelsError(
                "no models found: no models are configured and no installed package declares a "
                '[project.entry-points."pgmig.registries"] entry',
                hint=Hint("name them", "models", ("app/models.py",)),
            )
        for entry in found:
            what = f"registry {entry.name!r} of package {entry.package}"
            try:
                loaded = entry.load()
            except Exception as exc:
                raise ModelsError(f"{what} ({entry.value}) failed to import: {_one_line(exc)}") from exc
            registries.append(Registry(entry.name, entry.package, _metadata_of(loaded, what)))
    managed = tuple(schemas) or (schema,)
    tables = merge_tables(registries, managed)
    if not tables:
        names = ", ".join(r.name for r in registries)
        where = f"schema {managed[0]!r}" if len(managed) == 1 else f"schemas {', '.join(map(repr, managed))}"
        raise ModelsError(f"the models ({names}) define no tables in {where}")
    return LoadedModels(registries, tables)


def merge_tables(registries: Sequence[Registry], schemas: Union[str, Sequence[str]]) -> List[Any]:
    """Tables of every registry; a table without a schema goes to the first of `schemas`.

    Raises ModelsError for the same table from two MetaData, and for a table
    in a schema that is not managed: reading that schema would make every
    table there the models do not declare a table to drop, and leaving the
    table out would build a database other than `create_all`'s. The error
    names the table and the setting that manages its schema.
    """
    managed = (schemas,) if isinstance(schemas, str) else tuple(schemas)
    owners: Dict[Tuple[str, str], Tuple[int, str]] = {}
    tables: List[Any] = []
    for registry in registries:
        for md in registry.metadata:
            for table in md.tables.values():
                table_schema = table.schema or managed[0]
                if table_schema not in managed:
                    raise ModelsError(
                        f"table {table_schema}.{table.name} (in {registry.name}) is in schema {table_schema!r}, "
                        f"which pgmig does not manage (schemas: {', '.join(managed)})",
                        hint=Hint("manage that schema too", "schemas", tuple(dict.fromkeys(managed + (table_schema,)))),
                    )
                key = (table_schema, table.name)
                owner = owners.get(key)
                if owner is not None:
                    if owner[0] == id(md):
                        continue  # the same MetaData reached through two registries
                    raise ModelsError(
                        f"table {table_schema}.{table.name} is defined twice: in {owner[1]} and in {registry.name}"
                    )
                owners[key] = (id(md), registry.name)
                tables.append(table)
    return tables


def _load_spec(spec: str, root: Path) -> Any:
    target, _, attr = spec.partition(":")
    if attr and (len(target) == 1 and target.isalpha()):  # a Windows drive letter
        target, attr = spec, ""
    looks_like_path = target.endswith(".py") or "/" in target or "\\" in target
    if looks_like_path:
        module = _import_file(target, root, spec)
    else:
        module = _import_module(target, spec)
    if not attr:
        return module
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ModelsError(f"models {spec!r}: {module.__name__} has no attribute {attr!r}") from None
    return obj


def _import_module(name: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise ModelsError(
                f"models {spec!r}: no module named {exc.name!r} (is the package installed, "
                "or did you mean a file path like app/models.py?)"
            ) from exc
        raise ModelsError(f"models {spec!r} failed to import: {_one_line(exc)}") from exc
    except Exception as exc:
        raise ModelsError(f"models {spec!r} failed to import: {_one_line(exc)}") from exc


def _import_file(target: str, root: Path, spec: str) -> ModuleType:
    path = Path(target)
    if not path.is_absolute():
        path = (Path.cwd() / path) if (Path.cwd() / path).exists() else root / path
    path = path.resolve()
    if not path.is_file():
        raise ModelsError(f"models {spec!r}: file {target} does not exist")
    # A file inside a package is imported by its dotted name, so its relative
    # imports work and it is not imported twice under two names.
    package_root = path.parent
    parts = [path.stem]
    while (package_root / "__init__.py").is_file():
        parts.insert(0, package_root.name)
        package_root = package_root.parent
    # First on sys.path, so a same-named module of another folder cannot shadow it.
    if str(package_root) in sys.path:
        sys.path.remove(str(package_root))
    sys.path.insert(0, str(package_root))
    name = ".".join(parts)
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() != path:
        # Another file of the same name was imported earlier in this process
        # (two projects' models.py): this path is the one asked for.
        del sys.modules[name]
        importlib.invalidate_caches()
    return _import_module(name, spec)


def _metadata_of(obj: Any, what: str) -> List[Any]:
    """The MetaData objects an entry or `--models` value stands for."""
    from sqlalchemy import MetaData

    if isinstance(obj, MetaData):
        return [obj]
    if isinstance(obj, ModuleType):
        found: Dict[int, Any] = {}
        for value in list(vars(obj).values()):
            md = _metadata_of_value(value, obj.__name__)
            if md is not None:
                found.setdefault(id(md), md)
        if not found:
            found = _imported_metadata(obj)
        if not found:
            # As the user named it (`app/all_models.py`), or the module an entry point names.
            target = what.partition(":")[0] if " " not in what else obj.__name__
            raise ModelsError(
                f"models {what}: module {obj.__name__} defines no tables or MetaData, and neither do the "
                "modules it imports nor SQLModel.metadata",
                hint=Hint(
                    "name the MetaData or the declarative base that holds the tables (attribute names are examples)",
                    "models",
                    tuple(f"{target}:{attr}" for attr in ("metadata", "Base")),
                ),
            )
        return list(found.values())
    if isinstance(getattr(obj, "metadata", None), MetaData):
        return [obj.metadata]
    if callable(obj):
        try:
            produced = obj()
        except Exception as exc:
            raise ModelsError(f"models {what}: calling it raised {_one_line(exc)}") from exc
        return _metadata_of(produced, what)
    raise ModelsError(
        f"models {what} is a {type(obj).__name__}; expected a module, a MetaData, "
        "a class with .metadata or a callable returning one"
    )


def _metadata_of_value(value: Any, module_name: str) -> Optional[Any]:
    from sqlalchemy import MetaData

    if isinstance(value, MetaData):
        return value
    # A model class defined in this module (SQLModel table, declarative class):
    # its MetaData holds the tables the module declared.
    if isinstance(value, type) and getattr(value, "__module__", None) == module_name:
        metadata = getattr(value, "metadata", None)
        if getattr(value, "__table__", None) is not None and isinstance(metadata, MetaData):
            return metadata
    return None


def _imported_metadata(module: ModuleType) -> Dict[int, Any]:
    """The MetaData a module that only imports its models filled: id -> MetaData, with tables.

    The "import everything so metadata fills up" module (`all_models.py`)
    defines nothing itself. Looked for, in order: model classes, MetaData and
    bases (a class whose `.metadata` has tables: SQLModel, a declarative
    base) it holds, then the same in the project's modules it imports
    (`import app.models.user`, `from app import orders`: modules in its own
    folder tree, not libraries), then `SQLModel.metadata` when SQLModel is
    imported by those modules and has tables (`import sqlmodel` then the
    model modules imported in a loop, binding nothing).
    """
    from sqlalchemy import MetaData

    found: Dict[int, Any] = {}
    home = Path(getattr(module, "__file__", "") or ".").resolve().parent
    while (home / "__init__.py").is_file():
        home = home.parent  # the folder the top package lives in
    seen = {id(module)}
    queue = [module]
    reached_modules: List[ModuleType] = []
    while queue:
        current = queue.pop(0)
        reached_modules.append(current)
        for value in list(vars(current).values()):
            if isinstance(value, ModuleType):
                if id(value) not in seen and _project_module(value, home):
                    seen.add(id(value))
                    queue.append(value)
                continue
            md = value if isinstance(value, MetaData) else getattr(value, "metadata", None)
            if isinstance(value, (MetaData, type)) and isinstance(md, MetaData) and md.tables:
                found.setdefault(id(md), md)
    sqlmodel = sys.modules.get("sqlmodel")
    if not found and sqlmodel is not None and any(_uses_sqlmodel(reached) for reached in reached_modules):
        md = getattr(getattr(sqlmodel, "SQLModel", None), "metadata", None)
        if isinstance(md, MetaData) and md.tables:
            found[id(md)] = md
    return found


def _uses_sqlmodel(module: ModuleType) -> bool:
    """Whether a module imported sqlmodel or something of it: SQLModel.metadata is the process's,
    so it stands for this registry only when the registry's own modules use SQLModel."""
    for value in list(vars(module).values()):
        name = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
        if isinstance(name, str) and name.split(".")[0] == "sqlmodel":
            return True
    return False


def _project_module(module: ModuleType, home: Path) -> bool:
    """Whether `module` is a file of the project under `home`, not an installed library (a venv may live there).

    A folder without `__init__.py` is a namespace package: no `__file__`, its folders in `__path__`
    (`import app.hero` binds `app`, and reaches `hero` through it).
    """
    file = getattr(module, "__file__", None)
    places = [file] if file else list(getattr(module, "__path__", None) or ())
    for place in places:
        path = Path(place).resolve()
        if path.is_relative_to(home) and not {"site-packages", "dist-packages"} & set(path.parts):
            return True
    return False


def _one_line(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    for frame in reversed(frames):
        if "importlib" not in frame.filename and "/pgmig/" not in frame.filename:
            where = f" ({Path(frame.filename).name}:{frame.lineno})"
            break
    return f"{exc.__class__.__name__}: {exc}{where}"
