"""Chat-platform-neutral delivery: the Notifier port, destinations, the console, the outbox pass."""
