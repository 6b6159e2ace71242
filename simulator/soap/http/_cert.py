"""A self-signed TLS certificate for the loopback endpoint, made with ``cryptography``.

The validity period uses wall-clock time on purpose: TLS clients check certificates against
their own clock, not the simulator's virtual one.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["sha1_thumbprint", "write_self_signed"]


def write_self_signed(directory: str | Path, *, common_name: str = "localhost") -> tuple[Path, Path]:
    """Write ``vcbsim.crt`` and ``vcbsim.key`` (PEM) into ``directory``; return their paths."""
    directory = Path(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vcbsim simulated ESX host"),
        ]
    )
    now = _dt.datetime.now(_dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=1))
        .not_valid_after(now + _dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "vcbsim.crt"
    key_path = directory / "vcbsim.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def sha1_thumbprint(cert_path: str | Path) -> str:
    """The SHA-1 thumbprint of the (first) certificate in the PEM file ``cert_path``, as vSphere
    writes one: upper-case hex pairs joined by colons (``AB:CD:...``). A host gives it in every
    ``HttpNfcLeaseDeviceUrl.sslThumbprint`` ("SSL thumbprint for the host the URL refers to",
    API reference), so a client can pin the certificate of the transfer it was sent to."""
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA1()))  # noqa: S303 - vSphere's format
