"""One rank of the DDP equivalence test (run under torchrun by test_ddp.py, not collected by pytest).

argv: OUT SETTINGS_JSON MODE [MODE ...]. For each mode, trains a fresh model for settings.run.steps
steps on this rank's shard of every global batch and saves the model's and rotator's parameters to
OUT/<mode>-rank<r>.pt.
"""

import json
import sys
from pathlib import Path

import torch

from geogui.engine.data import load_corpus
from geogui.engine.distributed.ddp import DistributedReplicas
from geogui.engine.trainer import Trainer
from geogui.settings import Settings


def main() -> None:
    out, settings_json, modes = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    torch.set_num_threads(1)
    replicas = DistributedReplicas("cpu", timeout_s=120)
    first = Settings.model_validate_json(settings_json)
    corpus = load_corpus(first.data, first.model.seq_len)
    for mode in modes:
        raw = json.loads(settings_json)
        settings = Settings.model_validate({**raw, "run": {**raw["run"], "mode": mode}})
        trainer = Trainer(settings, on_nonfinite="stop", corpus=corpus, replicas=replicas)
        for _ in trainer.run():
            pass
        state = {f"model.{k}": v for k, v in trainer.state.model.state_dict().items()}
        state.update({f"rotator.{k}": v for k, v in trainer.state.rotator.state_dict().items()})
        torch.save(state, out / f"{mode}-rank{replicas.rank}.pt")
    replicas.close()


if __name__ == "__main__":
    main()
