"""Integrator passwords, kept only in the operating system's keyring.

One stable service name for every secret: keyring on Windows keeps one credential per service
name and would move others to `user@service`, so the target and the user go into the keyring
user name instead (`"izibiz:ali@firma"`). Messages name the target and the user, never the secret.
"""

from __future__ import annotations

import getpass
from contextlib import contextmanager

import keyring
import keyring.errors

from edefter_helper.targets.base import CredentialsError

SERVICE = "edefter-yedekleme"

# Windows Credential Manager keeps at most 2560 bytes per secret, stored as UTF-16.
MAX_SECRET_BYTES_UTF16 = 2560


def _account(target: str, user: str) -> str:
    if not target or not user:
        raise CredentialsError("Hedef adı ve kullanıcı adı boş olamaz.")
    return f"{target}:{user}"


def _no_backend(target: str, user: str) -> CredentialsError:
    return CredentialsError(
        f"'{target}' hedefindeki '{user}' kullanıcısının şifresi için bu bilgisayarda kullanılabilir "
        "bir anahtar zinciri (Windows Kimlik Bilgisi Yöneticisi, macOS Anahtar Zinciri veya "
        "Secret Service) bulunamadı. " + NO_KEYRING_HINT
    )


NO_KEYRING_HINT = ("Linux'ta bir Secret Service gerekir (masaüstünde GNOME Anahtarlığı ya da KWallet; sunucuda "
                   "örneğin `sudo apt install gnome-keyring` ile `gnome-keyring-daemon`), ya da şifreli dosyada "
                   "saklayan bir keyring arka ucu (`pip install keyrings.cryptfile`, PYTHON_KEYRING_BACKEND ile "
                   "seçilir).")


def keyring_available() -> bool:
    """Is there a usable keyring backend at all (not keyring's 'fail' or an empty chain)?"""
    from keyring.backends import fail

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        return False
    backends = getattr(backend, "backends", None)
    return backends is None or bool(backends)


def check_length(password: str) -> None:
    """Refuse a secret Windows Credential Manager could not hold (it fails later with error 1783)."""
    size = len(password.encode("utf-16-le"))
    if size > MAX_SECRET_BYTES_UTF16:
        raise CredentialsError(
            f"Şifre çok uzun: Windows Kimlik Bilgisi Yöneticisi en fazla "
            f"{MAX_SECRET_BYTES_UTF16 // 2} karakter saklayabilir, girilen şifre "
            f"{size // 2} karakter."
        )


@contextmanager
def _keyring_errors(target: str, user: str, failed: str):
    """Keyring failures as a Turkish CredentialsError; `failed` ends the sentence ("kaydedilemedi")."""
    try:
        yield
    except keyring.errors.NoKeyringError:
        raise _no_backend(target, user) from None
    except keyring.errors.PasswordDeleteError:
        raise
    except keyring.errors.KeyringError as exc:
        # the backend's text may be cryptic but never holds the secret; keep only its class name
        raise CredentialsError(
            f"'{target}' hedefindeki '{user}' kullanıcısının şifresi {failed} ({type(exc).__name__})."
        ) from None


def set_password(target: str, user: str, password: str) -> None:
    account = _account(target, user)
    if not password:
        raise CredentialsError(f"'{target}' hedefindeki '{user}' kullanıcısı için şifre boş olamaz.")
    check_length(password)  # before keyring: nothing is stored when too long
    with _keyring_errors(target, user, "anahtar zincirine kaydedilemedi"):
        keyring.set_password(SERVICE, account, password)


def get_password(target: str, user: str) -> str:
    account = _account(target, user)
    with _keyring_errors(target, user, "anahtar zincirinden okunamadı"):
        password = keyring.get_password(SERVICE, account)
    if not password:
        raise CredentialsError(
            f"'{target}' hedefindeki '{user}' kullanıcısının şifresi kayıtlı değil. "
            "Önce şifreyi kaydedin."
        )
    return password


def delete_password(target: str, user: str) -> bool:
    """Remove the secret; False when there was none."""
    account = _account(target, user)
    try:
        with _keyring_errors(target, user, "anahtar zincirinden silinemedi"):
            keyring.delete_password(SERVICE, account)
    except keyring.errors.PasswordDeleteError:
        return False
    return True


def check(target: str, user: str) -> bool:
    """True when a password is stored (no backend counts as not stored)."""
    try:
        get_password(target, user)
    except CredentialsError:
        return False
    return True


def prompt_password(prompt: str = "Şifre: ", confirm: bool = True) -> str:
    """Ask without echo, twice, until both answers match and are not empty."""
    for _ in range(3):
        first = getpass.getpass(prompt)
        if not first:
            print("Şifre boş olamaz.")
            continue
        try:
            check_length(first)
        except CredentialsError as exc:
            print(exc.message)
            continue
        if not confirm:
            return first
        if getpass.getpass("Şifreyi tekrar girin: ") == first:
            return first
        print("Girilen şifreler aynı değil, tekrar deneyin.")
    raise CredentialsError("Şifre girilemedi: üç denemede de geçerli ve eşleşen bir şifre girilmedi.")
