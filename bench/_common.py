"""Shared helpers of the benchmarks: machine facts, tables, corpora, child processes.

Every benchmark runs the things it compares in fresh child processes of this
interpreter (``python -m bench.<name> --child <json>``), so one run never
inherits another's loaded models, Prefect server or Dask cluster. Children
print one line ``BENCH-RESULT <json>``; everything else they print goes to a
log file next to the benchmark's working folder.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

RESULT_PREFIX = "BENCH-RESULT "
#: Where corpora and catalogs go (never the repository).
TMP_ROOT = "/tmp"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------- machine
def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or platform's guess)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gib() -> float:
    """Total memory in GiB (Linux)."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def loadavg() -> str:
    """1/5/15-minute load averages as a string."""
    try:
        a, b, c = os.getloadavg()
        return f"{a:.2f} {b:.2f} {c:.2f}"
    except OSError:
        return "n/a"


def git_revision() -> str:
    """The project's git revision, with ``+dirty`` when tracked code files differ from it."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "catalog", "pipeline",
                                "fusion", "flows"], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        return (rev or "unknown") + ("+dirty (" + ", ".join(l.split()[-1] for l in dirty.splitlines()) + ")"
                                     if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i
    return x


def free_cores(n: int = 8_000_000) -> float:
    """How many cores this process can get now: throughput of 2 spinning processes over 1 (2.0 = both free)."""
    from multiprocessing import get_context

    ctx = get_context("fork")
    t0 = time.perf_counter()
    _spin(n)
    one = time.perf_counter() - t0
    procs = [ctx.Process(target=_spin, args=(n,)) for _ in range(2)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    two = time.perf_counter() - t0
    return 2 * one / two


class Machine:
    """Machine facts, the load average and the free-core check before/after a benchmark."""

    def __init__(self) -> None:
        self.started = dt.datetime.now(dt.timezone.utc)
        self.load_before = loadavg()
        self.free_before = free_cores()
        self.load_after = ""
        self.free_after = float("nan")
        self.revision = git_revision()

    def finish(self) -> None:
        self.load_after = loadavg()
        self.free_after = free_cores()

    def lines(self) -> list[str]:
        after = f"{self.load_after} (free-core check {self.free_after:.2f})" if self.load_after else "-"
        return [
            f"date: {self.started.strftime('%Y-%m-%d %H:%M UTC')}",
            f"machine: {os.cpu_count()} cores, {cpu_model()}, {mem_total_gib():.0f} GiB RAM, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}; "
            f"project at git {self.revision}",
            f"load average (1/5/15 min) before: {self.load_before} (free-core check {self.free_before:.2f}); "
            f"after: {after}",
        ]


def print_header(title: str, argv: Sequence[str], machine: Machine) -> None:
    print(f"# {title}")
    print(f"command: .venv/bin/python -m {argv[0]} {' '.join(argv[1:])}".rstrip())
    for line in machine.lines():
        print(line)
    print(flush=True)


def print_footer(machine: Machine) -> None:
    machine.finish()
    print()
    print(machine.lines()[-1], flush=True)
    print("(free-core check: throughput of 2 spinning processes / 1; 2.0 = both cores free, 1.0 = one core's worth "
          "left to us)", flush=True)


# --------------------------------------------------------------------------- tables
def fmt(v: Any, digits: int = 2) -> str:
    """Numbers with ``digits`` decimals (big ones without), everything else as str."""
    if isinstance(v, bool) or v is None:
        return "-" if v is None else str(v)
    if isinstance(v, int):
        return f"{v:,}".replace(",", " ")
    if isinstance(v, float):
        if v != v:  # NaN
            return "n/a"
        if abs(v) >= 1000:
            return f"{v:,.0f}".replace(",", " ")
        return f"{v:.{digits}f}"
    return str(v)


def table(rows: Iterable[dict[str, Any]], columns: Sequence[str] | None = None, digits: int = 2) -> str:
    """A Markdown table of ``rows`` (dicts) in ``columns`` order (default: every key, in the order first seen)."""
    rows = list(rows)
    if not rows:
        return "(no rows)"
    cols = list(columns or dict.fromkeys(k for r in rows for k in r))
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        out.append("| " + " | ".join(fmt(r.get(c), digits) for c in cols) + " |")
    return "\n".join(out)


def timed_into(acc: dict[str, float], step: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, wrapped to add the seconds of each call to ``acc[step]`` (benchmarks that split work by step)."""
    def timed(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            acc[step] += time.perf_counter() - t0
    return timed


def median(xs: Iterable[float]) -> float:
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def spread(xs: Sequence[float]) -> str:
    """``min-max`` of repeated measurements, for the tables."""
    xs = [x for x in xs if x == x]
    if not xs:
        return "n/a"
    return f"{min(xs):.2f}-{max(xs):.2f}" if len(xs) > 1 else f"{xs[0]:.2f}"


# --------------------------------------------------------------------------- data
def corpus(actors: int, seed: int = 0) -> str:
    """A generated RAVDESS-layout demo corpus of ``actors`` actors under /tmp (made once, then reused)."""
    from emofuse.catalog.corpora.demo import generate

    out = os.path.join(TMP_ROOT, f"bench-corpus-a{actors}-s{seed}")
    generate(out, actors=actors, seed=seed)
    return out


def media_files(root: str) -> list[str]:
    """Every .mp4 under ``root``, sorted."""
    out = []
    for d, _dirs, files in os.walk(root):
        out += [os.path.join(d, f) for f in files if f.endswith(".mp4") and not f.startswith(".")]
    return sorted(out)


def workdir(name: str) -> str:
    """A fresh folder /tmp/bench-<name>-XXXX for one benchmark run's catalogs and logs."""
    return tempfile.mkdtemp(prefix=f"bench-{name}-", dir=TMP_ROOT)


def dir_bytes(path: str) -> int:
    """Bytes of all files under ``path``."""
    total = 0
    for d, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(d, f))
            except OSError:
                pass
    return total


