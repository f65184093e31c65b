"""The headless engine: the MoE model and its rotator, the three modes' losses, the trainer and its
typed records. Imports no Qt and nothing from the run directory, the commands or the window.

`data/` prepares text (tokenizer, lambda-calculus corpus, strict file readers, batches) apart from
training; `distributed/` runs one process or DDP replicas."""
