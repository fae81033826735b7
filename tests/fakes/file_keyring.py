"""A keyring backend for TESTS ONLY: secrets in a plaintext JSON file named by EDEFTER_TEST_KEYRING.

It lets a CLI subprocess read the passwords a test planted:

    env PYTHON_KEYRING_BACKEND=tests.fakes.file_keyring.FileKeyring EDEFTER_TEST_KEYRING=/tmp/x.json

with the repository root as the working directory (or on PYTHONPATH) so `tests.fakes` imports.
Never used at runtime: the application only ever talks to the operating system's keyring.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import keyring.backend
import keyring.errors

ENV = "EDEFTER_TEST_KEYRING"


def _path() -> Path:
    value = os.environ.get(ENV)
    if not value:
        raise keyring.errors.KeyringError(f"{ENV} is not set")
    return Path(value)


def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False)
    os.replace(tmp, path)  # a reader sees the old file or the new one, never half


class FileKeyring(keyring.backend.KeyringBackend):
    priority = 1  # only chosen explicitly (PYTHON_KEYRING_BACKEND or keyring.set_keyring)

    def get_password(self, service, username):
        return _read(_path()).get(service, {}).get(username)

    def set_password(self, service, username, password):
        path = _path()
        data = _read(path)
        data.setdefault(service, {})[username] = password
        _write(path, data)

    def delete_password(self, service, username):
        path = _path()
        data = _read(path)
        if username not in data.get(service, {}):
            raise keyring.errors.PasswordDeleteError("not set")
        del data[service][username]
        _write(path, data)
