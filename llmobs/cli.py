"""The ``llmobs`` command: demo, stats, init (later: ui, scheduler, evaluate, export)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from llmobs.config import DEFAULT_CONFIG_FILE, ConfigError, render_default_config


def _configure(args: argparse.Namespace) -> None:
    import llmobs

    overrides: dict[str, Any] = {}
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    llmobs.configure(config_file=getattr(args, "config", None), **overrides)


def cmd_demo(args: argparse.Namespace) -> int:
    """Record the demo workload into the configured database and print what was stored."""
    from llmobs import demo, get_settings

    _configure(args)
    print(f"llmobs demo: recording {args.requests} requests into {get_settings().database_url} ...")
    failures = demo.run(args.requests)
    print(f"recorded {args.requests} requests ({failures} failed on purpose: simulated rate limits)\n")
    return cmd_stats(args)


def cmd_stats(args: argparse.Namespace) -> int:
    """Print a short summary of what is stored."""
    from llmobs import analytics, get_settings

    _configure(args)
    summary = analytics.storage_summary()
    print(f"database: {_mask_url(get_settings().database_url)}")
    print(f"traces: {summary['traces']}   spans: {summary['spans']}   errors: {summary['errors']}   "
          f"users: {summary['users']}")
    if summary["first_span"] is not None:
        print(f"time range: {summary['first_span']:%Y-%m-%d %H:%M:%S} .. {summary['last_span']:%Y-%m-%d %H:%M:%S} UTC")
    kinds = ", ".join(f"{k}={v}" for k, v in summary["spans_by_kind"].items())
    print(f"spans by kind: {kinds or '-'}")
    if summary["models"]:
        print(f"\n{'model':<30}{'calls':>8}{'tokens':>10}{'cost USD':>12}{'avg ms':>10}")
        for m in summary["models"]:
            cost = "-" if m["cost_usd"] is None else f"{m['cost_usd']:.4f}"
            avg = "-" if m["avg_duration_ms"] is None else f"{m['avg_duration_ms']:.1f}"
            print(f"{m['model_name']:<30}{m['calls']:>8}{m['total_tokens']:>10}{cost:>12}{avg:>10}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Write a starter config file with every setting and its default."""
    path = Path(args.path)
    if path.exists() and not args.force:
        print(f"{path} exists; use --force to overwrite", file=sys.stderr)
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_default_config(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


def _mask_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return "<unparsable url>"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="llmobs", description="LLM observability: trace, measure, evaluate, alert.")
    parser.add_argument("--config", help="config file (default: config/config.yaml or $LLMOBS_CONFIG_FILE)")
    parser.add_argument("--database-url", help="override database_url")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="record a demo workload and print a summary")
    demo.add_argument("--requests", type=int, default=120)
    demo.set_defaults(func=cmd_demo)
    stats = sub.add_parser("stats", help="summarise what is stored")
    stats.set_defaults(func=cmd_stats)
    init = sub.add_parser("init", help="write a starter config file")
    init.add_argument("path", nargs="?", default=str(DEFAULT_CONFIG_FILE))
    init.add_argument("--force", action="store_true")
    init.set_defaults(func=cmd_init)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llmobs`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
