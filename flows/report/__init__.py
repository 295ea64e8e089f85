"""``emofuse report``: a self-contained HTML report of a scored run, readable offline from disk.

One folder (``<catalog>/reports/<run_id>/`` by default): ``index.html`` with a summary
(files, statuses with their reasons, throughput), a sortable table of the files with their
dominant emotion and confidence, and one section per video with its emotion probabilities
over time, the modality and time attributions (when scored with ``--explain``) and a
thumbnail of the main face for each window; ``thumbs/`` holds the thumbnails. Plots are
inline SVG written here (:mod:`~emofuse.flows.report.svg`), the page has one inline script
(sorting, filtering) and a Content-Security-Policy that forbids every network request.

No Prefect here: the ``score`` flow and ``emofuse report`` both call :func:`build_report`.

Modules: :mod:`~.data` (what the catalog says), :mod:`~.thumbs` (face crops),
:mod:`~.svg` (plots), :mod:`~.assets` (style, script, colors, policy), :mod:`~.page`
(the HTML), :mod:`~.build` (the folder).
"""
from emofuse.flows.report.build import ReportResult, build_report, default_out

__all__ = ["ReportResult", "build_report", "default_out"]
