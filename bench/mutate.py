"""Mutation testing of the modules where a silent bug costs most (``./dev mutate [MODULE ...]``).

mutmut (the ``mutate`` extra) mutates one module at a time and runs only the test files mapped
to it in :data:`MODULES` (so a module stays within an hour on 2 cores); it is not part of CI.
The repository's folders are installed as ``emofuse.*`` through a package-dir mapping, which
mutmut cannot follow, so each run works on a staged copy under ``build/mutate/<module>/``:
``src/emofuse/<catalog|pipeline|fusion|flows>`` (tracked and untracked files of the working
tree, or of a commit with ``--rev``), ``tests/`` and ``pyproject.toml`` with a generated
``[tool.mutmut]`` table. mutmut copies ``src`` into ``mutants/src`` and puts it first on
``sys.path``, so ``emofuse.<module>`` is the mutated copy there (module names match mutmut's
``src.``-stripped paths) and the editable install is never touched.

Per module it prints killed / survived / total and the kill rate, and writes the diffs of the
survivors to ``build/mutate/<module>/survivors.txt``; figures go to ``docs/mutation.md``.

Usage:
    .venv/bin/python -m bench.mutate                      # every module, one after the other
    .venv/bin/python -m bench.mutate fusion/metrics.py    # one module
    .venv/bin/python -m bench.mutate --list               # the modules and their test files
    .venv/bin/python -m bench.mutate --survivors fusion/align.py  # re-run only the last run's survivors

``--survivors`` stages afresh (the current tests and map) and has mutmut run only the mutants that
survived the module's last recorded run (``build/mutate/results.jsonl``); it refuses when the module's
source differs from the copy that run mutated (the mutant names would not match). The mutants that run
killed stay killed (more tests can only kill more), so its figures are the last run's killed plus
those killed now.
"""
from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("catalog", "pipeline", "fusion", "flows")

#: Module -> the narrowest test files that exercise it.
MODULES: dict[str, list[str]] = {
    "catalog/atomic.py": ["tests/test_survivors_atomic.py", "tests/test_catalog.py"],
    "catalog/identity.py": ["tests/test_properties_identity.py"],
    "catalog/commit.py": ["tests/test_properties_commit.py", "tests/test_catalog.py"],
    "catalog/maintenance.py": ["tests/test_crashed_tasks.py", "tests/test_catalog.py", "tests/test_catalog_upkeep.py"],
    "catalog/status.py": ["tests/test_survivors_status.py",
                          "tests/test_catalog.py::test_a_commit_of_ok_items_only_reads_no_status_and_one_with_a_failure_does",
                          "tests/test_properties_commit.py::test_status_rows_follow_a_model_of_the_newest_status_per_item"],
    # not test_locks's racing tests: a mutant that kills a racer makes them wait out their 120/300 s timeouts
    "catalog/locks.py": ["tests/test_survivors_locks.py",
                         "tests/test_locks.py::test_held_waits_for_a_live_holder_and_not_for_a_dead_one",
                         "tests/test_locks.py::test_a_claim_of_a_live_process_is_stale_once_its_owner_let_go"],
    "pipeline/plan.py": ["tests/test_survivors_plan.py",
                         "tests/test_segments.py::test_plan_registers_segments_once_and_knows_them_by_content"],
    "fusion/folds.py": ["tests/test_folds.py", "tests/test_properties_folds.py", "tests/test_survivors_folds.py"],
    "fusion/train.py": ["tests/test_survivors_train_loop.py", "tests/test_survivors_training.py"],
    "fusion/metrics.py": ["tests/test_losses_metrics.py", "tests/test_properties_metrics.py"],
    "fusion/losses.py": ["tests/test_losses_metrics.py", "tests/test_properties_metrics.py"],
    "fusion/align.py": ["tests/test_align.py", "tests/test_survivors_windows.py", "tests/test_survivors_align.py",
                        "tests/test_survivors_align_load.py", "tests/test_frame_targets.py",
                        "tests/test_survivors_align_items.py", "tests/test_survivors_align_clip.py",
                        "tests/test_survivors_align_segments.py", "tests/test_survivors_align_groups.py",
                        "tests/test_survivors_align_targets.py", "tests/test_align_batches.py"],
    # split out of fusion/align.py (2026-12-06); its tests drive them
    "fusion/item_align.py": ["tests/test_align.py", "tests/test_survivors_align.py",
                             "tests/test_survivors_align_groups.py", "tests/test_survivors_align_clip.py",
                             "tests/test_survivors_align_segments.py"],
    "fusion/row_batches.py": ["tests/test_align_batches.py"],
    "fusion/timeline.py": ["tests/test_timeline.py", "tests/test_properties_timeline.py",
                           "tests/test_survivors_windows.py", "tests/test_survivors_timeline.py"],
    "flows/report/page.py": ["tests/test_survivors_report_page.py"],  # milliseconds a page; see docs/mutation.md
    "flows/report/summary.py": ["tests/test_survivors_report_page.py"],  # the page's summary section (split from page.py)
}


