"""Configuration: flag > PGMIG_* environment > [tool.pgmig] in pyproject.toml > default.

pydantic-settings gives the precedence and validation; this module only finds
the project root (the folder of the nearest pyproject.toml) so that relative
paths and the embedded server's data folder do not depend on where in the
project pgmig was started.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Type

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
)

if sys.version_info >= (3, 9):
    from typing import Annotated
else:  # pragma: no cover
    from typing_extensions import Annotated

from pgmig.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from pgmig.schema.exclude import Exclusions

TABLE_HEADER = ("tool", "pgmig")


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest pyproject.toml at or above `start` (default: the current folder)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


with warnings.catch_warnings():
    # `schema` is the documented key; pydantic warns that it shadows the
    # deprecated BaseModel.schema() classmethod, which pgmig never calls.
    warnings.filterwarnings("ignore", message=".*shadows an attribute.*")

    class _SchemaField(BaseSettings):
        # The managed schemas, the first one the default for tables without a schema and the
        # version table's home. `schema = "app"` (a string), `schemas = ["public", "audit"]`
        # (pyproject), `--schema` (repeatable) and PGMIG_SCHEMA (comma-separated) all fill it.
        schema: Annotated[List[str], NoDecode] = Field(default_factory=lambda: ["public"])  # type: ignore[assignment]


class Settings(_SchemaField):
    """pgmig's settings; each field is a flag, a PGMIG_* variable and a [tool.pgmig] key."""

    model_config = SettingsConfigDict(
        env_prefix="PGMIG_",
        extra="forbid",
        pyproject_toml_table_header=TABLE_HEADER,
    )

    database_url: Optional[str] = None
    # The server scratch databases are made on (check, generate's replay and proof, drift); None: the embedded one.
    dev_url: Optional[str] = None
    models: Annotated[List[str], NoDecode] = Field(default_factory=list)
    # Glob patterns of objects pgmig never reads, diffs, drops or reports (pgmig.schema.exclude),
    # added to the other tools' version tables, which are always excluded.
    exclude: Annotated[List[str], NoDecode] = Field(default_factory=list)
    migrations_dir: str = "migrations"
    version_table: str = "pgmig_revisions"
    # How long `up`/`down` wait for a lock, and let one statement run ("0": no limit).
    lock_timeout: str = "5s"
    statement_timeout: str = "0"
    # A command run on each revision file pgmig writes, `{path}` replaced (e.g. "ruff format {path}").
    post_write: Optional[str] = None
    # `pgmig fleet`'s targets: URLs (`URL#schema` for a schema of that database, `#schema` for one of
    # database_url's), `file:PATH` (one a line) or `sql:QUERY` (run on database_url); see pgmig.services.fleet.
    targets: Annotated[List[str], NoDecode] = Field(default_factory=list)

    # Filled in by load_settings, never read from a source.
    project_root: Path = Field(default_factory=Path.cwd, exclude=True)
    pyproject_path: Optional[Path] = Field(default=None, exclude=True)

    @field_validator("models", "exclude", mode="before")
    @classmethod
    def _split_models(cls, value: Any) -> Any:
        # PGMIG_MODELS and PGMIG_EXCLUDE are comma-separated; pyproject and flags give lists.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("database_url", "dev_url")
    @classmethod
    def _url_given(cls, value: Optional[str]) -> Optional[str]:
        # Set but empty (`PGMIG_DATABASE_URL=` in a CI file whose secret is missing) is a mistake, not
        # a choice: falling back to the embedded server would migrate a database nobody meant.
        if value is not None and not value.strip():
            raise ValueError("is empty: give a postgresql:// URL, or unset it to use the embedded server")
        return value

    @field_validator("targets", mode="before")
    @classmethod
    def _split_targets(cls, value: Any) -> Any:
        # PGMIG_TARGETS is comma-separated, except a `sql:` query, whose commas are its own.
        if isinstance(value, str):
            if value.strip().startswith("sql:"):
                return [value.strip()]
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("lock_timeout", "statement_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> str:
        from pgmig.db.connect import check_duration

        return check_duration(value)

    @field_validator("post_write")
    @classmethod
    def _command(cls, value: Optional[str]) -> Optional[str]:
        import shlex

        if value is None or not value.strip():
            return None
        try:
            shlex.split(value)
        except ValueError as exc:  # an unclosed quote
            raise ValueError(f"{value!r} is not a command line: {exc}") from None
        return value

    @field_validator("schema", mode="before")
    @classmethod
    def _split_schemas(cls, value: Any) -> Any:
        # `schema = "app"` and PGMIG_SCHEMA="public,audit" are strings; `schemas` and flags give lists.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",")]
        return value

    @field_validator("schema")
    @classmethod
    def _schemas(cls, value: List[str]) -> List[str]:
        if not value:
            raise ValueError("name at least one schema")
        for name in value:
            if not name.strip():
                raise ValueError("a schema name must not be empty")
            if "\x00" in name:  # no PostgreSQL name can hold one
                raise ValueError(f"schema {name!r} contains a NUL character")
        twice = sorted({name for name in value if value.count(name) > 1})
        if twice:
            raise ValueError(f"schema {twice[0]!r} is named twice")
        return value

    @property
    def schema_name(self) -> str:
        """The first managed schema: where tables without a schema go, and the version table."""
        return self.schema[0]

    @field_validator("exclude")
    @classmethod
    def _patterns(cls, value: List[str]) -> List[str]:
        for pattern in value:
            if not pattern.strip():
                raise ValueError("an exclude pattern must not be empty")
            if pattern.count(".") > 1:
                raise ValueError(f"exclude pattern {pattern!r}: use NAME or SCHEMA.NAME (globs allowed)")
        return value

    @property
    def exclusions(self) -> "Exclusions":
        """What is excluded: the other tools' version tables, then the `exclude` patterns."""
        from pgmig.schema.exclude import exclusions

        return exclusions(self.exclude)

    @property
    def schema_names(self) -> Tuple[str, ...]:
        """Every managed schema, the first one first."""
        return tuple(self.schema)

    @field_validator("version_table", "migrations_dir")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if "\x00" in value:  # neither a table name nor a path can hold one
            raise ValueError(f"{value!r} contains a NUL character")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: Type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> Tuple[PydanticBaseSettingsSource, ...]:
        sources: List[PydanticBaseSettingsSource] = [init_settings, env_settings]
        # A path that does not exist reads as an empty table.
        pyproject = _PYPROJECT_FOR_LOAD.get("path") or Path(os.devnull).with_name("pgmig-no-pyproject.toml")
        sources.append(_PyprojectSource(settings_cls, toml_file=pyproject))
        return tuple(sources)

    @property
    def migrations_path(self) -> Path:
        return resolve_path(self.migrations_dir, self.project_root)

    @property
    def embedded_data_dir(self) -> Path:
        return self.project_root / ".pgmig"


class _PyprojectSource(PyprojectTomlConfigSettingsSource):
    """[tool.pgmig], its `schemas` (the list) taken as `schema`: one setting, two spellings."""

    def __call__(self) -> Dict[str, Any]:
        return with_schemas_key(super().__call__())


def with_schemas_key(values: Dict[str, Any]) -> Dict[str, Any]:
    """`values` with a `schemas` entry renamed to `schema`; both given is an error."""
    if "schemas" not in values:
        return values
    if values.get("schema") is not None:
        raise ConfigError("give either schema or schemas, not both")
    renamed = {k: v for k, v in values.items() if k != "schemas"}
    renamed["schema"] = values["schemas"]
    return renamed


# pydantic-settings builds sources from the class; the pyproject path of one
# load is handed over here, not through a global that outlives the call.
_PYPROJECT_FOR_LOAD: Dict[str, Optional[Path]] = {}


def resolve_path(value: str, root: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def load_settings(overrides: Dict[str, Any] | None = None, cwd: Path | None = None) -> Settings:
    """Build the settings for one run; `overrides` are the flags given (None means not given)."""
    pyproject = find_pyproject(cwd)
    root = pyproject.parent if pyproject else (cwd or Path.cwd()).resolve()
    given = with_schemas_key({k: v for k, v in (overrides or {}).items() if v is not None and v != []})
    _PYPROJECT_FOR_LOAD["path"] = pyproject
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, pyproject, given)) from None
    except Exception as exc:  # a malformed pyproject.toml
        raise ConfigError(f"cannot read {pyproject}: {exc}") from None
    finally:
        _PYPROJECT_FOR_LOAD.clear()
    settings.project_root = root
    settings.pyproject_path = pyproject
    return settings


