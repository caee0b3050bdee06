"""``python -m tickfleet.migrations MESSAGE`` (``make migration msg=...``): a new revision.

Autogenerate compares the models with a scratch SQLite database upgraded to ``head``, so
no fleet database is touched. Review what it wrote: SQLite reflects less than PostgreSQL
(server defaults, some type details), and the tests compare ``head`` with the models on
both.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from tickfleet.migrations import alembic_config
from tickfleet.storage.sql import make_engine


def _format_hooks(config: Config) -> None:
    """Run ruff on the written revision, so it is lint-clean before anyone reads it."""
    section = "post_write_hooks"
    config.set_section_option(section, "hooks", "ruff_format, ruff_fix")
    for name, options in (("ruff_format", "format"), ("ruff_fix", "check --fix")):
        config.set_section_option(section, f"{name}.type", "module")
        config.set_section_option(section, f"{name}.module", "ruff")
        config.set_section_option(section, f"{name}.options", f"{options} REVISION_SCRIPT_FILENAME")


def new_revision(message: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/head.db", create=True)
        try:
            with engine.begin() as connection:
                config = alembic_config(connection)
                _format_hooks(config)
                command.upgrade(config, "head")
                count = sum(1 for _ in ScriptDirectory.from_config(config).walk_revisions())
                command.revision(
                    config, message=message, autogenerate=True, rev_id=f"{count + 1:04d}"
                )
        finally:
            engine.dispose()


def main(argv: Sequence[str]) -> int:
    message = " ".join(argv).strip()
    if not message:
        print("usage: python -m tickfleet.migrations MESSAGE", file=sys.stderr)
        return 2
    new_revision(message)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
