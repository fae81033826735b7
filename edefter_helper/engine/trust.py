"""The list of certificates trusted to countersign for GİB.

A countersignature is only worth something if GİB made it. No GİB certificate ships with this
program (none is public here), so the list is configuration: PEM or DER files, or folders of them,
from `EDEFTER_GIB_TRUST` (paths separated by os.pathsep) and the data folder's
`gib-sertifikalari/`. A countersigning certificate is trusted when it is one of them, or was
issued directly by one of them (its signature checked with the issuer's key). Chains up to a root
and revocation are not checked.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

ENV = "EDEFTER_GIB_TRUST"
FOLDER = "gib-sertifikalari"
_SUFFIXES = {".pem", ".crt", ".cer", ".der"}


class TrustError(Exception):
    """A trust list that cannot be read; Turkish message."""


def _load_file(path: Path) -> list:
    from cryptography import x509

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrustError(f"GİB sertifika listesi okunamadı ({path}): {exc.strerror or exc}") from None
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise TrustError(f"GİB sertifika listesindeki dosya bir sertifika değil: {path}") from None


class TrustList:
    def __init__(self, certs=()):
        self.certs = list(certs)
        self._fingerprints = {hashlib.sha256(_der(c)).digest() for c in self.certs}

    @classmethod
    def load(cls, paths) -> "TrustList":
        certs = []
        for p in paths:
            p = Path(p)
            if p.is_dir():
                for f in sorted(p.iterdir()):
                    if f.suffix.lower() in _SUFFIXES and f.is_file():
                        certs.extend(_load_file(f))
            elif p.exists():
                certs.extend(_load_file(p))
            else:
                raise TrustError(f"GİB sertifika listesi bulunamadı: {p}")
        return cls(certs)

    @classmethod
    def default(cls) -> "TrustList":
        from edefter_helper import paths

        found = [Path(x) for x in os.environ.get(ENV, "").split(os.pathsep) if x.strip()]
        folder = paths.data_dir() / FOLDER
        if folder.is_dir():
            found.append(folder)
        return cls.load(found)

    def trusts(self, cert_b64: str | None) -> bool:
        if not cert_b64 or not self.certs:
            return False
        from cryptography import x509

        try:
            der = base64.b64decode(cert_b64)
        except ValueError:  # binascii.Error: not a certificate (a damaged cache row)
            return False
        if hashlib.sha256(der).digest() in self._fingerprints:
            return True
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            return False
        for issuer in self.certs:
            if cert.issuer != issuer.subject:
                continue
            try:
                cert.verify_directly_issued_by(issuer)
                return True
            except (ValueError, TypeError, Exception):  # noqa: BLE001  InvalidSignature and kin
                continue
        return False


def _der(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.DER)
