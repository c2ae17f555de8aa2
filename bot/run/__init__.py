"""Running liqbot: the pipeline from feeds to outbox, live or over recorded files."""
