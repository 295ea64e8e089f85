"""Smoke run of an installed emofuse: every compiled dependency, the whole job, on a tiny corpus.

``./dev smoke 3.12`` installs the project into a fresh virtual environment on that Python and
runs this script with the environment's interpreter; ``./dev test`` does so for every supported
version besides the one the test suite runs on. It is not a pytest module (pytest collects
``test_*.py`` only): it checks what a user's install on another Python must do, end to end:

* ``import emofuse`` (version, ``Catalog``) and each compiled dependency's import;
* a 12-clip demo corpus (3 actors, 4 emotions; PyAV encodes, espeak-ng speaks);
* ``emofuse extract`` (Prefect temporary server, Dask local cluster of 2 workers):
  decode (PyAV), eGeMAPS (opensmile), faces (YuNet + dlib's ResNet in onnxruntime),
  text (transformers), log-mel (torchaudio), every item ``ok``;
* ``emofuse train --epochs 1`` (torch) over 3 speaker folds, ``emofuse score`` (predictions);
* ``emofuse.extract(...)`` from Python with the faces run by dlib-bin, whose embeddings
  must match the onnxruntime engine's;
* reads through ``emofuse.Catalog``: pandas tables and numpy sequences.

Each check prints one line; the last line is ``N passed, M failed in S s`` (the CI log's
count), and the exit status is 1 when a check failed. Run from anywhere::

    .venv-smoke/bin/python tests/smoke_run.py [--workdir DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

#: Imports that load a compiled extension (module -> what needs it).
COMPILED = {
    "av": "decode", "opensmile": "eGeMAPS", "onnxruntime": "faces engine", "dlib": "faces (dlib-bin)",
    "cv2": "face detection", "torch": "fusion, log-mel", "torchaudio": "log-mel", "transformers": "text",
    "tokenizers": "text", "zarr": "sequences", "pyarrow": "tables", "numcodecs": "Zarr codecs",
    "insightface": "faces (insightface backend)", "distributed": "Dask cluster", "prefect": "flows",
    "sqlalchemy": "Prefect server", "safetensors": "run weights", "skimage": "demo corpus",
}
#: Optional extras: imported when installed (``pip install 'emofuse[asr]'``).
OPTIONAL = {"faster_whisper": "ASR (extra asr)", "ctranslate2": "ASR (extra asr)"}
FEATURE_SETS = ("egemaps", "faces", "logmel", "text")
ACTORS, EMOTIONS = 3, (1, 3, 4, 5)
#: Seconds a command may take before the check fails (a hung server or cluster must not hang CI).
TIMEOUT_S = 900


class Smoke:
    def __init__(self, workdir: Path) -> None:
        self.work = workdir
        self.corpus = workdir / "corpus"
        self.catalog = workdir / "catalog"
        self.passed: list[str] = []
        self.failed: list[str] = []
        # a Prefect home of its own: no active profile's server, a fresh temporary one per command
        self.env = {**os.environ, "PREFECT_HOME": str(workdir / "prefect"), "PREFECT_LOGGING_LEVEL": "WARNING"}
        for var in ("PREFECT_API_URL", "PREFECT_PROFILE", "EMOFUSE_CATALOG", "EMOFUSE_DASK_ADDRESS"):
            self.env.pop(var, None)

    def check(self, name: str, fn: Callable[[], str]) -> None:
        t0 = time.perf_counter()
        try:
            detail = fn()
        except Exception as e:  # noqa: BLE001 — every failure is a failed check, reported, not raised
            self.failed.append(name)
            print(f"FAILED {name} ({time.perf_counter() - t0:.1f} s): {e}", flush=True)
            if not isinstance(e, CommandFailed):
                traceback.print_exc(limit=3)
        else:
            self.passed.append(name)
            print(f"ok     {name} ({time.perf_counter() - t0:.1f} s){': ' + detail if detail else ''}", flush=True)

    def run(self, *args: str) -> str:
        """Run a command of this environment (``emofuse …``, ``python …``) in the work folder; its output."""
        exe = Path(sys.executable).parent / args[0] if args[0] != "python" else Path(sys.executable)
        res = subprocess.run([str(exe), *args[1:]], cwd=self.work, env=self.env, capture_output=True, text=True,
                             timeout=TIMEOUT_S)
        if res.returncode != 0:
            tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-25:])
            raise CommandFailed(f"{' '.join(args)} exited {res.returncode}:\n{tail}")
        return res.stdout


class CommandFailed(RuntimeError):
    pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=None, help="work folder (default: a new temporary one)")
    args = ap.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="emofuse-smoke-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"emofuse smoke run on Python {sys.version.split()[0]} ({sys.executable}), in {work}", flush=True)
    s = Smoke(work)
    state: dict[str, str] = {}

    def api() -> str:
        # in a fresh process, outside the repository (its emofuse/ folder must not shadow the install)
        out = s.run("python", "-c", "import emofuse, importlib.metadata as m; print(emofuse.__version__); "
                    "assert emofuse.__version__ == m.version('emofuse'); emofuse.Catalog; "
                    "print(emofuse.__file__)").split()
        if Path(out[1]).is_relative_to(Path(__file__).resolve().parents[1]):
            raise AssertionError(f"imported the source tree's emofuse ({out[1]}), not the installed one")
        return f"emofuse {out[0]}"

    def imports() -> str:
        # in a fresh process: the smoke run's own process stays free of Prefect's settings, like a new kernel
        code = ("import importlib, importlib.util, importlib.metadata as md, json\n"
                f"for m in {list(COMPILED)!r}: importlib.import_module(m)\n"
                f"seen = [m for m in {list(OPTIONAL)!r} if importlib.util.find_spec(m) and importlib.import_module(m)]\n"
                "print(json.dumps([{d: md.version(d) for d in ('torch', 'torchaudio', 'onnxruntime', 'dlib-bin', "
                "'av', 'opensmile')}, seen]))")
        versions, seen = json.loads(s.run("python", "-c", code).splitlines()[-1])
        return " ".join(f"{k}={v}" for k, v in versions.items()) + (f"; optional: {', '.join(seen)}" if seen else "")

    def model_files() -> str:
        s.run("python", "-m", "emofuse.pipeline.model_files")
        return ""

    def corpus() -> str:
        from emofuse.catalog.corpora.demo import generate

        paths = generate(str(s.corpus), actors=ACTORS, emotions=EMOTIONS, statements=(1,), seed=0)
        return f"{len(paths)} clips"

    def extract() -> str:
        s.run("emofuse", "extract", str(s.corpus), "--catalog", str(s.catalog), "--workers", "2",
              "--feature-sets", *FEATURE_SETS, "--config", 'faces={"engine": "onnxruntime"}')
        import emofuse

        cat = emofuse.Catalog(s.catalog)
        status = cat.status()
        n = len(cat.media())
        bad = status[status.status != "ok"]
        if n != ACTORS * len(EMOTIONS) or len(status) != n * len(FEATURE_SETS) or len(bad):
            raise AssertionError(f"{n} items, {len(status)} status rows, not ok:\n{bad.to_string()}")
        return f"{n} items x {len(FEATURE_SETS)} feature sets ok"

    def train() -> str:
        out = s.run("emofuse", "train", "--catalog", str(s.catalog), "--model", "tacfn", "--epochs", "1",
                    "--folds", "3", "--threads", "1")
        state["run_id"] = next(line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("run "))
        return state["run_id"]

    def score() -> str:
        if "run_id" not in state:
            raise AssertionError("no run to score (training failed)")
        s.run("emofuse", "score", "--run", state["run_id"], "--catalog", str(s.catalog))
        import emofuse

        p = emofuse.Catalog(s.catalog).predictions(run_id=state["run_id"])
        clips = p[(p.window == "clip") & (p.fold == "ensemble")]
        if len(clips) != ACTORS * len(EMOTIONS):
            raise AssertionError(f"{len(clips)} ensemble clip predictions, expected {ACTORS * len(EMOTIONS)}")
        return f"{len(p)} prediction rows"

    def faces_dlib() -> str:
        import numpy as np

        import emofuse

        # the Python API as a notebook calls it, in a fresh interpreter (a flow run on a temporary server)
        s.run("python", "-c", f"import emofuse; emofuse.extract(catalog={str(s.catalog)!r}, feature_sets=['faces'], "
              "configs={'faces': {'backend': 'yunet_dlib'}})")
        cat = emofuse.Catalog(s.catalog)
        keys = {cat.feature_set_info(k).config["backend"]: k for k in cat.feature_sets()
                if cat.feature_set_info(k).name == "faces"}
        ids = list(cat.media().item_id)
        ort, dlib = (cat.clip_vectors(keys[b], ids) for b in ("yunet_resnet", "yunet_dlib"))
        cos = min(float(np.dot(ort[i], dlib[i]) / np.linalg.norm(ort[i]) / np.linalg.norm(dlib[i])) for i in ids)
        if len(dlib) != len(ids) or cos < 0.999:
            raise AssertionError(f"dlib-bin: {len(dlib)} of {len(ids)} clips, min cosine to onnxruntime {cos:.5f}")
        return f"{len(dlib)} clips, min cosine to onnxruntime {cos:.5f}"

    def reads() -> str:
        import numpy as np

        import emofuse

        cat = emofuse.Catalog(s.catalog)
        egemaps = cat.find_feature_set("egemaps")
        funcs = cat.clips(egemaps)
        logmel = cat.load_sequences(cat.find_feature_set("logmel"))
        one = next(iter(logmel.values()))
        if funcs.shape[1] < 88 or one["values"].ndim != 2 or one["values"].shape[1] != 64 \
                or not isinstance(one["values"], np.ndarray):
            raise AssertionError(f"eGeMAPS {funcs.shape}, log-mel {one['values'].shape}")
        return f"eGeMAPS clips {funcs.shape}, log-mel of one item {one['values'].shape}"

    steps: list[tuple[str, Callable[[], str]]] = [
        ("import emofuse", api), ("compiled imports", imports), ("model files", model_files),
        ("demo corpus", corpus), ("extract (CLI, Prefect + Dask)", extract), ("train 1 epoch (CLI)", train),
        ("score (CLI)", score), ("faces by dlib-bin (emofuse.extract)", faces_dlib),
        ("reads (emofuse.Catalog)", reads),
    ]
    for name, fn in steps:
        s.check(name, fn)
    print(json.dumps({"python": sys.version.split()[0], "passed": s.passed, "failed": s.failed}), flush=True)
    print(f"{len(s.passed)} passed, {len(s.failed)} failed in {time.perf_counter() - t0:.1f} s", flush=True)
    return 1 if s.failed else 0


if __name__ == "__main__":
    sys.exit(main())
