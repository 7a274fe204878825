"""One module per command group; each defines `register(root)` (see `workers.cli`)."""
