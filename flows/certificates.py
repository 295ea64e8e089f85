"""Certificates for a Dask cluster over TLS: a private CA and one certificate it signs.

The scheduler, the workers and the clients (``emofuse serve --dask-tls DIR``,
``$EMOFUSE_DASK_TLS``) all use the same folder: each side presents ``cert.pem`` and
accepts only peers whose certificate ``ca.pem`` signed, so a machine without the
folder cannot join or submit work. Copy the folder to every machine of the cluster
over a trusted channel; ``ca-key.pem`` need not leave the machine that made it.

Run ``python -m emofuse.flows.certificates DIR --host 10.0.0.5 --host scheduler.lan``
(the hosts go into the certificate's subject alternative names; loopback is always
there).

Example:
    >>> import tempfile
    >>> d = make_certificates(tempfile.mkdtemp(), hosts=["10.0.0.5"])
    >>> sorted(p.name for p in d.iterdir())
    ['ca-key.pem', 'ca.pem', 'cert.pem', 'key.pem']
    >>> oct((d / "key.pem").stat().st_mode & 0o777)
    '0o600'
"""
from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from emofuse.flows.security import CA_FILE, CERT_FILE, KEY_FILE

CA_KEY_FILE = "ca-key.pem"
#: Always in the certificate: a cluster tried out on one machine works with the same folder.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key) -> None:
    from cryptography.hazmat.primitives import serialization

    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _san(hosts: Sequence[str]):
    from cryptography import x509

    names = []
    for h in dict.fromkeys([*LOOPBACK_HOSTS, *hosts]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def make_certificates(out_dir: str | os.PathLike[str], hosts: Sequence[str] = (), days: int = 365,
                      name: str = "emofuse-dask") -> Path:
    """Write ``ca.pem``/``ca-key.pem`` (a new CA) and ``cert.pem``/``key.pem`` (signed by it) into ``out_dir``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = _key(), _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(_san(hosts), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (out / CA_FILE).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (out / CERT_FILE).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(out / CA_KEY_FILE, ca_key)
    _write_key(out / KEY_FILE, key)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emofuse.flows.certificates",
                                 description="Make a CA and a certificate for a Dask cluster over TLS.")
    ap.add_argument("out", help="folder for ca.pem, ca-key.pem, cert.pem, key.pem")
    ap.add_argument("--host", action="append", default=[],
                    help="an address or name of the scheduler/workers (repeatable; loopback is always included)")
    ap.add_argument("--days", type=int, default=365, help="validity (default 365)")
    args = ap.parse_args(argv)
    out = make_certificates(args.out, args.host, args.days)
    print(f"wrote {out / CA_FILE}, {out / CERT_FILE}, {out / KEY_FILE} (and {out / CA_KEY_FILE}: keep it here)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
