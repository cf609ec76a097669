"""The run report: leaderboard, rounds, ensembles, statistics, reward-hacking panel, code.

Build a :class:`ReportData` (plain, JSON-serialisable) from a run and call :func:`write_report`;
it writes a self-contained ``report.html``, ``report.md`` and ``report.json``.
"""

from rewardsmith.report.data import CandidateRecord, ReportData, TrialRecord, VerdictRecord
from rewardsmith.report.writer import write_report

__all__ = ["CandidateRecord", "ReportData", "TrialRecord", "VerdictRecord", "write_report"]
