"""Library services: what the commands do, usable without the CLI.

Each service is a function taking a `Project` (the configured project:
settings, handlers, models, database URL) and, where it has choices, a typed
options dataclass; it returns plain results and raises `PgmigError`s whose
hints are structured (see `pgmig.errors.Hint`). The CLI parses flags into
those options and words the hints with its flags.

- `project`: `Project`
- `diff`: `diff` (the plan from the database to the models)
- `generate`: `GenerateOptions`, `Questioner`, `generate`
- `run`: `RunOptions`, `run` (up/down, or their SQL), `status`, `stamp`
- `check`: `CheckOptions`, `check`, `drift`
- `init`: `InitOptions`, `init_project`

Modules load on first use, so importing one service never imports SQLAlchemy
or the models.
"""
