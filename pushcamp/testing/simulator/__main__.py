"""``python -m pushcamp.testing.simulator --port P``: serve the simulator until Ctrl-C."""

from __future__ import annotations

import argparse

from pushcamp.testing.simulator._server import run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pushcamp.testing.simulator",
        description="A Web Push service simulator: verifies VAPID, decrypts, records, "
        "injects faults.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port")
    parser.add_argument("--no-decrypt", action="store_true", help="do not decrypt (benchmarks)")
    parser.add_argument("--no-verify-vapid", action="store_true", help="do not check VAPID tokens")
    parser.add_argument("--seed", type=int, default=None, help="seed for rate faults")
    args = parser.parse_args(argv)
    run(
        args.host,
        args.port,
        decrypt=not args.no_decrypt,
        verify_vapid=not args.no_verify_vapid,
        seed=args.seed,
    )


if __name__ == "__main__":
    main()
