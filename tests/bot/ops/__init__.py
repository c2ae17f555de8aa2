"""Deploy and operate: ops endpoint, metrics, backups, logs, browse, deploy files."""
