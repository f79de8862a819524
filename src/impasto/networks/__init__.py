"""The networks: each one-pass network, its training task, compression and export, and the training loop."""
