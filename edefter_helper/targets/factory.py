"""Open the target a Hedefler row describes, with its password from the keyring, wrapped once in
the retry policy."""

from __future__ import annotations

from edefter_helper.targets.base import ConfigurationError, CredentialsError, Target


def open_target(kind: str, address: str, target_name: str, user: str, *, backoff: float = 2.0,
                timeout: float | None = None) -> Target:
    """`timeout` (seconds, also EDEFTER_HTTP_TIMEOUT) bounds connecting and each read of a network target."""
    from edefter_helper.targets.retry import Retrying, default_retry

    if not address:
        raise ConfigurationError(f"'{target_name}' hedefinin Adres alanı boş.")
    if kind == "klasör":
        from edefter_helper.targets.folder import FolderTarget

        inner: Target = FolderTarget(address)
    elif kind in ("http", "izibiz"):
        from edefter_helper import credentials

        if not user:
            raise CredentialsError(f"'{target_name}' hedefi için Firmalar sayfasında Kullanıcı Adı boş.")
        password = credentials.get_password(target_name, user)
        if kind == "http":
            from edefter_helper.targets.http import HttpTarget

            inner = HttpTarget(address, user, password, **_timeout(timeout))
        else:
            from edefter_helper.targets.izibiz import IzibizTarget

            inner = IzibizTarget(address, user, password, **_timeout(timeout))
    else:
        raise ConfigurationError(f"Bilinmeyen hedef türü: {kind}")
    return Retrying(inner, retry=default_retry().new(backoff_factor=backoff))


def _timeout(value: float | None) -> dict:
    import os

    value = value or float(os.environ.get("EDEFTER_HTTP_TIMEOUT", "0") or 0)
    return {"timeout": (min(value, 10.0), value)} if value else {}
