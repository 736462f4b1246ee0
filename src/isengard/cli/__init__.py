"""The `isengard` command line (`isengard = "isengard.cli:main"`): the process commands in `main`, and the API
client behind `train` and `generate`."""

from isengard.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
