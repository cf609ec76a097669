"""The search of arXiv 2605.02073, done better: rounds of generated rewards, then finalists.

:class:`Search` is stateless apart from its store: every step reads what is already recorded and
does only what is missing, so running it again on a killed run (``--resume``) re-does only the
work that was in flight. First the base-rewards-only baseline is trained with the screening
budget (:func:`rewardsmith.search.baseline.screening_baseline` finds it), so that round 1's
feedback can already compare candidates with it. Per round: generate -> validate (rejections
replaced up to a limit) -> screen each accepted candidate with a trial (rung 0) -> with
``search.replace_failed``, regenerate the candidates whose rung-0 trial failed or scored F1 = 0
(each slot tried at most ``replace_attempts`` times) -> with ``search.screening.mode: halving``,
promote the best 1/eta rung by rung up to the full budget (:mod:`rewardsmith.search.halving`)
-> rank (:func:`rewardsmith.search.ranking.rank_candidates`: highest rung reached, then the
paired difference from the baseline over seeds) -> build the ranked summary for the next
round. Then: the finalists' baseline and a control of k random candidates (``ensemble_steps``),
the named ensembles (:mod:`rewardsmith.search.ensembles`), the best ensemble re-trained over
more seeds with its own budget, the finalists evaluated on test, and the report.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from rewardsmith.config import RunConfig, parse_config
from rewardsmith.execution import Executor
from rewardsmith.generators.base import Generator, RoundContext
from rewardsmith.search.baseline import BASELINE_KIND
from rewardsmith.search.feedback import SCREEN_KINDS, build_rejections, build_summary
from rewardsmith.search.halving import Ladder, at_full_budget
from rewardsmith.search.housekeeping import tidy
from rewardsmith.search.ranking import rank_candidates, trial_rung
from rewardsmith.store import RunStore, TrialState

log = logging.getLogger(__name__)

N_EXAMPLES = 20
TOP_SINGLE_FINALISTS = 3


class Observer(Protocol):
    """What a UI hears from the search (all methods optional in practice; see NullObserver)."""

    def phase(self, text: str) -> None: ...
    def trials(self, trials: Sequence[Any]) -> None: ...
    def progress(self, trial_id: int, step: int, max_steps: int) -> None: ...
    def trial_done(self, trial: Any, result: Any) -> None: ...
    def message(self, text: str) -> None: ...


class NullObserver:
    def phase(self, text: str) -> None:
        log.info(text)

    def trials(self, trials: Sequence[Any]) -> None:
        pass

    def progress(self, trial_id: int, step: int, max_steps: int) -> None:
        pass

    def trial_done(self, trial: Any, result: Any) -> None:
        pass

    def message(self, text: str) -> None:
        log.warning(text)


def with_steps(cfg: RunConfig, max_steps: int) -> RunConfig:
    """A copy of ``cfg`` whose trials train ``max_steps`` GRPO steps."""
    data = cfg.model_dump(mode="json")
    data["grpo"]["max_steps"] = max_steps
    return parse_config(data, source="ensemble budget")


class Search:
    """Runs (or resumes) a whole search recorded in ``store``."""

    def __init__(
        self,
        store: RunStore,
        generator: Generator,
        executor: Executor,
        task: Any,
        *,
        observer: Any = None,
        pool: Any = None,
    ) -> None:
        self.store = store
        self.cfg = store.config()
        self.generator = generator
        self.executor = executor
        self.task = task
        self.observer = observer or NullObserver()
        self.pool = pool

    # ------------------------------------------------------------------ rounds

    def run(self) -> None:
        """The baseline, all rounds, then the finalists, then test evaluation."""
        recovered = self.store.recover()
        if recovered:
            self.observer.message(f"resuming: re-running interrupted trial(s) {recovered}")
        self.baseline()
        for round_ in range(1, self.cfg.search.rounds + 1):
            self.observer.phase(f"round {round_}/{self.cfg.search.rounds}")
            self.run_round(round_)
            tidy(self.store)  # superseded attempts, checkpoints no rung will continue
        self.finalists()
        tidy(self.store)

    def baseline(self) -> int:
        """Train the base-rewards-only baseline with the screening budget (before round 1)."""
        self.observer.phase("baseline: base rewards only, screening budget")
        trial_id = self.store.enqueue_trial(BASELINE_KIND, [], attrs={"role": "screening"})
        self._run([trial_id])
        return trial_id

    def run_round(self, round_: int) -> list[str]:
        """Fill and screen one round; with ``replace_failed``, regenerate dead candidates
        (dead at rung 0), then climb the halving rungs with the round's candidates."""
        s = self.cfg.search
        want = s.candidates_per_round
        ladder = self._ladder()
        while True:
            names = self.fill_round(round_, want)
            ladder.first(names)
            needed = self._replacements_needed(names) if s.replace_failed else 0
            if not needed or len(names) < want:
                break
            self.observer.message(
                f"round {round_}: regenerating {needed} candidate(s) whose trial failed or "
                "scored F1 = 0"
            )
            want = len(names) + needed
        ladder.climb(names)
        return names

    def _ladder(self) -> Ladder:
        return Ladder(self.store, self.cfg, self._run, self.observer.message)

    def _replacements_needed(self, names: Sequence[str]) -> int:
        """Slots of this round whose last candidate is dead and that have attempts left.

        The first ``candidates_per_round`` candidates open one slot each; each later one (a
        replacement, in stored order) continues the first slot whose last candidate is dead (its
        trial FAILED or scored F1 = 0) and has attempts left.
        """
        dead = self._dead_candidates()
        attempts = self.cfg.search.replace_attempts
        per_round = self.cfg.search.candidates_per_round
        slots = [[name] for name in names[:per_round]]
        for name in names[per_round:]:
            open_slot = next((x for x in slots if x[-1] in dead and len(x) < attempts), None)
            if open_slot is None:  # not reached: only as many as open slots are asked for
                break
            open_slot.append(name)
        return sum(1 for x in slots if x[-1] in dead and len(x) < attempts)

    def _dead_candidates(self) -> set[str]:
        dead = set()
        for trial in self.store.trials(kind="screen"):
            if len(trial.candidates) != 1 or trial_rung(trial) or trial.seed != self.cfg.seed:
                continue
            if trial.state == TrialState.FAILED:
                dead.add(trial.candidates[0])
            elif trial.state == TrialState.COMPLETE:
                result = self.store.result(trial.id)
                if result is not None and float(result.metrics.get("f1") or 0.0) <= 0.0:
                    dead.add(trial.candidates[0])
        return dead

    def _context(self, round_: int) -> RoundContext:
        from rewardsmith.rewards import BASE_REWARD_NAMES, REWARD_REGISTRY

        # The paper shows the same examples every round (search.fixed_examples).
        rng = random.Random(
            self.cfg.seed * 1000 + (0 if self.cfg.search.fixed_examples else round_)
        )
        train = self.task.train
        examples = rng.sample(train, min(N_EXAMPLES, len(train)))
        taken = {c.name for c in self.store.candidates()} | set(BASE_REWARD_NAMES)
        return RoundContext(
            examples=tuple(
                {"question": e["question"], "answer": str(e["answer"])} for e in examples
            ),
            summary=tuple(build_summary(self.store, self.cfg.search.rank_metric)),
            rejections=tuple(build_rejections(self.store) + list(self.generator.rejections)),
            tags=self.task.prompt.tags,
            taken_names=frozenset(taken | set(REWARD_REGISTRY)),
        )

    def _accepted(self, round_: int) -> tuple[list[str], int]:
        verdicts = self.store.verdicts(round_)
        accepted = [n for n, v in verdicts.items() if v and v.get("accepted")]
        return accepted, len(verdicts) - len(accepted)

    def fill_round(self, round_: int, want: int | None = None) -> list[str]:
        """Generate and validate until the round has ``want`` accepted candidates (default:
        ``candidates_per_round``) or reaches the rejection limit."""
        want = self.cfg.search.candidates_per_round if want is None else want
        limit = self.cfg.search.max_rejections_per_round
        accepted, rejected = self._accepted(round_)
        empty_replies = 0
        while len(accepted) < want and rejected + empty_replies <= limit:
            before = len(self.generator.rejections)
            proposals = self.generator.propose(round_, want - len(accepted), self._context(round_))
            empty_replies += len(self.generator.rejections) - before
            stored = 0
            for candidate in proposals:
                verdict = self._store_candidate(candidate)
                if verdict is None:
                    continue
                stored += 1
                if verdict.accepted:
                    accepted.append(verdict.name)
                else:
                    rejected += 1
            empty_replies += 0 if stored else 1
        if len(accepted) < want:
            self.observer.message(
                f"round {round_}: only {len(accepted)}/{want} candidates accepted "
                f"({rejected} rejected, {empty_replies} unusable generator replies)"
            )
        return accepted[:want]

    def _store_candidate(self, candidate: Any) -> Any:
        """Validate and store a proposal; None when the very same program is already stored."""
        from rewardsmith.rewards.validation import validate_reward_code

        taken = {c.name: c.code_hash for c in self.store.candidates()}
        if taken.get(candidate.name) == candidate.code_hash:
            return None
        verdict = validate_reward_code(
            candidate.code,
            name=candidate.name,
            taken_names=set(taken),
            pool=self.pool,
            timeout_s=self.cfg.rewards.timeout_s,
        )
        if candidate.name in taken:  # a duplicate name: keep the record under a unique one
            candidate = _renamed(candidate, set(taken))
        self.store.add_candidate(candidate, verdict=verdict.to_dict())
        return replace(verdict, name=candidate.name)

    def screen(self, names: Sequence[str]) -> list[str]:
        """Screen ``names`` (base rewards + the candidate): one full-budget trial each, or the
        halving rungs (``search.screening``); the names that reached the top rung."""
        return self._ladder().climb(names)

    def _run(self, trial_ids: Sequence[int]) -> None:
        pending = [t for t in trial_ids if self.store.trial(t).state == TrialState.PENDING]
        if pending:
            self.observer.trials([self.store.trial(t) for t in pending])
            self.executor.run(self.store, pending, self.observer.progress)
        for trial_id in pending:  # those finished earlier were reported then
            trial = self.store.trial(trial_id)
            self.observer.trial_done(trial, self.store.result(trial_id))

    # ------------------------------------------------------------------ finalists

    def ranked_candidates(self) -> list[str]:
        """Screened single candidates with a COMPLETE screening trial, best first
        (:func:`~rewardsmith.search.ranking.rank_candidates`)."""
        ranked = rank_candidates(self.store, self.cfg, kinds=("screen",))
        return [r.name for r in ranked if not r.failed]

    def finalists(self) -> None:
        """Baseline, control, ensembles, extra seeds of the best ensemble, test evaluation."""
        s = self.cfg.search
        budget = with_steps(self.cfg, s.ensemble_steps)
        ranked = self.ranked_candidates()
        self.observer.phase("baseline, control and ensembles")
        ids = [self.store.enqueue_trial(BASELINE_KIND, [], config=budget)]
        if ranked:
            k = min(s.control_k, len(ranked))
            control = random.Random(self.cfg.seed).sample(sorted(ranked), k)
            ids.append(self.store.enqueue_trial("control", control, config=budget))
        ids += self.enqueue_ensembles(ranked)
        self._run(ids)
        best = self.best_ensemble()
        if best is not None and s.final_seeds > 1:
            self.observer.phase(f"best ensemble over {s.final_seeds} seeds")
            own = parse_config(best.config, source=f"trial {best.id}")  # its own budget
            seeds = [self.cfg.seed + i for i in range(1, s.final_seeds)]
            attrs = {"name": best.attrs.get("name")} if best.attrs.get("name") else None
            self._run(
                [
                    self.store.enqueue_trial(
                        "final", best.candidates, seed=x, config=own, attrs=attrs
                    )
                    for x in seeds
                ]
            )
        self.evaluate_finalists(ranked[:TOP_SINGLE_FINALISTS])

    def enqueue_ensembles(self, ranked: Sequence[str]) -> list[int]:
        """One ensemble trial per distinct (members, steps) of the named configurations."""
        from rewardsmith.search.ensembles import AnswerCheck, group_plan

        s = self.cfg.search
        rounds = {c.name: c.round for c in self.store.candidates()}
        checks = AnswerCheck(self.store, self.pool, timeout_s=self.cfg.rewards.timeout_s)
        try:
            planned, skipped = group_plan(s, ranked, rounds, checks)
        finally:
            checks.close()
        if skipped:
            self.observer.message(
                f"{len(ranked)} screened candidate(s): no ensemble {', '.join(skipped)}"
            )
        ids = []
        for plan in planned:
            if len(plan.names) > 1:
                self.observer.message(f"ensembles {plan.name} pick the same members: one trial")
            attrs = {"name": plan.name, "names": list(plan.names), "k": len(plan.members)}
            config = with_steps(self.cfg, plan.steps)
            ids.append(
                self.store.enqueue_trial("ensemble", plan.members, config=config, attrs=attrs)
            )
        return ids

    def best_ensemble(self) -> Any:
        board = self.store.leaderboard(self.cfg.search.rank_metric, kinds=("ensemble",))
        return board[0][0] if board else None

    def evaluate_finalists(self, top_single: Sequence[str]) -> None:
        """Evaluate every finalist's adapter on the test split (once; resumable), as evaluation
        jobs of the executor (worker processes in its GPU slots, not this process). A job that
        keeps failing leaves its finalist without a test evaluation; the search goes on."""
        finalists = [
            t
            for t in self.store.trials(state="COMPLETE")
            if t.kind in ("baseline", "control", "ensemble", "final")
            or (
                t.kind in SCREEN_KINDS
                and len(t.candidates) == 1
                and t.candidates[0] in top_single
                and at_full_budget(t)  # not a halving rung's partial run
            )
        ]
        todo = {t.id: t for t in finalists if self.store.evaluation(t.id, "test") is None}
        if not todo:
            return
        self.observer.phase(f"test evaluation of {len(todo)} finalist(s)")

        def done(trial_id: int) -> None:
            self.observer.message(f"evaluated trial {trial_id} ({todo[trial_id].kind}) on test")

        self.executor.evaluate(self.store, list(todo), "test", done)
        missing = [i for i in todo if self.store.evaluation(i, "test") is None]
        if missing:
            self.observer.message(
                f"no test evaluation for trial(s) {missing}: their evaluation failed "
                f"(see {self.store.logs_dir}/eval-<trial>-test.log)"
            )


def _renamed(candidate: Any, taken: set[str]) -> Any:
    i = 2
    while f"{candidate.name}_{i}" in taken:
        i += 1
    return replace(candidate, name=f"{candidate.name}_{i}")
