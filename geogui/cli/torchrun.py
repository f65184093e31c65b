"""geogui-train under torchrun: one rank's side of a data-parallel run.

Every rank trains (see `geogui.engine.distributed.ddp`); rank 0 alone writes the run directory
(meta.json with `world_size`, `backend` and the ranks' hosts and pids, metrics.jsonl, checkpoints),
reads the control file and prints progress. When the run ends, the ranks compare fingerprints of
their parameters and rank 0 records them. When a rank fails, rank 0 closes the run as `failed` with
the message in meta.json, and every rank exits with status 1.

torch.distributed is imported only once torchrun has started this process: a single-process run
never loads it, and `geogui-train --help` stays instant.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path

from geogui.cli.terminal import InputError, ProgressBar, report_end, report_event
from geogui.engine.control_file import ControlFileReader
from geogui.engine.metrics import RunFinished
from geogui.rundir.driver import RunDriver, RunFailed
from geogui.settings import Settings


def launched_by_torchrun(environ: dict[str, str] | None = None) -> bool:
    """torchrun (or any env:// launcher) sets these for every rank it starts."""
    environ = os.environ if environ is None else environ
    return all(key in environ for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def _start(settings: Settings, timeout_s: float):
    """This rank's replicas, and the settings its trainer runs with: `auto`, which would pick MPS on a
    Mac, becomes the CPU there (said once on stderr); an explicit `--device mps` is refused."""
    import torch

    from geogui.engine.device import choose_device, mps_available
    from geogui.engine.distributed import ddp

    requested = settings.device.device
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        # Before anything touches CUDA: "cuda" is then this rank's own GPU, not every rank's GPU 0.
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    elif requested == "auto" and mps_available():
        if int(os.environ.get("RANK", "0")) == 0:
            print("torch.distributed has no MPS backend: training on the CPU (pass --device cpu to silence this)",
                  file=sys.stderr)
        # The trainer chooses its device again from its settings: they must say CPU too.
        settings = settings.model_copy(update={"device": settings.device.model_copy(update={"device": "cpu"})})
        requested = "cpu"
    device = choose_device(requested).device
    if device.type == "mps":
        raise InputError("torch.distributed has no MPS backend; train in one process, or pass --device cpu")
    return ddp.DistributedReplicas(device.type, timeout_s), settings


def train_replica(driver: RunDriver, quiet: bool, timeout_s: float) -> int:
    """This rank's part of the run `driver` has prepared; the exit status."""
    from geogui.engine.distributed.ddp import SharedCommands

    replicas, trainer_settings = _start(driver.settings, timeout_s)
    replicas.install_termination_handler()
    lead = replicas.rank == 0
    bar = None
    status = "failed"
    try:
        if lead:
            settings = driver.settings
            driver.open_log(world_size=replicas.world_size, backend=replicas.backend,
                            global_batch_size=settings.run.batch_size * replicas.world_size,
                            ranks=[asdict(info) for info in replicas.ranks])
            bar = None if quiet else ProgressBar(settings.run.steps, start=driver.start_step)
        run_dir = Path(replicas.share(str(driver.path) if lead else None))
        driver.build_trainer(on_nonfinite="stop", replicas=replicas, trainer_settings=trainer_settings,
                             commands=SharedCommands(ControlFileReader(run_dir) if lead else None, replicas))
        status = _follow(driver, replicas, bar)
    except KeyboardInterrupt:
        status = "stopped"
    except Exception as exc:  # noqa: BLE001 - any failure ends every rank, and rank 0 records why
        _fail(replicas, exc, driver)
    if lead:
        report_end(status, driver.path, bar)
    replicas.close()
    return 0 if status in ("finished", "stopped") else 1


def _follow(driver: RunDriver, replicas, bar: ProgressBar | None) -> str:
    lead = replicas.rank == 0
    for event in driver.run():
        if isinstance(event, RunFailed):
            _fail(replicas, driver.error, driver)
        if isinstance(event, RunFinished):  # a collective: every rank takes part
            digests = replicas.fingerprints([driver.trainer.state.model, driver.trainer.state.rotator])
            if lead:
                driver.note(replicas={"parameters_sha256": digests, "agree": len(set(digests)) == 1})
                if len(set(digests)) != 1:
                    print("warning: the ranks' parameters differ at the end of the run", file=sys.stderr)
        if lead:
            report_event(event, driver.path, bar, f"{replicas.world_size} ranks ({replicas.backend})  ")
    return driver.status


def _fail(replicas, exc: BaseException, driver: RunDriver) -> None:
    """Report the failure where it will be read, then leave at once: a collective library that lost a
    peer may hang while tearing down, and the run log is already closed."""
    from geogui.engine.distributed.ddp import describe_failure

    if replicas.rank == 0:
        message = replicas.failure_message(exc)
        driver.record_failure(message)
    else:
        message = describe_failure(exc, replicas.rank)
        replicas.report_failure(message)
    print(f"geogui-train: rank {replicas.rank} failed: {message}", file=sys.stderr)
    sys.stderr.flush()
    os._exit(1)
