"""The run store: one run's manifest, candidates, trials and results (SQLAlchemy 2.0).

Typical use by a search loop::

    store = RunStore.create("runs/demo-1", config, manifest=build_manifest(config, task=task))
    store.add_candidate(candidate, verdict=verdict.to_dict())
    store.enqueue_trial("screen", [candidate.name], seed=config.seed)
    # ... later, or after a restart: RunStore.open(run_dir, expected_config_hash=...), recover()
    while (trial := store.next_pending()) is not None:  # PENDING -> RUNNING, atomically
        store.complete_trial(trial.id, TrialResult(metrics={"f1": 0.7}, correctness=[1, 0]))
    store.add_evaluation(trial_id, "test", metrics, correctness)  # finalists, after training
    store.reward_monitors(trial_id)  # what watching its sandboxed rewards in training found

See :mod:`rewardsmith.store.run_store` for the crash-safety contract. Several machines share a
run through a server database (PostgreSQL) whose URL every process reads from
``REWARDSMITH_STORE_URL`` (:data:`STORE_URL_ENV`), and an artifact root (``search.artifact_root``)
that the store publishes adapters and records to (:meth:`RunStore.local_path` reads them back).
"""

from rewardsmith.store._engine import StaleAttemptError, StoreError, default_url
from rewardsmith.store._location import STORE_URL_ENV
from rewardsmith.store.manifest import build_manifest, data_manifest, new_run_id
from rewardsmith.store.records import (
    Evaluation,
    Manifest,
    RewardMonitorRecord,
    Trial,
    TrialResult,
)
from rewardsmith.store.run_store import RunStore, default_worker
from rewardsmith.store.schema import SCHEMA_VERSION, TrialState

__all__ = [
    "SCHEMA_VERSION",
    "STORE_URL_ENV",
    "Evaluation",
    "Manifest",
    "RewardMonitorRecord",
    "RunStore",
    "StaleAttemptError",
    "StoreError",
    "Trial",
    "TrialResult",
    "TrialState",
    "build_manifest",
    "data_manifest",
    "default_url",
    "default_worker",
    "new_run_id",
]
