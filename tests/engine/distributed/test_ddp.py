"""Data-parallel training (CPU, gloo, 2 ranks under torchrun): equal to one process on the whole batch,
steerable through the control file, and a killed rank fails the run instead of hanging it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from geogui.engine.data import load_corpus
from geogui.engine.metrics import BatchRecord
from geogui.rundir.runlog import read_run_records
from geogui.engine.trainer import Trainer

from tests.conftest import tiny_settings

WORKER = Path(__file__).with_name("ddp_worker.py")
MODES = ("standard", "geometric_fast", "geometric")


def torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


@pytest.mark.slow
def test_two_ranks_on_half_batches_end_equal_to_one_process_on_the_whole_batch(tmp_path):
    steps, global_batch = 5, 4
    # Ghosts stay dormant for 5 steps here (patience 20): the geometric step skips their experts.
    per_rank = tiny_settings(steps=steps, batch_size=global_batch // 2, eval_interval=1000, checkpoint_interval=0)
    done = subprocess.run(torchrun(str(WORKER), str(tmp_path), per_rank.model_dump_json(), *MODES),
                          env=child_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    corpus = load_corpus(per_rank.data, per_rank.model.seq_len)
    for mode in MODES:
        whole = tiny_settings(steps=steps, batch_size=global_batch, eval_interval=1000, mode=mode)
        trainer = Trainer(whole, corpus=corpus)
        losses = [event.loss for event in trainer.run() if isinstance(event, BatchRecord)]
        assert len(losses) == steps and all(map(torch.isfinite, torch.tensor(losses)))
        expected = {f"model.{k}": v for k, v in trainer.state.model.state_dict().items()}
        expected.update({f"rotator.{k}": v for k, v in trainer.state.rotator.state_dict().items()})
        ranks = [torch.load(tmp_path / f"{mode}-rank{rank}.pt", weights_only=False) for rank in (0, 1)]
        worst = 0.0
        for name, want in expected.items():
            if not isinstance(want, torch.Tensor) or not want.is_floating_point():
                continue
            for rank, got in enumerate(ranks):
                diff = (got[name] - want).abs().max().item()
                assert diff <= 1e-5, f"{mode}: rank {rank} {name} differs by {diff:.3g}"
                worst = max(worst, diff)
            assert torch.equal(ranks[0][name], ranks[1][name]), f"{mode}: the ranks disagree on {name}"
        print(f"{mode}: largest difference from one process {worst:.2g}")


def geogui_train() -> str:
    # The console script next to this interpreter: CI runs the tests without activating the venv.
    script = Path(sys.executable).with_name("geogui-train")
    return str(script) if script.exists() else "geogui-train"


def launch_cli_run(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    settings = tmp_path / "tiny.json"
    settings.write_text(tiny_settings(checkpoint_interval=5, eval_interval=1000).model_dump_json())
    out = tmp_path / "run"
    command = torchrun("--no-python", geogui_train(), "--settings", str(settings), "--steps", "100000",
                       "--out", str(out), "--quiet", *extra)
    process = subprocess.Popen(command, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return process, out


def records(out: Path) -> list[dict]:
    try:
        lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.endswith("\n")]


def wait_for(condition, process: subprocess.Popen, what: str, timeout_s: float = 120.0) -> None:
    """Poll the run directory another process writes (no fixed sleeps stand in for progress)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {what}:\n{process.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def batches(out: Path) -> list[dict]:
    return [r for r in records(out) if r["kind"] == "batch"]


@pytest.mark.slow
def test_mode_switch_through_the_control_file_under_two_ranks(tmp_path):
    from geogui.cli.control import main as control_main

    process, out = launch_cli_run(tmp_path)
    try:
        wait_for(lambda: len(batches(out)) >= 2, process, "the first batches")
        assert control_main([str(out), "--mode", "geometric"]) == 0
        wait_for(lambda: any(r["kind"] == "mode_change" for r in records(out)), process, "the switch")
        wait_for(lambda: batches(out)[-1]["mode"] == "geometric" and len(batches(out)) >= 8, process,
                 "geometric batches")
        assert control_main([str(out), "--stop"]) == 0
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output[-3000:]

    logged = records(out)
    switch = next(i for i, r in enumerate(logged) if r["kind"] == "mode_change")
    assert logged[switch]["mode"] == "geometric" and logged[switch]["previous_mode"] == "geometric_fast"
    after = [r for r in logged[switch:] if r["kind"] == "batch"]
    assert after and all(r["mode"] == "geometric" for r in after)
    assert all(r["mode"] == "geometric_fast" for r in logged[:switch] if r["kind"] == "batch")
    assert after[0]["step"] == logged[switch]["step"]

    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["status"] == "stopped" and meta["world_size"] == 2 and meta["backend"] == "gloo"
    assert meta["global_batch_size"] == 2 * tiny_settings().run.batch_size
    assert [r["tokens_seen"] for r in logged if r["kind"] == "batch"][:1] == [8 * 32]  # global tokens per step
    assert [c["mode"] for c in meta["mode_changes"]] == ["geometric"]
    # Both ranks applied the switch at the same step: their parameters are bit-for-bit equal at the end.
    digests = meta["replicas"]["parameters_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1] and meta["replicas"]["agree"]

    # Checkpointed by 2 ranks, resumed by one process: step numbers and the mode carry on.
    from geogui.cli.train import main

    last = meta["steps_done"]
    assert main(["--resume", str(out), "--steps", "2", "--quiet"]) == 0
    resumed = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert resumed["status"] == "finished" and resumed["world_size"] == 1 and resumed["steps_done"] == last + 2
    continued = [r for r in read_run_records(out) if r["kind"] == "batch"][-2:]
    assert [r["step"] for r in continued] == [last + 1, last + 2]
    assert all(r["mode"] == "geometric" for r in continued)


@pytest.mark.slow
def test_a_killed_rank_fails_the_run_within_the_collective_timeout(tmp_path):
    timeout_s = 30
    process, out = launch_cli_run(tmp_path, "--collective-timeout", str(timeout_s))
    try:
        wait_for(lambda: len(batches(out)) >= 3, process, "the first batches")
        meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
        victim = next(r for r in meta["ranks"] if r["rank"] == 1)
        killed_at = time.monotonic()
        os.kill(victim["pid"], signal.SIGKILL)
        output, _ = process.communicate(timeout=timeout_s + 30)
        ended_after = time.monotonic() - killed_at
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert ended_after < timeout_s, f"the run took {ended_after:.0f} s to end"
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["status"] == "failed", output[-3000:]
    assert f"rank 1 (pid {victim['pid']})" in meta["error"]
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    parsed = [json.loads(line) for line in lines]  # every line logged so far is whole JSON
    steps = [r["step"] for r in parsed if r["kind"] == "batch"]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 3
