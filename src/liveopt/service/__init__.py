"""Service layer: the daemon (controller, main-strategy routing, journals and recovery,
API, telemetry, dashboard). Only ``liveopt.cli`` imports it (docs/controller.md)."""
