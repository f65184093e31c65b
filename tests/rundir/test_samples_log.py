"""samples.jsonl keeps metrics.jsonl's durability: a kill -9 loses at most a torn last line, which
reading ignores and the next append ends; a continued run supersedes samples past its checkpoint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from geogui.cli.train import main
from geogui.engine.checkpoint import latest_checkpoint, read_checkpoint_step
from geogui.rundir.samples import read_samples


def _settings(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({
        "run": {"batch_size": 2, "eval_interval": 100000, "checkpoint_interval": 4, "steps": 100000},
        "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 16, "expert_hidden": 16},
        "sampling": {"sample_interval": 1, "max_bytes": 3, "accuracy_questions": 0},
        "device": {"device": "cpu"}}))
    return path


def test_samples_survive_kill_minus_9_and_a_torn_line_is_ignored_then_ended(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "geogui.cli.train", "--settings", str(_settings(tmp_path)),
                                "--out", str(out), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if latest_checkpoint(out) and len(read_samples(out)) >= 10:
                break
            time.sleep(0.05)  # polling another process's files; nothing to wait on
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    samples = read_samples(out)
    lines = (out / "samples.jsonl").read_bytes().split(b"\n")
    assert len(samples) >= len(lines) - 2 and len(samples) >= 10  # at most the torn last line is lost
    assert [s.step for s in samples] == list(range(1, len(samples) + 1))
    with open(out / "samples.jsonl", "ab") as handle:  # a crash in the middle of a line
        handle.write(b'{"kind": "sample", "step": 99999, "mo')
    assert [s.step for s in read_samples(out)] == [s.step for s in samples]

    checkpoint = read_checkpoint_step(latest_checkpoint(out))
    assert main(["--resume", str(out), "--steps", "2", "--quiet"]) == 0
    # The continuation's samples replace those logged past the checkpoint; the torn line stays unread.
    # (The sample of the checkpoint's own step is taken after the checkpoint: a kill can fall between.)
    kept = [s.step for s in samples if s.step <= checkpoint]
    assert [s.step for s in read_samples(out)] == kept + [checkpoint + 1, checkpoint + 2]
