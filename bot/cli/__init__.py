"""The `liqbot` command line: argument parsing and the entry points of every subcommand."""