def _describe_validation_error(exc: ValidationError, pyproject: Path | None, given: Dict[str, Any]) -> str:
    problems = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"]) or "settings"
        if error["type"] == "extra_forbidden":
            where = f" in [tool.pgmig] of {pyproject}" if pyproject else ""
            problems.append(f"unknown setting {loc!r}{where}")
        else:
            source = _source(str(error["loc"][0]), pyproject, given) if error["loc"] else ""
            # A validator's own words, without pydantic's "Value error, " before them.
            reason = error.get("ctx", {}).get("error") if error["type"] == "value_error" else None
            problems.append(f"invalid setting {loc!r}{source}: {reason or error['msg']}")
    return "; ".join(problems)


def _source(name: str, pyproject: Path | None, given: Dict[str, Any]) -> str:
    """Where the value of setting `name` came from, by the precedence `Settings` reads them:
    the flag, then the PGMIG_* variable, then the [tool.pgmig] key."""
    if name in given:
        return f" (from --{name.replace('_', '-')})"
    variable = f"PGMIG_{name.upper()}"
    if any(key.upper() == variable for key in os.environ):  # pydantic-settings reads them case-insensitively
        return f" (from the environment variable {variable})"
    if pyproject is not None:
        return f" (from {name} in [tool.pgmig] of {pyproject})"
    return ""
