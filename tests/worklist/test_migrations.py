"""Alembic migrations: idempotent, and the migrated schema is exactly the ORM's (no drift)."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.config import Config
from pathlib import Path
from sqlalchemy import inspect, text

import worklist.db
from worklist.db import Base, make_engine, migrate


def _head() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(worklist.db.__file__).with_name("migrations")))
    return ScriptDirectory.from_config(cfg).get_current_head()


def test_migration_is_idempotent_and_matches_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    migrate(url)
    migrate(url)  # a second run changes nothing and does not fail
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [_head()]
        assert conn.execute(text("SELECT id, last_id, last_hash FROM audit_head")).all() == [(1, 0, "0" * 64)]
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    assert diff == []
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert conn.dialect.name == "sqlite"
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()


def test_migrate_accepts_an_engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_head")).scalar() == 1
    engine.dispose()