# --------------------------------------------------------------------------- child processes
def child_env(prefect_home: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a child: its own Prefect home, no server URL (temporary server), quiet logs."""
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_PROFILE", None)
    env.pop("EMOFUSE_DASK_ADDRESS", None)
    env.update({
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
    })
    if prefect_home:
        os.makedirs(prefect_home, exist_ok=True)
        env["PREFECT_HOME"] = prefect_home
    env.update(extra or {})
    return env


def run_child(module: str, payload: dict[str, Any], *, log: str, env: dict[str, str] | None = None,
              timeout: float | None = None) -> dict[str, Any]:
    """Run ``python -m module --child <payload>`` in a fresh process; return its result plus ``process_s``.

    The child's output goes to ``log``; a child that fails raises with the log's tail.
    """
    cmd = [sys.executable, "-m", module, "--child", json.dumps(payload)]
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as f:
        proc = subprocess.run(cmd, cwd=REPO, env=env or child_env(), stdout=subprocess.PIPE,
                              stderr=f, text=True, timeout=timeout)
    process_s = time.perf_counter() - t0
    result = None
    with open(log, "a", encoding="utf-8") as f:
        for line in proc.stdout.splitlines():
            if line.startswith(RESULT_PREFIX):
                result = json.loads(line[len(RESULT_PREFIX):])
            else:
                f.write(line + "\n")
    if proc.returncode != 0 or result is None:
        with open(log, encoding="utf-8") as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f"child {module} {payload.get('what')} failed (rc {proc.returncode}); log {log}:\n{tail}")
    result["process_s"] = process_s
    return result


def emit(result: dict[str, Any]) -> None:
    """Print a child's result line (the parent parses it)."""
    print(RESULT_PREFIX + json.dumps(result, default=float), flush=True)


def child_main(argv: Sequence[str], handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> bool:
    """If ``argv`` is a child invocation, run the handler named by the payload's ``what`` and emit; return True."""
    if len(argv) >= 2 and argv[0] == "--child":
        payload = json.loads(argv[1])
        emit(handlers[payload["what"]](payload))
        return True
    return False


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM) in MiB."""
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """This process's current resident set size (VmRSS) in MiB."""
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
            f.write("5")
        return True
    except OSError:
        return False


def ratio(a: float, b: float) -> float:
    """a / b (NaN when b is 0 or missing)."""
    try:
        return a / b if b else float("nan")
    except TypeError:
        return float("nan")


class PrefectServer:
    """A real Prefect server on a free loopback port with its own home (what ``emofuse serve`` users run).

    Use as a context manager; ``env`` is the environment for children that talk to it.
    Only the server process started here is stopped at the end.
    """

    def __init__(self, wd: str) -> None:
        from pathlib import Path

        from emofuse.flows import local_server as ls

        self._ls = ls
        self.home = os.path.join(wd, "prefect-server-home")
        self.stack = ls.LocalStack(Path(wd) / "server-state", ls.free_port())
        self.api = ""
        self.start_s = float("nan")

    def __enter__(self) -> "PrefectServer":
        self.stack.state_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        self.api = self._ls.start_server(self.stack, env=self._ls.server_env(home=self.home))
        self.start_s = time.perf_counter() - t0
        return self

    @property
    def env(self) -> dict[str, str]:
        env = child_env(self.home)
        env["PREFECT_API_URL"] = self.api
        return env

    def __exit__(self, *exc: object) -> None:
        self._ls.stop(self.stack, "prefect-server")
