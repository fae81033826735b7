"""Child-process entry for start_in_subprocess (and a plain way to run the server without the CLI)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys

from edefter_helper.server.auth import AuthLimits
from edefter_helper.server.checks import Limits
from edefter_helper.server.cli import port_number
from edefter_helper.server.net import ConnectionLimits
from edefter_helper.server.run import serve


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edefter_helper.server")
    parser.add_argument("--data", help="veri klasörü")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=port_number, default=8765)
    parser.add_argument("--json-config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    level = logging.INFO
    if args.json_config:
        config = json.loads(args.json_config)
        level = config.pop("log_level", level)
        config["limits"] = Limits(**config.get("limits", {}))
        config["auth_limits"] = AuthLimits(**config.get("auth_limits", {}))
        config["connections"] = ConnectionLimits(**config.get("connections", {}))
    elif args.data:
        config = {"data_dir": args.data, "host": args.host, "port": args.port}
    else:
        parser.error("--data gerekli")
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("waitress").setLevel(max(level, logging.getLogger("waitress").getEffectiveLevel()))
    # SIGTERM -> normal exit, so the verifier pool is shut down cleanly
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def ready(url: str) -> None:
        print(f"LISTENING {url}", flush=True)

    serve(**config, on_ready=ready)


if __name__ == "__main__":
    main()
