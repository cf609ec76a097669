"""Write a run's report: ``report.html`` (self-contained), ``report.md`` and ``report.json``.

The Markdown copy links its figures from ``figures/*.png`` next to it; the HTML page embeds the
same figures as base64 data URIs and needs nothing else. ``report.json`` holds the input
:class:`~rewardsmith.report.data.ReportData` under ``"data"`` (reload it with
``ReportData.load``) and the computed tables under ``"summary"``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rewardsmith.report.analysis import summary
from rewardsmith.report.blocks import Image, to_html, to_markdown
from rewardsmith.report.data import ReportData
from rewardsmith.report.sections import build_blocks

log = logging.getLogger(__name__)

REPORT_VERSION = 1


def _write_text(path: Path, text: str) -> Path:
    """Write atomically (temporary file + rename), so a crash never leaves half a report."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def write_report(data: ReportData, out_dir: str | Path) -> dict[str, Path]:
    """Render ``data`` into ``out_dir`` (created when missing); existing report files are replaced.

    Returns the written paths under the keys ``"html"``, ``"markdown"`` and ``"json"``. A partial
    run (no trials, failed trials, no ensembles) renders with the missing parts marked as such.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = f"rewardsmith report: {data.run_id}"
    blocks = build_blocks(data)
    figures = out / "figures"
    image_paths = {}
    for block in blocks:
        if isinstance(block, Image):
            figures.mkdir(exist_ok=True)
            (figures / f"{block.name}.png").write_bytes(block.png)
            image_paths[block.name] = f"figures/{block.name}.png"
    payload = {"report_version": REPORT_VERSION, "data": data.to_dict(), "summary": summary(data)}
    paths = {
        "html": _write_text(out / "report.html", to_html(title, blocks)),
        "markdown": _write_text(out / "report.md", to_markdown(title, blocks, image_paths)),
        "json": _write_text(out / "report.json", json.dumps(payload, indent=1, default=str)),
    }
    log.info("report for run %s written to %s", data.run_id, out)
    return paths
