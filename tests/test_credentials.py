import getpass

import keyring
import keyring.backend
import keyring.errors
import pytest

from edefter_helper import credentials
from edefter_helper.targets.base import CredentialsError

SECRET = "çok-Gizli-ŞİFRE-42"


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1

    def __init__(self):
        super().__init__()
        self.store = {}
        self.calls = 0

    def get_password(self, service, username):
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.calls += 1
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        if (service, username) not in self.store:
            raise keyring.errors.PasswordDeleteError("yok")
        del self.store[(service, username)]


class HeadlessKeyring(keyring.backend.KeyringBackend):
    """What keyring falls back to on a Linux machine without Secret Service."""
    priority = 0

    def get_password(self, service, username):
        raise keyring.errors.NoKeyringError("No recommended backend was available.")

    def set_password(self, service, username, password):
        raise keyring.errors.NoKeyringError("No recommended backend was available.")

    def delete_password(self, service, username):
        raise keyring.errors.NoKeyringError("No recommended backend was available.")


@pytest.fixture
def ring():
    old = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(old)


def test_round_trip_uses_one_service_name(ring):
    credentials.set_password("izibiz", "ali@firma", SECRET)
    assert credentials.get_password("izibiz", "ali@firma") == SECRET
    assert credentials.check("izibiz", "ali@firma")
    assert ring.store == {("edefter-yedekleme", "izibiz:ali@firma"): SECRET}
    # another target with the same user is a separate secret
    assert not credentials.check("nas", "ali@firma")


def test_missing_names_target_and_user_not_secret(ring):
    credentials.set_password("izibiz", "veli", SECRET)
    with pytest.raises(CredentialsError) as err:
        credentials.get_password("izibiz", "ali")
    msg = err.value.message
    assert "izibiz" in msg and "ali" in msg and "kayıtlı değil" in msg
    assert SECRET not in msg and SECRET not in str(err.value)


def test_overlong_refused_before_keyring(ring):
    too_long = "ş" * 1281
    with pytest.raises(CredentialsError) as err:
        credentials.set_password("izibiz", "ali", too_long)
    assert "1280" in err.value.message and "çok uzun" in err.value.message
    assert too_long not in err.value.message
    assert ring.calls == 0 and ring.store == {}
    credentials.set_password("izibiz", "ali", "ş" * 1280)  # exactly at the limit is fine
    assert credentials.get_password("izibiz", "ali") == "ş" * 1280


def test_delete(ring):
    credentials.set_password("izibiz", "ali", SECRET)
    assert credentials.delete_password("izibiz", "ali") is True
    assert not credentials.check("izibiz", "ali")
    assert credentials.delete_password("izibiz", "ali") is False
    with pytest.raises(CredentialsError):
        credentials.get_password("izibiz", "ali")


def test_no_backend_is_a_turkish_credentials_error():
    old = keyring.get_keyring()
    keyring.set_keyring(HeadlessKeyring())
    try:
        with pytest.raises(CredentialsError) as err:
            credentials.set_password("izibiz", "ali", SECRET)
        assert "anahtar zinciri" in err.value.message and "ali" in err.value.message
        assert SECRET not in err.value.message
        with pytest.raises(CredentialsError):
            credentials.get_password("izibiz", "ali")
        assert credentials.check("izibiz", "ali") is False
    finally:
        keyring.set_keyring(old)


def test_prompt_asks_twice_until_match(monkeypatch, capsys):
    answers = iter(["bir", "iki", SECRET, SECRET])
    prompts = []

    def fake_getpass(prompt=""):
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    assert credentials.prompt_password("İzibiz şifresi: ") == SECRET
    assert prompts == ["İzibiz şifresi: ", "Şifreyi tekrar girin: "] * 2
    out = capsys.readouterr().out
    assert "aynı değil" in out and SECRET not in out


def test_credentials_check_says_when_there_is_no_keyring_at_all(edefter):
    proc = edefter("credentials", "check", "--target", "Merkez", "--user", "ali",
                   env_extra={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    assert proc.returncode == 1
    assert "anahtar zinciri (keyring) yok" in proc.stderr and "Secret Service" in proc.stderr
    assert "Traceback" not in proc.stderr
