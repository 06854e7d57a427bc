"""Service layer: processes, I/O, the daemon. Nothing in liveopt imports this package."""
