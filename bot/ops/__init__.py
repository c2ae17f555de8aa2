"""The operator's side: /healthz and /metrics, feed health, logs and redaction, backup, browse."""
