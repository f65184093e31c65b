"""One process or DDP replicas under torchrun (`replicas`), and the DDP set-up and rank failures (`ddp`)."""
