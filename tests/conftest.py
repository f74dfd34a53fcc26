"""Shared fixtures. Databases: every test that asks for `store` or `db_url` gets a fresh, empty one per backend.

* ``sqlite``: a file in ``tmp_path`` (in a sub-folder that does not exist yet).
* ``postgresql``: a new database ``chatops_test_<random>`` on 127.0.0.1:5432,
  created from a connection to the ``test`` database in AUTOCOMMIT mode and
  dropped at teardown. Skipped (with the reason) when the server is not
  reachable. ``CHATOPS_TEST_POSTGRES_URL`` overrides the admin URL.
"""

from __future__ import annotations

import os
import uuid

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from chatops.store import Store

PG_ADMIN_CANDIDATES = [
    "postgresql+psycopg2://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg2://root@127.0.0.1:5432/test",
]


def _find_pg_admin() -> tuple[str | None, str]:
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return None, "psycopg2 is not installed (pip install -e '.[postgres]')"
    override = os.environ.get("CHATOPS_TEST_POSTGRES_URL")
    errors = []
    for url in [override] if override else PG_ADMIN_CANDIDATES:
        engine = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return url, ""
        except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
            errors.append(f"{make_url(url).username}: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}")
        finally:
            engine.dispose()
    return None, "PostgreSQL is not reachable on 127.0.0.1:5432 (" + "; ".join(errors) + ")"


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    url, reason = _find_pg_admin()
    if url is None:
        pytest.skip(reason)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def db_url(backend, tmp_path, request) -> str:
    """URL of a fresh, empty (unmigrated) database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'chatops.db'}"
        return
    admin_url = request.getfixturevalue("pg_admin_url")
    name = f"chatops_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def store(db_url):
    s = Store.for_url(db_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def redis_client() -> redis.Redis:
    """The Redis on 127.0.0.1:6379 (the test is skipped, with the reason, where none runs)."""
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    return client


@pytest.fixture
def redis_prefix(redis_client, request) -> str:
    """A key prefix (and queue name) of this test's own; its keys and queues are removed afterwards."""
    name = f"chatops-{request.node.name[:24].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"
    yield name
    for key in redis_client.scan_iter(f"{name}:*"):
        redis_client.delete(key)
    redis_client.delete(name, f"{name}.ingest")
