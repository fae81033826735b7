"""One read from check to package: the bytes packed and sent are the bytes verified; a stale verdict
never stands for changed bytes. And the GİB trust list: who countersigned is named, never assumed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edefter_helper import actions
from edefter_helper import status as S
from edefter_helper.engine import package
from edefter_helper.engine.cache import FileCache
from edefter_helper.engine.package import PackError, pack
from edefter_helper.engine.scan import scan
from edefter_helper.engine.trust import TrustList
from edefter_helper.engine.verify import verify_roots
from edefter_helper.samples import write_month
from edefter_helper.samples.keys import gib_signer, taxpayer_signer
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook
from tests.conftest import nas_workbook

VKN = "4810525635"


def _flip_one_digit(path: Path) -> None:
    """Same size, other bytes: an amount changed by one digit."""
    data = path.read_bytes()
    at = data.index(b"<gl-cor:amount")
    at = data.index(b">", at) + 1
    digit = data[at:at + 1]
    path.write_bytes(data[:at] + (b"9" if digit != b"9" else b"8") + data[at + 1:])


def test_file_changed_after_verify_is_never_packed(tmp_path):
    month = write_month(tmp_path / "ay", VKN, "2024-01")
    (ms,) = verify_roots([tmp_path / "ay"], trust=TrustList()).sets
    assert ms.valid and all(f.sha256 for f in ms.files)
    _flip_one_digit(month.find("Y"))
    out = tmp_path / "paket"
    with pytest.raises(PackError) as caught:
        pack(ms, out)
    assert "doğrulandıktan sonra değişti" in caught.value.message
    assert caught.value.paths == [str(month.find("Y"))]
    assert list(out.iterdir()) == []  # no package, no half-written temporary file


def test_unverified_set_is_never_packed(tmp_path):
    write_month(tmp_path / "ay", VKN, "2024-01")
    (ms,) = scan([tmp_path / "ay"]).sets  # scanned only
    with pytest.raises(PackError, match="doğrulanmadan"):
        pack(ms, tmp_path / "paket")


def test_changed_bytes_with_the_same_size_and_mtime_are_read_again(tmp_path):
    """The verify cache is keyed by file identity; a same-size edit with its mtime put back must
    still be verified again (ctime and inode are part of the identity)."""
    month = write_month(tmp_path / "ay", VKN, "2024-01")
    cache_path = tmp_path / "cache.sqlite3"
    cache = FileCache(cache_path)
    assert verify_roots([tmp_path / "ay"], cache, trust=TrustList()).sets[0].valid
    cache.close()
    target = month.find("Y")
    st = target.stat()
    _flip_one_digit(target)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    cache = FileCache(cache_path)
    (ms,) = verify_roots([tmp_path / "ay"], cache, trust=TrustList()).sets
    cache.close()
    assert not ms.valid
    assert [p.code for p in ms.problems] == ["signature-invalid"]


def test_backup_refuses_a_month_changed_between_check_and_pack(tmp_path, edefter, monkeypatch):
    """Through the Toplu Yedekle workflow with a folder target: the month ends Yedeklenemedi with the
    reason, nothing reaches the target, and the next run verifies the file again."""
    ledgers = tmp_path / "defter"
    month = write_month(ledgers, VKN, "2024-01")
    wb, nas = nas_workbook(tmp_path, edefter, ledgers, VKN)
    opts = actions.Options(journal=tmp_path / "j.sqlite3", retry_backoff=0.01, wait=5, poll=0.1)

    real_pack = package.pack

    def pack_after_an_edit(ms, out_dir):
        _flip_one_digit(month.find("Y"))  # another program rewrites the ledger right now
        return real_pack(ms, out_dir)

    monkeypatch.setattr(package, "pack", pack_after_an_edit)
    summary = actions.backup(FileBook(wb), options=opts)
    assert summary.count(S.FAILED) == 1, summary.results
    assert list(nas.rglob("*.zip")) == []
    rows = FileBook(wb).read_rows(L.PERIODS)
    assert rows[0]["status"] == S.FAILED
    assert "doğrulandıktan sonra değişti" in rows[0]["message"]

    monkeypatch.setattr(package, "pack", real_pack)
    summary = actions.backup(FileBook(wb), options=opts)  # read again: the edit breaks the signature
    assert summary.count(S.FAILED) == 1
    assert list(nas.rglob("*.zip")) == []
    assert "İmza doğrulanamadı" in FileBook(wb).read_rows(L.PERIODS)[0]["message"]


# -- who countersigned ----------------------------------------------------------------------

def _verify_json(edefter, folder: Path, env: dict | None = None) -> tuple[int, dict]:
    proc = edefter("verify", folder, "--json", "--no-cache", env_extra=env)
    assert proc.stderr == "" or "Traceback" not in proc.stderr
    return proc.returncode, json.loads(proc.stdout) if proc.stdout else {}


def test_untrusted_countersigner_is_a_named_warning(tmp_path, edefter):
    write_month(tmp_path / "ay", VKN, "2024-01")
    rc, report = _verify_json(edefter, tmp_path / "ay")
    (s,) = report["sets"]
    assert rc == 0 and s["valid"] is True and s["problems"] == []
    codes = {w["code"] for w in s["warnings"]}
    assert codes == {"countersigner-untrusted"}
    assert all("GİB e-Defter TEST" in w["message"] for w in s["warnings"])
    assert len(s["warnings"]) == 2  # GIB-YB and GIB-KB
    human = edefter("verify", tmp_path / "ay", "--no-cache").stdout
    assert "Uyarı: Karşı imza GİB'e ait olarak doğrulanamadı" in human


def test_trusted_countersigner_by_certificate_or_issuer(tmp_path, edefter):
    write_month(tmp_path / "ay", VKN, "2024-01")
    pem = tmp_path / "gib.pem"
    pem.write_bytes(gib_signer().cert_pem)
    rc, report = _verify_json(edefter, tmp_path / "ay", {"EDEFTER_GIB_TRUST": str(pem)})
    assert rc == 0 and report["sets"][0]["warnings"] == []

    # a folder holding only an unrelated certificate: still a warning
    other = tmp_path / "baska"
    other.mkdir()
    (other / "mukellef.crt").write_bytes(taxpayer_signer(VKN, "Anadolu").cert_pem)
    rc, report = _verify_json(edefter, tmp_path / "ay", {"EDEFTER_GIB_TRUST": str(other)})
    assert rc == 0 and {w["code"] for w in report["sets"][0]["warnings"]} == {"countersigner-untrusted"}


def test_trust_list_accepts_a_certificate_issued_by_a_listed_one():
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def cert(subject, issuer, key, signer_key):
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(dt.datetime(2020, 1, 1)).not_valid_after(dt.datetime(2040, 1, 1))
                .sign(signer_key, hashes.SHA256()))

    from edefter_helper.engine.xades import cert_b64

    ca_key, leaf_key, rogue_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Kamu SM")])
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "GİB")])
    ca = cert(ca_name, ca_name, ca_key, ca_key)
    leaf = cert(leaf_name, ca_name, leaf_key, ca_key)
    forged = cert(leaf_name, ca_name, rogue_key, rogue_key)  # names the CA as issuer, not signed by it
    trust = TrustList([ca])
    assert trust.trusts(cert_b64(leaf))
    assert not trust.trusts(cert_b64(forged))
    assert not TrustList().trusts(cert_b64(leaf))


def test_unreadable_trust_list_is_a_usage_error(tmp_path, edefter):
    write_month(tmp_path / "ay", VKN, "2024-01")
    bad = tmp_path / "bozuk.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nbozuk\n-----END CERTIFICATE-----\n")
    proc = edefter("verify", tmp_path / "ay", "--no-cache", env_extra={"EDEFTER_GIB_TRUST": str(bad)})
    assert proc.returncode == 2
    assert "GİB sertifika listesindeki dosya bir sertifika değil" in proc.stderr
    assert "Traceback" not in proc.stderr
