"""Storage targets: one small interface, one module per storage. See base.Target."""
