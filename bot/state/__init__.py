"""The only SQL about chats: alerts, outbox and subscriptions."""
