"""A fresh PostgreSQL schema for one benchmark run (dropped afterwards), from a URL such as
``SIGNOFF_BENCH_POSTGRES_URL``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def scratch_schema(url: str, name: str) -> Iterator[str]:
    """Yield a URL whose connections use a new schema ``name_<pid>``; drop it on the way out."""
    import sqlalchemy as sa

    from bot.wiring import database_url

    url = database_url(url)
    schema = f"{name}_{os.getpid()}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        scoped = sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()
