"""Write the API's OpenAPI schema to a file (the web client's types are generated from it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from isengard.api.app import create_app
from isengard.config import Settings


def openapi_schema() -> dict[str, object]:
    # The schema does not depend on the runtime services, so no lifespan is run.
    app = create_app(Settings(_env_file=None, mode="fast-test", redis_url="redis://127.0.0.1:1/0"))  # type: ignore[call-arg]
    return app.openapi()


def main(argv: list[str]) -> int:
    target = Path(argv[1] if len(argv) > 1 else "web/openapi.json")
    target.write_text(json.dumps(openapi_schema(), indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
