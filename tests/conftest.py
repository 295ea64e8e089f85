"""Shared, session-scoped fixtures: the expensive parts (corpus generation, extraction) run once.

Prefect runs with a throw-away home (no user profile is touched) and, unless a
test starts a server itself, with its temporary in-process server.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import av
import numpy as np
import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="emofuse-test-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
#: The data dir (warm-cluster note, default catalog) of this session alone: not the checkout's ./emofuse-data,
#: which a user's `emofuse serve` shares, nor another pytest-xdist worker's.
os.environ["EMOFUSE_DATA"] = tempfile.mkdtemp(prefix="emofuse-test-data-")


def _remove_when_this_process_ends(paths: list[str], pid: int = os.getpid()) -> None:
    """Also in a process that never uses them (pytest-xdist's controller, --collect-only); not in a forked child."""
    if os.getpid() == pid:
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)


atexit.register(_remove_when_this_process_ends, [_PREFECT_HOME, os.environ["EMOFUSE_DATA"]])
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_PROFILE", None)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: The clean demo corpus of the end-to-end tests: 2 actors × 8 emotions × 2 statements.
DEMO_ACTORS = 2


def strip_audio(src: str, dst: str) -> None:
    """Copy only the video stream of ``src`` into ``dst`` (a video without audio)."""
    with av.open(src) as inp, av.open(dst, "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            out.mux(packet)


def write_silent_video(path: str, seconds: float = 1.5) -> None:
    """A gradient video (no face) with a silent AAC track."""
    with av.open(path, "w") as c:
        vs = c.add_stream("mpeg4", rate=25)
        vs.width, vs.height, vs.pix_fmt = 128, 96, "yuv420p"
        a = c.add_stream("aac", rate=16000)
        a.layout = "mono"
        for i in range(int(seconds * 25)):
            img = np.tile(np.linspace(0, 255, 128, dtype=np.uint8)[None, :, None], (96, 1, 3))
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        pts = 0
        for _ in range(int(seconds * 16000) // 1024):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
            fr.sample_rate, fr.pts = 16000, pts
            pts += 1024
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode():
            c.mux(p)


def pytest_collection_modifyitems(config, items):
    """Files with a ``slow`` test (it starts servers or clusters) first, each file's tests in their order:
    under pytest-xdist (``./dev test`` gives each worker whole files) the long files start at once and the
    short ones fill the end, instead of one long file running alone at the end."""
    slow_files = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow_files)  # stable: order kept otherwise


@pytest.fixture(scope="session")
def session_dir():
    d = tempfile.mkdtemp(prefix="emofuse-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_corpus(session_dir) -> str:
    """A generated 2-actor RAVDESS-layout corpus (read-only for tests)."""
    from emofuse.catalog.corpora.demo import generate

    out = os.path.join(session_dir, "demo")
    generate(out, actors=DEMO_ACTORS, seed=0)
    return out


@pytest.fixture(scope="session")
def dirty_corpus(session_dir, demo_corpus) -> dict[str, str]:
    """The demo corpus plus broken files with RAVDESS names: corrupt, empty, audio-less, silent+faceless."""
    out = os.path.join(session_dir, "dirty")
    shutil.copytree(demo_corpus, out)
    actor = os.path.join(out, "Actor_01")
    good = sorted(os.listdir(actor))[0]
    paths = {
        "corrupt": os.path.join(actor, "01-01-03-02-01-02-01.mp4"),
        "empty": os.path.join(actor, "01-01-04-02-01-02-01.mp4"),
        "no_audio": os.path.join(actor, "01-01-05-02-01-02-01.mp4"),
        "silent": os.path.join(actor, "01-01-06-02-01-02-01.mp4"),
    }
    with open(os.path.join(actor, good), "rb") as f:
        head = f.read(3000)
    with open(paths["corrupt"], "wb") as f:  # a truncated mp4: a header and nothing after it
        f.write(head)
    open(paths["empty"], "wb").close()
    strip_audio(os.path.join(actor, good), paths["no_audio"])
    write_silent_video(paths["silent"])
    return {"root": out, **paths}


@pytest.fixture(scope="session")
def extracted(session_dir, dirty_corpus) -> dict:
    """The extract flow, all feature sets, on a real local Dask cluster, run once for the session."""
    from emofuse.flows.extract import extract

    catalog = os.path.join(session_dir, "catalog")
    record = extract(source=dirty_corpus["root"], catalog=catalog, n_workers=2)
    return {"catalog": catalog, "record": record, **dirty_corpus}


@pytest.fixture(scope="session")
def prefect_server(session_dir):
    """A real Prefect server on a free loopback port (own home, SQLite), for the session."""
    from pathlib import Path

    from emofuse.flows import local_server as ls

    home = os.path.join(session_dir, "prefect-server-home")
    stack = ls.LocalStack(Path(session_dir) / "state", ls.free_port())
    stack.state_dir.mkdir(exist_ok=True)
    api = ls.start_server(stack, env=ls.server_env(home=home))
    yield {"api": api, "home": home, "stack": stack, "env": ls.server_env(api, home=home)}
    ls.stop(stack, "emofuse-serve")
    ls.stop(stack, "prefect-server")


def _plugin_names(registry: dict) -> list[str]:
    """Names in a plug-in registry whose class is not emofuse's own (a test's or a docs example's)."""
    def module(entry: object) -> str:
        return (entry if isinstance(entry, type) else type(entry)).__module__
    return [name for name, entry in registry.items() if not module(entry).startswith("emofuse.")]


@pytest.fixture(autouse=True)
def _forget_plugins_registered_in_process():
    """A test (or a docs example it runs) that registers an extractor, corpus or model in this process
    must not leave it behind: later runs would plan it, and Dask workers (other processes) do not know it."""
    yield
    import sys

    extractors = sys.modules.get("emofuse.pipeline.registry")
    corpora = sys.modules.get("emofuse.catalog.corpora.registry")
    models = sys.modules.get("emofuse.fusion.models.registry")  # only registries a test imported: no torch here
    for name in _plugin_names(extractors._REGISTRY) if extractors else ():
        extractors._REGISTRY.pop(name)
    for name in _plugin_names(corpora._REGISTRY) if corpora else ():
        corpora.unregister_corpus(name)
    for name in _plugin_names(models._MODELS) if models else ():
        models.unregister_model(name)
