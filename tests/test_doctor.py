"""``rewardsmith doctor`` and the ``layers`` field of ``validate --json``, through the CLI."""

from __future__ import annotations

import json

import pytest

from rewardsmith.sandbox import _doctor
from rewardsmith.sandbox._confine import LAYER_NAMES
from tests.conftest import run_cli

GOOD_REWARD = """
import re

def tagged_solution_reward(prompts, completions, answer, **kwargs):
    return [1.0 if re.search(r"<solution>", str(c)) else 0.0 for c in completions]
"""


@pytest.fixture(scope="module")
def doctor_json() -> dict:
    result = run_cli("doctor", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_doctor_json_lists_every_layer(doctor_json):
    names = [layer["name"] for layer in doctor_json["layers"]]
    assert sorted(names) == sorted(["language", *LAYER_NAMES]), names
    assert doctor_json["active"][0] == "language"
    assert {layer["status"] for layer in doctor_json["layers"]} <= {
        "active",
        "missing",
        "not needed",
    }
    assert all(layer["stops"] for layer in doctor_json["layers"])


def test_doctor_json_warns_for_each_missing_layer(doctor_json):
    for layer in doctor_json["layers"]:
        if layer["status"] == "missing":
            assert layer["detail"] in doctor_json["warnings"] or layer["detail"] == "not root"


def test_doctor_json_states_the_seccomp_policy(doctor_json):
    policy = doctor_json["seccomp_policy"]
    assert policy["default"] == "ERRNO(ENOSYS)"
    killed = {name for names in policy["killed"].values() for name in names}
    assert {"execve", "execveat", "memfd_create", "socket", "unshare", "prctl", "clone"} <= killed
    allowed = {name for names in policy["allowed"].values() for name in names}
    assert {"read", "write", "openat", "mmap", "getrusage", "exit_group"} <= allowed
    assert not killed & allowed


def test_doctor_prints_a_table_and_exits_0():
    result = run_cli("doctor", timeout=120)
    assert result.returncode == 0, result.stderr
    for name in ("language", "seccomp", "landlock", "pdeathsig", "rlimits", "active:"):
        assert name in result.stdout, result.stdout


def test_validate_json_reports_the_active_layers(tmp_path, doctor_json):
    path = tmp_path / "reward.py"
    path.write_text(GOOD_REWARD)
    result = run_cli("validate", "--json", str(path), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["accepted"], verdict
    assert verdict["layers"][0] == "language"
    as_doctor_names = [name.split("-abi")[0] for name in verdict["layers"]]
    assert sorted(as_doctor_names) == sorted(doctor_json["active"])


@pytest.mark.parametrize(
    ("reported", "warnings", "expected"),
    [
        # everything a root worker applies: nothing missing, userns not needed
        (("netns", "ipcns", "utsns", "mntns", "pidns", "landlock-abi7", "nobody",
          "no-new-privs", "pdeathsig", "rlimits", "seccomp"), (), {}),
        # no libseccomp: the worker's own warning is the detail
        (("netns", "landlock-abi3"), ("no seccomp: libseccomp unavailable",),
         {"seccomp": "no seccomp: libseccomp unavailable"}),
        # a layer missing without a warning gets one
        (("seccomp",), (), {"ipcns": "no ipcns: not applied by the worker"}),
    ],
)  # fmt: skip
def test_diagnose_marks_missing_layers(monkeypatch, reported, warnings, expected):
    monkeypatch.setattr(_doctor, "worker_layers", lambda limits=None: (reported, warnings, 1.0))
    monkeypatch.setattr(_doctor.os, "geteuid", lambda: 0)
    diagnosis = _doctor.diagnose()
    by_name = {layer.name: layer for layer in diagnosis.layers}
    assert by_name["language"].status == "active"
    assert by_name["userns"].status == "not needed"
    for name, detail in expected.items():
        assert by_name[name].status == "missing" and by_name[name].detail == detail
        assert detail in diagnosis.warnings
    if "landlock-abi3" in reported:
        assert by_name["landlock"].detail == "ABI 3"
