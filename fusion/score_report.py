"""What a scoring call reports: a status per (item, run) with its reason, and a markdown summary.

Every item asked for gets a scoring status under the pseudo feature set
``score-<run_id>`` (:class:`emofuse.catalog.schemas.ScoreStatus`): ``ok`` (the message
names modalities that were missing, and why) or ``no_features`` (the message gives each
feature set's extraction status and reason). :func:`record_score_status` builds those
messages from the extraction statuses and writes them through
:meth:`~emofuse.catalog.store.Catalog.record_status` (only where they changed).
:func:`score_summary` is the report of a ``score`` flow run.

Example:
    >>> import tempfile
    >>> from types import SimpleNamespace
    >>> from emofuse.catalog.status import StatusEntry
    >>> from emofuse.catalog.store import Catalog
    >>> cat = Catalog(tempfile.mkdtemp()).init()
    >>> cat.record_status("faces-v1", [StatusEntry("a", "ok"), StatusEntry("b", "no_face", "/v/b.mp4: no face")])
    2
    >>> cat.record_status("egemaps-v1", [StatusEntry("a", "ok"), StatusEntry("b", "ok")])
    2
    >>> config = SimpleNamespace(feature_sets={"face": "faces-v1", "audio": "egemaps-v1"},
    ...                          feature_set_names={"face": "faces", "audio": "egemaps"})
    >>> counts, reasons, _ = record_score_status(cat, config, "run-1", ["a", "b", "c"], complete={"a", "b"})
    >>> counts, reasons
    ({'ok': 2, 'no_features': 1}, {'c': 'faces, egemaps: not extracted'})
    >>> cat.status("score-run-1").set_index("item_id").loc["b", "message"]
    'scored without faces: no_face (/v/b.mp4: no face)'
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emofuse.catalog.schemas import ScoreStatus
from emofuse.catalog.status import StatusEntry, score_status_key
from emofuse.catalog.store import Catalog

if TYPE_CHECKING:  # pragma: no cover
    from emofuse.fusion.run_config import RunConfig
    from emofuse.fusion.score import ScoreResult

#: Files listed by name (with their reason) in the summary when they have no prediction.
SUMMARY_MAX_LISTED = 25


def _without_path(msg: str, paths: list[str]) -> str:
    """An extraction message without the leading ``<path>: `` (the file is named beside it)."""
    for p in sorted(paths, key=len, reverse=True):
        if msg.startswith(f"{p}: "):
            return msg[len(p) + 2:]
    return msg


def _first_line(msg: Any, limit: int = 160) -> str:
    text = str(msg or "").strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= limit else line[:limit - 1] + "…"


def record_score_status(cat: Catalog, config: RunConfig, run_id: str, ids: list[str],
                        complete: set[str]) -> tuple[dict[str, int], dict[str, str], str]:
    """Write each item's scoring status (where it changed); return counts, reasons of the unscored, folder.

    ``complete``: the items that have every prediction asked for.
    """
    key = score_status_key(run_id)
    names = config.feature_set_names or {}
    ext: dict[str, dict[str, tuple[str, str]]] = {}
    for modality, fs_key in config.feature_sets.items():
        st = cat.status(fs_key)
        ext[modality] = dict(zip(st["item_id"], zip(st["status"], st["message"])))
    media = cat.media(dedupe=False)
    paths = media[media["item_id"].isin(set(ids))].groupby("item_id")["path"].agg(list).to_dict()
    entries, reasons = [], {}
    for i in ids:
        failed: dict[tuple[str, str], list[str]] = {}
        for modality in config.feature_sets:
            st, msg = ext[modality].get(i, ("not extracted", ""))
            if st != "ok":
                line = _first_line(_without_path(str(msg or ""), paths.get(i, [])))
                failed.setdefault((st, line), []).append(names.get(modality) or modality)
        missing = [f"{', '.join(who)}: {st}" + (f" ({line})" if line else "") for (st, line), who in failed.items()]
        if i in complete:
            status = ScoreStatus.OK.value
            message = ("scored without " + "; ".join(missing)) if missing else ""
        else:
            status = ScoreStatus.NO_FEATURES.value
            message = "; ".join(missing) if missing else "features present but empty"
            reasons[i] = message
        entries.append(StatusEntry(i, status, message))
    cat.record_status(key, entries, run_id=run_id)
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.status] = counts.get(e.status, 0) + 1
    return counts, reasons, cat.layout.status_dir(key)


def score_summary(cat: Catalog, result: ScoreResult, *, source: str | None, paths: list[str], wall_s: float,
                  score_wall_s: float) -> tuple[str, float]:
    """A markdown report of a score run (statuses, rows, throughput, outputs, files without predictions)
    and the media seconds it covered.

    ``source`` and ``paths``: the folder scored and the files found under it (None and
    ``[]`` when the catalog's items were scored).
    """
    media = cat.media(dedupe=False)
    if source:
        media = media[media["path"].isin(set(paths))]
    else:
        media = media.drop_duplicates("item_id")
    items = media.drop_duplicates("item_id")
    media_s = float(items["duration"].astype("float64").fillna(0.0).sum()) if len(items) else 0.0
    n_files = len(paths) if source else len(items)
    counts = ", ".join(f"{k} = {v}" for k, v in sorted(result.statuses.items())) or "-"
    windows = f"{result.n_window_rows} ({result.windows})" if result.windows else "-"
    if result.n_frame_rows:  # a run trained per frame: one row per model step
        windows = f"{result.n_frame_rows} (frame)" + ("" if windows == "-" else f", {windows}")
    lines = [
        f"# score run {result.run_id} ({result.model}, {result.fold})", "",
        (f"source: `{source}`" if source else f"catalog items: {len(items)}"), "",
        "| files | items | statuses | clip rows written | window rows written | already scored | wall s | files/s | media s/s |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {n_files} | {len(items)} | {counts} | {result.n_written} | {windows} | {result.n_skipped} | {wall_s:.1f} | "
        f"{n_files / max(wall_s, 1e-9):.2f} | {media_s / max(wall_s, 1e-9):.1f} |", "",
        f"scoring alone: {score_wall_s:.1f} s for {result.media_seconds:.0f} media s not scored before", "",
    ]
    if result.reasons:
        by_item = media.groupby("item_id")["relpath"].apply(lambda s: ", ".join(sorted(map(str, s)))).to_dict()
        lines += [f"## {len(result.reasons)} items without predictions (status `no_features`)", "",
                  "| file | reason |", "|---|---|"]
        for k, (item, why) in enumerate(sorted(result.reasons.items(), key=lambda kv: by_item.get(kv[0], kv[0]))):
            if k == SUMMARY_MAX_LISTED:
                lines.append(f"| … {len(result.reasons) - k} more | see the status table |")
                break
            lines.append(f"| `{by_item.get(item, item)}` | {why.replace('|', '/')} |")
        lines.append("")
    lines += [
        "## outputs", "",
        f"- predictions: `{result.path}`",
        f"- scoring statuses: `{result.status_path}`",
        f"- extraction statuses: `{cat.layout.status}`",
        f"- read: `pd.read_parquet('{cat.layout.predictions}').merge("
        f"pd.read_parquet('{cat.layout.media}').drop_duplicates('item_id'), on='item_id')`",
    ]
    return "\n".join(lines), media_s


__all__ = ["SUMMARY_MAX_LISTED", "record_score_status", "score_summary"]
