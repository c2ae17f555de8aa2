"""liqbot's service side: chat, alerts, operations, the command line."""


def version() -> str:
    """The installed package's version (pyproject.toml), or "unknown" from a bare checkout.

    One place for `liqbot --version`, the start line and the build-info metric.
    """
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("liqbot")
    except PackageNotFoundError:
        return "unknown (not installed)"
