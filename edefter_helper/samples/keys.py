"""Test keys and certificates for sample files: a taxpayer "mali mühür" per firm and a "GİB" one.

Keys are derived from a fixed label (not from os.urandom) so that the same seed gives the same
bytes in every process; they are computed once per process and cached. They are TEST keys only.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
import random
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

_E = 65537
_SMALL_PRIMES = [p for p in range(3, 5000) if all(p % q for q in range(2, int(p**0.5) + 1))]
_PRIMORIAL = math.prod(_SMALL_PRIMES)  # one gcd sieves out every small factor at once


def _probable_prime(n: int, rng: random.Random) -> bool:
    # cryptography cannot generate a key from a seed, so primes are found here (Miller-Rabin)
    if math.gcd(n, _PRIMORIAL) != 1:
        return False
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(8):  # test keys: 2**-16 error bound is plenty
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, rng: random.Random) -> int:
    while True:
        n = rng.getrandbits(bits) | (3 << (bits - 2)) | 1  # top two bits set: n*m has 2*bits bits
        if (n - 1) % _E and _probable_prime(n, rng):
            return n


@lru_cache(maxsize=None)
def derived_key(label: str) -> rsa.RSAPrivateKey:
    """A deterministic RSA-2048 key for `label` (test use only)."""
    rng = random.Random(hashlib.sha256(b"edefter-sample-key:" + label.encode()).digest())
    p = _prime(1024, rng)
    q = _prime(1024, rng)
    while q == p:
        q = _prime(1024, rng)
    d = pow(_E, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p, q=q, d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p), dmq1=rsa.rsa_crt_dmq1(d, q), iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(_E, p * q),
    )
    return numbers.private_key()


@dataclass(frozen=True)
class Signer:
    """A key with its self-signed certificate, ready for XML-DSig."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    cert_b64: str  # DER, base64, for ds:X509Certificate
    cert_digest_b64: str  # sha256 of the DER, for xades:CertDigest
    issuer_name: str  # RFC 4514, for ds:X509IssuerName
    serial: int

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _make_signer(key: rsa.RSAPrivateKey, name: x509.Name, serial: int) -> Signer:
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(dt.datetime(2010, 1, 1, tzinfo=dt.timezone.utc))
        .not_valid_after(dt.datetime(2099, 12, 31, tzinfo=dt.timezone.utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False,
                          crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .sign(key, hashes.SHA256())  # PKCS#1 v1.5: deterministic, so the cert bytes are too
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return Signer(
        key=key,
        cert=cert,
        cert_b64=base64.b64encode(der).decode(),
        cert_digest_b64=base64.b64encode(hashlib.sha256(der).digest()).decode(),
        issuer_name=cert.issuer.rfc4514_string(),
        serial=serial,
    )


@lru_cache(maxsize=None)
def taxpayer_signer(vkn: str, company: str) -> Signer:
    """The firm's test "mali mühür": one shared key, a certificate per firm."""
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "TR"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, company),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, vkn),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{company} (TEST MALİ MÜHÜR)"),
    ])
    serial = int.from_bytes(hashlib.sha256(vkn.encode()).digest()[:8], "big") | 1
    return _make_signer(derived_key("taxpayer"), name, serial)


@lru_cache(maxsize=None)
def gib_signer() -> Signer:
    """GİB's test certificate for the countersignature on approved berats."""
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "TR"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gelir İdaresi Başkanlığı"),
        x509.NameAttribute(NameOID.COMMON_NAME, "GİB e-Defter TEST"),
    ])
    return _make_signer(derived_key("gib"), name, 0x61B)
