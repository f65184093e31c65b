"""The Samples tab: what the model writes, asked for here or logged during training, in one table."""
