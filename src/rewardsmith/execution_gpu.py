"""Where the local executor's workers run: GPU slots, and the environment of each worker.

A *slot* is room for one worker process. :func:`gpu_slots` turns ``search.gpus`` and
``search.trials_per_gpu`` into the executor's slots; :func:`worker_env` gives the worker that
holds a slot its environment:

* a GPU slot (a device id, as ``CUDA_VISIBLE_DEVICES`` names it) pins the worker to that one
  GPU, so transformers sees ``n_gpu == 1`` in every trial (with several GPUs visible it would
  wrap the model in DataParallel, which TRL refuses);
* a CPU slot (None) leaves ``CUDA_VISIBLE_DEVICES`` as it is; the slot ``""`` (``gpus: 0``)
  hides every GPU from the worker;
* the variables of a distributed launcher (``torchrun``, ``accelerate launch``, MPI) are
  removed: a search started under one must not make each trial believe it is one rank of a
  process group;
* ``OMP_NUM_THREADS`` (unless set) shares the cores between the slots, since oversubscribed
  OpenMP threads spin and slow every trial down.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rewardsmith.errors import ConfigError

if TYPE_CHECKING:
    from rewardsmith.config_search import SearchSection

#: Set by torchrun / torch.distributed.elastic, accelerate and MPI launchers: a worker that
#: inherits them initialises (or waits for) a process group that is not there.
DISTRIBUTED_VARS = frozenset(
    {
        "RANK",
        "LOCAL_RANK",
        "WORLD_SIZE",
        "LOCAL_WORLD_SIZE",
        "GROUP_RANK",
        "GROUP_WORLD_SIZE",
        "ROLE_NAME",
        "ROLE_RANK",
        "ROLE_WORLD_SIZE",
        "MASTER_ADDR",
        "MASTER_PORT",
        "NODE_RANK",
        "PMI_RANK",
        "PMI_SIZE",
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_SIZE",
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "OMPI_COMM_WORLD_LOCAL_SIZE",
        "MV2_COMM_WORLD_RANK",
        "MV2_COMM_WORLD_SIZE",
        "MV2_COMM_WORLD_LOCAL_RANK",
    }
)
DISTRIBUTED_PREFIXES = ("TORCHELASTIC_", "ACCELERATE_")


def visible_gpus(environ: Mapping[str, str] | None = None) -> list[str]:
    """The GPUs this process may use, named as a child's ``CUDA_VISIBLE_DEVICES`` names them.

    With ``CUDA_VISIBLE_DEVICES`` set, its entries (ids or ``GPU-``/``MIG-`` UUIDs; CUDA ignores
    everything from the first invalid entry, such as ``-1``, on); otherwise ``0 .. n-1`` with
    ``n`` from ``torch.cuda.device_count()`` (none without torch).

    >>> visible_gpus({"CUDA_VISIBLE_DEVICES": "2, 3,-1,4"})
    ['2', '3']
    >>> visible_gpus({"CUDA_VISIBLE_DEVICES": ""})
    []
    """
    environ = os.environ if environ is None else environ
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        ids: list[str] = []
        for entry in (e.strip() for e in listed.split(",")):
            if not entry or entry.startswith("-"):
                break
            ids.append(entry)
        return ids
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())]


def gpu_slots(
    search: SearchSection, visible: Sequence[str | int] | None = None
) -> list[str | None]:
    """The executor's slots for ``search.gpus``, each GPU ``search.trials_per_gpu`` times.

    ``gpus``: ``"auto"`` every visible GPU (:func:`visible_gpus`, or ``visible`` when given);
    a count ``n`` the first ``n`` of them; a list the GPUs with those ids, numbered as this
    process numbers them (``cuda:N``; with ``CUDA_VISIBLE_DEVICES`` set, ``N`` indexes that
    list). Without a GPU (none visible with ``"auto"``, or ``gpus: 0``) there are ``parallel``
    CPU slots: None, or ``""`` for ``gpus: 0`` (the workers are hidden any GPU). The GPUs are
    interleaved, so that fewer trials than slots spread over the GPUs. :class:`ConfigError`
    when more GPUs are asked for than are visible.
    """
    gpus = search.gpus
    if gpus == 0 or gpus == []:
        return [""] * search.parallel
    names = visible_gpus() if visible is None else [str(v) for v in visible]
    where = _where(names, visible is None)
    if gpus == "auto":
        chosen = names
    elif isinstance(gpus, int):
        if gpus > len(names):
            raise ConfigError(f"search.gpus: {gpus} GPU(s) asked for, but {where}")
        chosen = names[:gpus]
    else:
        missing = [g for g in gpus if g >= len(names)]
        if missing:
            raise ConfigError(f"search.gpus: no GPU with id {missing[0]} here: {where}")
        chosen = [names[g] for g in gpus]
    if not chosen:
        return [None] * search.parallel
    return [gpu for _ in range(search.trials_per_gpu) for gpu in chosen]


def _where(names: Sequence[str], from_environment: bool) -> str:
    listed = os.environ.get("CUDA_VISIBLE_DEVICES") if from_environment else None
    seen = f"{len(names)} GPU(s) are visible" + (f" ({', '.join(names)})" if names else "")
    return seen + (f" with CUDA_VISIBLE_DEVICES={listed!r}" if listed is not None else "")


def describe_slot(slot: str | None) -> str:
    """How logs name a slot: ``GPU 2``, ``CPU`` or ``CPU (GPUs hidden)``."""
    if slot is None:
        return "CPU"
    return f"GPU {slot}" if slot else "CPU (GPUs hidden)"


def worker_env(
    slot: str | None, n_slots: int, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a worker holding ``slot``, one of ``n_slots`` (see the module doc)."""
    environ = os.environ if environ is None else environ
    env = {
        k: v
        for k, v in environ.items()
        if k not in DISTRIBUTED_VARS and not k.startswith(DISTRIBUTED_PREFIXES)
    }
    env |= {
        "PYTHONUNBUFFERED": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # keep worker logs readable
    }
    if slot is not None:
        env["CUDA_VISIBLE_DEVICES"] = slot
    env.setdefault("OMP_NUM_THREADS", str(max(1, _cpu_count() // max(1, n_slots))))
    return env


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
