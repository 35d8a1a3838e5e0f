"""Where tracking data lives: resolve the MLflow tracking URI and prepare a local store.

Order of precedence: an explicit URI (``--tracking-uri``), then the
``MLFLOW_TRACKING_URI`` environment variable, then a SQLite store under
``runs/`` of the working directory. The default needs no server: the database
is ``runs/mlflow.db`` and artifacts go to ``runs/artifacts``, both created on
first use. Any SQLite store keeps its artifacts in ``artifacts/`` beside the
database file, so one folder holds a whole store and can be moved or zipped.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from gpengine.errors import GpengineError

ENV_VAR = "MLFLOW_TRACKING_URI"
DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "artifacts"


def default_uri(cwd: str | os.PathLike | None = None) -> str:
    """The default store: ``sqlite:///<cwd>/runs/mlflow.db``."""
    root = Path(cwd or os.getcwd()).resolve() / "runs"
    return "sqlite:///" + str(root / DB_NAME)


def resolve_uri(explicit: str | None = None) -> str:
    """Explicit argument > MLFLOW_TRACKING_URI > default SQLite store under runs/."""
    if explicit:
        return _normalise(explicit)
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return _normalise(env)
    return default_uri()


def _normalise(uri: str) -> str:
    """A bare filesystem path to a ``.db`` file means a SQLite store there."""
    if "://" not in uri and uri.endswith(".db"):
        return "sqlite:///" + str(Path(uri).resolve())
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a SQLite URI, or None for any other kind of store."""
    if not uri.startswith("sqlite:"):
        return None
    path = unquote(urlparse(uri).path)
    if not path or path == "/:memory:":
        return None
    # sqlite:///rel.db -> "/rel.db" is relative in SQLAlchemy; sqlite:////abs.db -> "//abs.db"
    if path.startswith("//"):
        return Path(path[1:])
    return Path(path[1:]).resolve()


def is_local(uri: str) -> bool:
    """Whether the store is a file on this machine (no server in between)."""
    return sqlite_path(uri) is not None or uri.startswith("file:") or "://" not in uri


def artifact_root(uri: str) -> Path | None:
    """Where artifacts of a SQLite store go (beside the database); None when the store decides."""
    db = sqlite_path(uri)
    return db.parent / ARTIFACTS_DIR if db is not None else None


def artifact_location(uri: str, experiment_name: str) -> str | None:
    """Artifact location for a new experiment; None lets the store (or server) choose."""
    root = artifact_root(uri)
    if root is None:
        return None
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", experiment_name).strip("-") or "default"
    return (root / slug).as_uri()


def prepare(uri: str) -> str:
    """Create the folders of a local SQLite store; one clear error line if we cannot.

    Returns the URI unchanged so callers can chain it.
    """
    db = sqlite_path(uri)
    if db is None:
        return uri
    for folder in (db.parent, db.parent / ARTIFACTS_DIR):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GpengineError(f"cannot create tracking folder {folder}: {exc.strerror or exc}") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise GpengineError(
                f"tracking folder {folder} is not writable; "
                f"fix its permissions or pass --tracking-uri / set {ENV_VAR}"
            )
    _check_database_file(db)
    if db.exists() and not os.access(db, os.R_OK | os.W_OK):
        raise GpengineError(f"tracking database {db} is not writable; fix its permissions or pass --tracking-uri")
    if not db.exists():
        _create_wal_database(db)
    return uri


def _check_database_file(db: Path) -> None:
    """A database path that names a folder (or a device) fails at once: MLflow retried opening it
    for almost two minutes and then showed SQLAlchemy's traceback."""
    if db.exists() and not db.is_file():
        raise GpengineError(f"tracking database {db} is not a file; pass --tracking-uri sqlite:///PATH.db")


def _create_wal_database(db: Path) -> None:
    """Create an empty SQLite file in write-ahead-log mode (MLflow adds its tables to it).

    WAL mode is a property of the file, so it is set once, here. It cuts the
    cost of each MLflow write by about half (fewer fsyncs per commit) and lets
    `gpengine ui` read while a search writes, without "database is locked".
    """
    import sqlite3

    try:
        con = sqlite3.connect(str(db))
        try:
            con.execute("PRAGMA journal_mode=WAL")
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise GpengineError(f"cannot create tracking database {db}: {exc}") from None


