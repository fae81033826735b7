"""Open the target a Hedefler row describes, with its password from the keyring, wrapped once in
the retry policy."""

from __future__ import annotations

from edefter_helper.targets.base import ConfigurationError, CredentialsError, Target


def open_target(kind: str, address: str, target_name: str, user: str, *, backoff: float = 2.0,
                timeout: float | None = None) -> Target:
    """`timeout` (seconds, also EDEFTER_HTTP_TIMEOUT) bounds connecting and each read of a network target."""
    from edefter_helper.targets import registry
    from edefter_helper.targets.retry import Retrying, default_retry

    spec = registry.get(kind)
    if spec is None:
        raise ConfigurationError(f"Bilinmeyen hedef türü: {kind} ({', '.join(registry.kind_names())} olmalı).")
    if not address:
        raise ConfigurationError(f"'{target_name}' hedefinin Adres alanı boş.")
    password = None
    if spec.needs_password:
        from edefter_helper import credentials

        if not user:
            raise CredentialsError(f"'{target_name}' hedefi için Firmalar sayfasında Kullanıcı Adı boş.")
        password = credentials.get_password(target_name, user)
    inner: Target = spec.open(address, user, password, _timeout(timeout).get("timeout"))
    return Retrying(inner, retry=default_retry().new(backoff_factor=backoff))


def _timeout(value: float | None) -> dict:
    import os

    value = value or float(os.environ.get("EDEFTER_HTTP_TIMEOUT", "0") or 0)
    return {"timeout": (min(value, 10.0), value)} if value else {}
