"""The emulator's state, with no web framework: users, tasks, their order, the runner and
its clock, DRF throttles, counters, the request log and the outage switch."""