ACCEPTED = ("an sqlite:///PATH.db URI (or a path ending in .db), a database URI "
            "(postgresql://, mysql://, mssql://) or an http(s):// tracking server")


def check_uri(uri: str) -> str:
    """Refuse, in one line, a URI that MLflow would refuse only once the search has started.

    Pure: touches no file and no network. A plain folder or ``file:`` URI is MLflow's
    file store, which MLflow 3 refuses unless ``MLFLOW_ALLOW_FILE_STORE`` is set;
    an unknown scheme is checked against MLflow's own list of store kinds.
    """
    scheme = urlparse(uri).scheme.lower() if "://" in uri else ""
    if scheme in ("", "file"):
        from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE

        if MLFLOW_ALLOW_FILE_STORE.get():
            return uri
        raise GpengineError(f"tracking URI {uri!r} is a folder (MLflow's file store), which this MLflow refuses; "
                            f"use {ACCEPTED}")
    known = _store_schemes()
    if known is not None and scheme.split("+")[0] not in known:
        raise GpengineError(f"tracking URI {uri!r} has an unknown scheme {scheme!r}; use {ACCEPTED}")
    return uri


def _store_schemes() -> set[str] | None:
    """The URI schemes MLflow (plugins included) can store to; None if this MLflow hides them."""
    try:
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry

        return {str(k).lower() for k in _tracking_store_registry._registry}
    except (ImportError, AttributeError):  # a private registry: if it moves, MLflow's own error remains
        return None


SEARCH_REMEDY = "start it, fix --tracking-uri, or pass --no-tracking"


def check_reachable(uri: str, timeout: float = 5.0, remedy: str = SEARCH_REMEDY) -> None:
    """For an http(s) store, one quick request without retries; one clear line when nothing answers
    (ending with `remedy`: a search can run without tracking, reading a store cannot).

    Any HTTP answer counts (even 401 or 404: someone is there). Without this, MLflow's own
    client retries a refused connection for minutes (7 retries, backoff factor 2) before it
    says anything, and the search sat silent all that time.
    """
    if urlparse(uri).scheme.lower() not in ("http", "https"):
        return
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:
        http_request(get_default_host_creds(uri), "/health", "GET", max_retries=0, timeout=timeout,
                     raise_on_status=False)
    except Exception as exc:  # noqa: BLE001 - connection refused, DNS, timeout, TLS: all say "not reachable"
        raise GpengineError(f"tracking server {uri} is not reachable ({_root_cause(exc)}); {remedy}") from None


def _root_cause(exc: BaseException) -> str:
    """The innermost error of a chain ("Connection refused", not three layers of urllib3 wrapping)."""
    seen = set()
    while id(exc) not in seen and (exc.__cause__ or exc.__context__) is not None:
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return _clip_line(str(exc.args[-1] if isinstance(exc, OSError) and exc.args else exc) or type(exc).__name__)


def _clip_line(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def client(uri: str | None = None, create: bool = True):
    """An MlflowClient on the resolved store (folders created when `create`).

    MLflow logs every schema migration at INFO when it creates a database;
    that noise is for MLflow developers, so it is lowered to WARNING here.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError  # MLflow's SQL stores are built on it

    resolved = check_uri(resolve_uri(uri))
    # a server that is down: one line now, not MLflow's retries for minutes and then a traceback
    check_reachable(resolved, remedy="start it or fix --tracking-uri")
    if create:
        prepare(resolved)
    else:
        db = sqlite_path(resolved)
        if db is not None and not db.exists():
            raise GpengineError(f"no tracking store at {db}; run a search first or pass --tracking-uri")
        if db is not None:
            _check_database_file(db)
    for name in ("mlflow.store.db.utils", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return MlflowClient(tracking_uri=resolved)  # builds the store: MLflow refuses a bad one here
    except MlflowException as exc:
        raise GpengineError(f"MLflow refuses tracking URI {resolved!r}: {_clip_line(exc.message)}") from None
    except SQLAlchemyError as exc:  # a file that is not a database; SQLAlchemy's text adds the SQL and a link
        raise GpengineError(f"cannot open tracking store {resolved!r}: {_clip_line(str(exc.orig or exc))}") from None
