"""Running liqbot: the pipeline from feeds to outbox, live or over recorded files.

`live.run_live` and `replay.run_replay` are the two entry points. Both open a `Run` with
`assembly.assemble` (lock file, writer, chat services, telemetry) and push batches through
`pipeline.Pipeline`; a live run adds `sources` (REST pollers) and `jobs` (the scheduler's
evaluate, deliver, health and prune). `lock` keeps to one liqbot per database.
"""
