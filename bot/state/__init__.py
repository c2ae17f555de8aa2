"""The only SQL about chats: alerts, outbox and subscriptions.

bot/state builds on the market Store's `database` (feeds.store.Database: the file's one
connection, transactions, meta keys and a migration runner). It keeps its own tables and
migrations (schema.py, versioned under `state_schema_version`); the bot's Writer migrates
them when it opens the file, and every class here makes sure of it when built.
"""
