"""The files of a run directory, and the error for one that cannot be read or written.

    meta.json         what the run is (`meta.RunMeta`), replaced atomically
    metrics.jsonl     one JSON object per record, appended (`engine.metrics`, read by `reader`)
    samples.jsonl     what the model wrote during training, a line per sample (`engine.samples`, `samples`)
    metrics.cache/    the log's columns, a segment per byte range (`segments`); deleting it loses nothing
    .lock             held by the one process writing the run (`runlog.RunLog`)
    checkpoints/      the trainer's (`engine.checkpoint`)
"""

from __future__ import annotations

META_FILE = "meta.json"
METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
CACHE_DIR = "metrics.cache"
LOCK_FILE = ".lock"


class RunLogError(ValueError):
    """A run directory that cannot be read; the message names the file and the problem."""
