"""Who may talk to the Prefect API and the Dask scheduler once they listen beyond loopback.

On 127.0.0.1 only this machine's users reach them. Off loopback, the Prefect API
needs Prefect's server auth string (HTTP basic auth checked by the server: the
server reads ``PREFECT_SERVER_API_AUTH_STRING``, every client and Dask worker sends
``PREFECT_API_AUTH_STRING``) and the Dask scheduler needs TLS with client
certificates (:func:`dask_security`, certificates from :mod:`emofuse.flows.certificates`).
Binding a non-loopback address without them is refused (:func:`check_prefect_bind`,
:func:`check_dask_bind`).

Example:
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, True, False)
    >>> check_prefect_bind("127.0.0.1", {})  # loopback: no credentials needed
    >>> check_prefect_bind("0.0.0.0", {SERVER_AUTH_ENV: "admin:s3cret-pass"})
    >>> check_prefect_bind("10.0.0.5", {})
    Traceback (most recent call last):
    ...
    emofuse.flows.security.InsecureBind: refusing to bind the Prefect API to 10.0.0.5 without authentication: ...
    >>> check_dask_bind("tcp://127.0.0.1:8786", None)
    >>> dask_client_kwargs({})  # no EMOFUSE_DASK_TLS: plain TCP
    {}
"""
from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The Prefect server's auth string (Prefect 3.8 setting ``server.api.auth_string``).
SERVER_AUTH_ENV = "PREFECT_SERVER_API_AUTH_STRING"
#: What every Prefect client sends (setting ``api.auth_string``): the serve process, CLIs, Dask workers.
CLIENT_AUTH_ENV = "PREFECT_API_AUTH_STRING"
#: A folder with ``ca.pem``, ``cert.pem`` and ``key.pem``: connect to the Dask scheduler over TLS with them.
DASK_TLS_ENV = "EMOFUSE_DASK_TLS"
#: File names in a certificate folder (:mod:`emofuse.flows.certificates` writes them).
CA_FILE, CERT_FILE, KEY_FILE = "ca.pem", "cert.pem", "key.pem"


class InsecureBind(ValueError):
    """A server would listen beyond loopback without authentication."""


class MissingCertificates(FileNotFoundError):
    """A certificate folder lacks ``ca.pem``, ``cert.pem`` or ``key.pem``."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address, no port) is reachable from this machine only."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it resolves to an interface others may reach
        return False


def check_prefect_bind(host: str, env: Mapping[str, str] | None = None) -> None:
    """Raise :class:`InsecureBind` when the Prefect API would listen on ``host`` beyond loopback with no auth string."""
    env = os.environ if env is None else env
    if is_loopback(host) or env.get(SERVER_AUTH_ENV):
        return
    raise InsecureBind(
        f"refusing to bind the Prefect API to {host} without authentication: anyone who reaches it could run "
        f"flows. Set {SERVER_AUTH_ENV}='user:long-random-password' for the server, and {CLIENT_AUTH_ENV} to the "
        f"same value for every client and Dask worker; or bind 127.0.0.1.")


def check_dask_bind(address: str, security: Any | None) -> None:
    """Raise :class:`InsecureBind` when a Dask scheduler at ``address`` is beyond loopback without TLS.

    For a scheduler to start, and for one to connect to (``emofuse doctor``): off
    loopback, only ``tls://`` with a TLS-only ``security`` passes.
    """
    from distributed.comm import parse_address, parse_host_port

    protocol, loc = parse_address(address)
    host = parse_host_port(loc)[0] if loc else ""
    if is_loopback(host):
        return
    if protocol == "tls" and security is not None and getattr(security, "require_encryption", False):
        return
    raise InsecureBind(
        f"Dask scheduler {address} off loopback without TLS: anyone who reaches it could run code on the workers. "
        f"Use a tls:// address with certificates (python -m emofuse.flows.certificates DIR, ${DASK_TLS_ENV}), "
        f"or 127.0.0.1.")


def dask_security(cert_dir: str | os.PathLike[str]) -> Any:
    """A ``distributed.security.Security`` for a client or worker: TLS only, this folder's CA, certificate and key.

    The scheduler checks the peer's certificate against the same CA, so a client
    without a certificate the CA signed is refused during the TLS handshake.
    """
    from distributed.security import Security

    d = Path(cert_dir)
    files = {name: d / name for name in (CA_FILE, CERT_FILE, KEY_FILE)}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise MissingCertificates(f"Dask TLS: missing {', '.join(missing)} (make them with "
                                f"`python -m emofuse.flows.certificates {d}`)")
    return Security(tls_ca_file=str(files[CA_FILE]), tls_client_cert=str(files[CERT_FILE]),
                    tls_client_key=str(files[KEY_FILE]), require_encryption=True)


def dask_client_kwargs(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Client keyword arguments for an existing cluster: ``security`` from ``$EMOFUSE_DASK_TLS`` when set."""
    env = os.environ if env is None else env
    cert_dir = env.get(DASK_TLS_ENV)
    return {"security": dask_security(cert_dir)} if cert_dir else {}


def client_auth_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The client auth string a process started with ``env`` should send: its own, else the server's."""
    env = os.environ if env is None else env
    value = env.get(CLIENT_AUTH_ENV) or env.get(SERVER_AUTH_ENV)
    return {CLIENT_AUTH_ENV: value} if value else {}
