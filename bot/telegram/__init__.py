"""Telegram adapter: python-telegram-bot service, transport, delivery outcomes, HTML render."""