def _files(rev: str | None) -> list[str]:
    """Paths to stage: the packages, tests and pyproject.toml (working tree, or commit ``rev``)."""
    paths = [*PACKAGES, "tests", "pyproject.toml"]
    if rev:
        out = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "--", *paths], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    else:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "--", *paths], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    return [p for p in out.splitlines() if p and "__pycache__" not in p]


def staging_dir(module: str) -> str:
    """``build/mutate/<module>``: where ``module`` is staged for mutmut (and stays until its next run)."""
    return os.path.join(ROOT, "build", "mutate", module.replace("/", "-").removesuffix(".py"))


def stage(module: str, tests: list[str], rev: str | None) -> str:
    """A fresh :func:`staging_dir` laid out for mutmut; returns its path."""
    where = staging_dir(module)
    shutil.rmtree(where, ignore_errors=True)
    for path in _files(rev):
        top = path.split("/", 1)[0]
        dst = os.path.join(where, "src", "emofuse", path) if top in PACKAGES else os.path.join(where, path)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if rev:
            with open(dst, "wb") as f:
                f.write(subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True,
                                       check=True).stdout)
        elif os.path.exists(os.path.join(ROOT, path)):
            shutil.copy2(os.path.join(ROOT, path), dst)
    conf = {"source_paths": ["src"], "only_mutate": [f"src/emofuse/{module}"],
            "pytest_add_cli_args_test_selection": tests,
            "also_copy": ["tests", "pyproject.toml"],
            "pytest_add_cli_args": ["-p", "no:cacheprovider", "-q", "--timeout", "600"]}
    with open(os.path.join(where, "pyproject.toml"), "a") as f:
        f.write("\n[tool.mutmut]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in conf.items()))
    return where


def last_run(module: str) -> dict[str, object]:
    """The module's last record in ``build/mutate/results.jsonl`` (for ``--survivors``)."""
    records = []
    path = os.path.join(ROOT, "build", "mutate", "results.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            records = [r for r in map(json.loads, filter(str.strip, f)) if r["module"] == module]
    if not records:
        raise SystemExit(f"{module}: no recorded run to take the survivors of")
    return records[-1]


def run(module: str, *, rev: str | None, max_children: int, survivors_of: dict[str, object] | None = None
        ) -> dict[str, object]:
    """Mutate ``module`` against its tests; the counts and the survivors' names.

    ``survivors_of``: a previous run's record; only its survivors are run, the rest keep its verdicts.
    """
    tests = MODULES[module]
    missing = [t for t in tests if not os.path.exists(os.path.join(ROOT, t.split("::")[0]))]  # a file or a test id
    if missing:
        raise SystemExit(f"{module}: test files not found: {missing}")
    names: list[str] = []
    if survivors_of is not None:
        mutated = os.path.join(staging_dir(module), "src", "emofuse", module)
        now = os.path.join(ROOT, module) if rev is None else None
        if now is None or not os.path.exists(mutated) or not filecmp.cmp(mutated, now, shallow=False):
            raise SystemExit(f"{module}: its source is not the one the last run mutated ({mutated}); run it whole")
        names = list(survivors_of["survivors"])  # type: ignore[arg-type]
    where = stage(module, tests, rev)
    mutmut = os.path.join(os.path.dirname(sys.executable), "mutmut")
    # the staged tests import ``tests.<helper>`` modules: mutmut runs them from mutants/
    env = {**os.environ, "PYTHONPATH": os.path.join(where, "mutants"), "OMP_NUM_THREADS": "1"}
    t0 = time.time()
    with open(os.path.join(where, "mutmut.log"), "w") as log:  # its progress line redraws itself: kept out of the table
        subprocess.run([mutmut, "run", "--max-children", str(max_children), *names], cwd=where, env=env,
                       check=True, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.time() - t0
    subprocess.run([mutmut, "export-cicd-stats"], cwd=where, env=env, check=True, capture_output=True)
    with open(os.path.join(where, "mutants", "mutmut-cicd-stats.json")) as f:
        stats = json.load(f)
    listing = subprocess.run([mutmut, "results", "--all", "true"], cwd=where, env=env, capture_output=True,
                             text=True).stdout
    status = dict(line.strip().rsplit(": ", 1) for line in listing.splitlines() if ": " in line)
    survivors = [name for name, st in status.items() if st == "survived"]
    if survivors_of is not None:  # the unnamed mutants were not run: the last run's verdicts stand for them
        other = dict(survivors_of["other"] or {})  # type: ignore[call-overload]
        for name in names:
            if status.get(name) not in ("killed", "survived"):
                other[status.get(name, "missing")] = other.get(status.get(name, "missing"), 0) + 1
        stats = {**other, "killed": int(survivors_of["killed"]) + sum(status.get(n) == "killed" for n in names),  # type: ignore[call-overload]
                 "survived": len(survivors)}
    with open(os.path.join(where, "survivors.txt"), "w") as f:
        for name in survivors:
            f.write(subprocess.run([mutmut, "show", name], cwd=where, env=env, capture_output=True,
                                   text=True).stdout + "\n")
    killed, survived = int(stats.get("killed", 0)), int(stats.get("survived", 0))
    scored = killed + survived
    return {"module": module, "tests": tests, "killed": killed, "survived": survived,
            "other": {k: v for k, v in stats.items() if k not in ("killed", "survived") and v},
            "kill_rate": killed / scored if scored else float("nan"), "seconds": round(seconds),
            "survivors": survivors, "survivors_file": os.path.relpath(os.path.join(where, "survivors.txt"), ROOT),
            **({"rerun_of": survivors_of["date"], "rerun": len(names)} if survivors_of is not None else {})}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help=f"default: all of {list(MODULES)}")
    ap.add_argument("--rev", help="stage this commit instead of the working tree")
    ap.add_argument("--max-children", type=int, default=1, help="parallel mutants (default 1: a shared machine)")
    ap.add_argument("--list", action="store_true", help="print the modules and their test files")
    ap.add_argument("--survivors", action="store_true",
                    help="run only the survivors of each module's last recorded run (same source only)")
    args = ap.parse_args(argv)
    if args.list:
        for module, tests in MODULES.items():
            print(f"{module}: {' '.join(tests)}")
        return
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        raise SystemExit(f"unknown modules {unknown}; choose from {list(MODULES)}")
    rev = subprocess.run(["git", "rev-parse", "--short", args.rev or "HEAD"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    print(f"# mutation run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{'commit ' + rev if args.rev else 'working tree at ' + rev}"
          f"{', survivors of the last run only' if args.survivors else ''}")
    print("| module | killed | survived | kill rate | other | seconds | test files |\n|---|---|---|---|---|---|---|")
    for module in args.modules or list(MODULES):
        r = run(module, rev=args.rev, max_children=args.max_children,
                survivors_of=last_run(module) if args.survivors else None)
        print(f"| {module} | {r['killed']} | {r['survived']} | {r['kill_rate']:.1%} | {r['other'] or ''} | "
              f"{r['seconds']} | {' '.join(r['tests'])} |", flush=True)
        with open(os.path.join(ROOT, "build", "mutate", "results.jsonl"), "a") as f:
            f.write(json.dumps({**r, "rev": rev, "date": dt.datetime.now(dt.timezone.utc).isoformat()}) + "\n")


if __name__ == "__main__":
    main()
