"""The worklist tests' list target and list loader, importable by name from the test modules.

A test module cannot import from ``conftest`` by name: when tests/models and
tests/worklist run in one session, ``conftest`` may be the other folder's.
"""

LIST_TARGET = "rising_high_use"


def load_lists(url: str, lists, county) -> None:
    """Import ``lists`` (oldest first) and the directory of ``county``'s clients into the database at ``url``."""
    from worklist.db import make_engine, session_factory
    from worklist.directory import build_directory, load_directory, read_clients
    from worklist.lists import import_risklist

    engine = make_engine(url)
    try:
        with session_factory(engine).begin() as db:
            for path in lists:
                import_risklist(db, path, imported_by="test")
            load_directory(db, build_directory(read_clients(county), seed=14))
    finally:
        engine.dispose()
