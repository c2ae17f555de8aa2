"""Discord adapter: discord.py service, slash commands, delivery outcomes, embeds."""
