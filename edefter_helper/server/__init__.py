"""The project's own storage server (docs/storage-api.md): Flask on waitress, SQLite + file store.

Kept import-light: the heavy modules load only when a function is called.
"""

from __future__ import annotations


def serve(data_dir, host: str = "127.0.0.1", port: int = 8765, **kw) -> None:
    from edefter_helper.server.run import serve as _serve

    _serve(data_dir, host=host, port=port, **kw)


def start_in_thread(data_dir, host: str = "127.0.0.1", port: int = 0, **kw):
    from edefter_helper.server.run import start_in_thread as _start

    return _start(data_dir, host=host, port=port, **kw)


def start_in_subprocess(data_dir, host: str = "127.0.0.1", port: int = 0, **kw):
    from edefter_helper.server.run import start_in_subprocess as _start

    return _start(data_dir, host=host, port=port, **kw)


def add_user(data_dir, name: str, password: str, vkns) -> None:
    from edefter_helper.server.run import add_user as _add

    _add(data_dir, name, password, vkns)


def list_users(data_dir) -> list[dict]:
    from edefter_helper.server.run import list_users as _list

    return _list(data_dir)
