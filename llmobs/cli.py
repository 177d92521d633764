"""The ``llmobs`` command: demo, stats, init (later: ui, scheduler, evaluate, export)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from llmobs.config import DEFAULT_CONFIG_FILE, ConfigError, render_default_config

FILTER_OPTIONS = ("model", "kind", "status", "user-id", "session-id", "tag", "source")


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
    code = cmd_stats(args)
    if args.serve:
        return _serve_demo(args.port)
    return code


def _serve_demo(port: int) -> int:
    """Run the scheduler in the background and the dashboard in the foreground on the demo data until Ctrl-C."""
    import logging
    import signal

    from llmobs.alerts import AlertManager, LogNotifier
    from llmobs.scheduler import start_background
    from llmobs.ui import create_app, serve

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    manager = AlertManager()
    manager.ensure_default_rules()
    if not manager.notification_handlers:  # no channel configured: alerts go to the console
        manager.add_notification_handler(LogNotifier("console"))
    scheduler = start_background(manager=manager)
    print(f"\nscheduler: evaluating alert rules every {scheduler.llmobs_service.options.interval_seconds:g} s")
    print(f"dashboard: http://127.0.0.1:{port}/   (Ctrl-C stops the dashboard and the scheduler)", flush=True)
    try:
        serve(create_app(), host="127.0.0.1", port=port, block=True)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean stop
        scheduler.shutdown(wait=False)
        print("stopped the dashboard and the scheduler")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """Print a short summary of what is stored."""
    from llmobs import analytics, get_settings
    from llmobs.store.db import display_url

    _configure(args)
    summary = analytics.storage_summary()
    print(f"database: {display_url(get_settings().database_url)}")
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score the responses in a CSV/JSONL file (or, with --spans, stored spans), store the scores, print a summary."""
    from llmobs.evaluation import LLMEvaluator
    from llmobs.evaluation.batch import summary_table, write_frame

    _configure(args)
    if args.spans:
        return _evaluate_stored_spans(args)
    if not args.path:
        print("llmobs evaluate: give a CSV/JSONL file, or --spans to score stored spans", file=sys.stderr)
        return 2
    try:
        evaluator = LLMEvaluator(args.backend, judge_model=args.judge_model)
        frame = evaluator.evaluate_batch(args.path, resume=args.resume, workers=args.workers,
                                         task_type=args.task_type, store=not args.no_store)
        if args.out:
            write_frame(frame, args.out)
    except (ValueError, ImportError, OSError) as exc:
        print(f"llmobs evaluate: {exc}", file=sys.stderr)
        return 1
    print(summary_table(frame, backend=evaluator.backend_name, version=evaluator.evaluator_version))
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _evaluate_stored_spans(args: argparse.Namespace) -> int:
    """``llmobs evaluate --spans``: the dashboard's "run evaluators" (``evaluate_spans``) from the command line."""
    from llmobs import analytics
    from llmobs.evaluation import evaluate_spans

    try:
        start = analytics.since(args.since) if args.since else args.start
        filters = analytics.Filters(start=start, end=args.end, **_filter_fields(args, default_kind="generation"))
        report = evaluate_spans(backend=args.backend, task_type=args.task_type or "general", limit=args.limit,
                                workers=args.workers, filters=filters, span_ids=args.span_id, progress=None)
    except (ValueError, ImportError) as exc:
        print(f"llmobs evaluate: {exc}", file=sys.stderr)
        return 2
    print(f"{report.scored} spans scored with {report.evaluator_version} ({report.rows} evaluation rows stored), "
          f"{report.already_scored} already scored (skipped), {report.failed} failed")
    return 0


def _add_filter_args(parser: argparse.ArgumentParser, help_suffix: str = "") -> None:
    """--since/--start/--end and one option per analytics filter field (--model, --kind, ...)."""
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--since", help="only the last 15m, 24h, 7d, ...")
    when.add_argument("--start", help="ISO 8601 start (inclusive; no offset means UTC)")
    parser.add_argument("--end", help="ISO 8601 end (exclusive; no offset means UTC)")
    for name in FILTER_OPTIONS:
        parser.add_argument(f"--{name}", help=f"only rows with this {name.replace('-', ' ')}{help_suffix}")


def _filter_fields(args: argparse.Namespace, default_kind: str | None = None) -> dict[str, Any]:
    """The analytics filter fields given on the command line."""
    fields = {k: getattr(args, k) for k in (n.replace("-", "_") for n in FILTER_OPTIONS)
              if getattr(args, k) is not None}
    if default_kind is not None:
        fields.setdefault("kind", default_kind)
    return fields


def cmd_scheduler(args: argparse.Namespace) -> int:
    """Run the alert/evaluation/retention scheduler in the foreground until SIGTERM or Ctrl-C (or one tick)."""
    import logging

    from llmobs import scheduler

    _configure(args)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level != "debug":
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run is noise
    if args.once:
        transitions = scheduler.run_once()
        print(f"llmobs scheduler: {len(transitions)} transition(s)")
        return 0
    return scheduler.run_blocking(interval_seconds=args.interval, holder=args.holder)


def cmd_export(args: argparse.Namespace) -> int:
    """Stream the rows of a table in a time range (and filters) to a CSV, JSON or JSON Lines file, or stdout."""
    from llmobs import analytics

    _configure(args)
    fmt = args.format or _format_from_name(args.out)
    fields = _filter_fields(args)
    try:
        start = analytics.since(args.since) if args.since else args.start
        dest = sys.stdout if args.out in (None, "-") else args.out
        n = analytics.export(dest, format=fmt, table=args.table, start=start, end=args.end, **fields)
    except (ValueError, OSError) as exc:
        print(f"llmobs export: {exc}", file=sys.stderr)
        return 2
    print(f"exported {n} {args.table} rows to {args.out or 'stdout'}", file=sys.stderr)
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    """Print one stored trace as a tree of spans (name, kind, duration, status, model, tokens, cost, output)."""
    from llmobs import analytics

    _configure(args)
    tree = analytics.trace_tree(args.trace_id.strip().lower(), output_chars=0 if args.no_output else args.output_chars)
    if not tree:
        print(f"llmobs trace: no spans stored for trace {args.trace_id!r}", file=sys.stderr)
        return 1
    print(tree)
    return 0


def _format_from_name(out: str | None) -> str:
    suffix = Path(out).suffix.lower().lstrip(".") if out else ""
    return suffix if suffix in ("csv", "json", "jsonl") else "csv"


def cmd_ui(args: argparse.Namespace) -> int:
    """Serve the Gradio dashboard until Ctrl-C; refuses a non-loopback address without auth unless --no-auth."""
    from llmobs.ui.app import create_app, serve

    _configure(args)
    serve(create_app, host=args.host, port=args.port, auth=args.auth, no_auth=args.no_auth)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="llmobs", description="LLM observability: trace, measure, evaluate, alert.")
    parser.add_argument("--config", help="config file (default: config/config.yaml or $LLMOBS_CONFIG_FILE)")
    parser.add_argument("--database-url", help="override database_url")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="record a demo workload and print a summary")
    demo.add_argument("--requests", type=int, default=120)
    demo.add_argument("--serve", action="store_true", help="then run the scheduler and the dashboard until Ctrl-C")
    demo.add_argument("--port", type=int, default=7860, help="dashboard port with --serve")
    demo.set_defaults(func=cmd_demo)
    stats = sub.add_parser("stats", help="summarise what is stored")
    stats.set_defaults(func=cmd_stats)
    init = sub.add_parser("init", help="write a starter config file")
    init.add_argument("path", nargs="?", default=str(DEFAULT_CONFIG_FILE))
    init.add_argument("--force", action="store_true")
    init.set_defaults(func=cmd_init)
    evaluate = sub.add_parser("evaluate", help="score the responses of a CSV/JSONL file, or stored spans (--spans), "
                              "and store the scores")
    evaluate.add_argument("path", nargs="?", help="CSV or JSONL with prompt, response (model, task_type, "
                          "expected_response, context, id optional)")
    evaluate.add_argument("--spans", action="store_true", help="score stored spans (default kind generation) that "
                          "this evaluator has not scored yet, chosen by the filters below and --span-id")
    evaluate.add_argument("--span-id", action="append", help="with --spans: only this span (repeatable)")
    evaluate.add_argument("--limit", type=int, help="with --spans: score at most this many spans")
    _add_filter_args(evaluate, " (with --spans)")
    evaluate.add_argument("--task-type", choices=("general", "qa", "summarization", "creative", "technical"),
                          help="task type of rows that do not name one")
    evaluate.add_argument("--backend", choices=("heuristic", "embedding", "llm_judge"),
                          help="default: evaluation.backend")
    evaluate.add_argument("--out", help="write one row per input with every score (.csv or .jsonl)")
    evaluate.add_argument("--resume", action="store_true", help="skip rows already scored by this evaluator")
    evaluate.add_argument("--workers", type=int, help="parallel rows (default: the judge's max_concurrency, else 1)")
    evaluate.add_argument("--judge-model", help="override evaluation.judge.model")
    evaluate.add_argument("--no-store", action="store_true", help="do not write scores to the database")
    evaluate.set_defaults(func=cmd_evaluate)
    sched = sub.add_parser("scheduler", help="evaluate alert rules, score new generations and apply retention")
    sched.add_argument("--interval", type=float, help="seconds between alert ticks "
                       "(default: alerts.evaluation_interval_seconds)")
    sched.add_argument("--once", action="store_true", help="run one alert tick and exit")
    sched.add_argument("--holder", help="lease holder id (default: host:pid:random)")
    sched.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    sched.set_defaults(func=cmd_scheduler)
    export = sub.add_parser("export", help="write stored spans, traces or evaluations to CSV, JSON or JSON Lines")
    export.add_argument("--table", default="spans", choices=("spans", "traces", "evaluations"))
    export.add_argument("--format", choices=("csv", "json", "jsonl"), help="default: from --out's suffix, else csv")
    export.add_argument("--out", help="output file (default: stdout)")
    _add_filter_args(export)
    export.set_defaults(func=cmd_export)
    trace = sub.add_parser("trace", help="print one stored trace as a tree of spans")
    trace.add_argument("trace_id", help="the 32-hex trace id (llmobs.get_current_trace_id(), the dashboard, exports)")
    trace.add_argument("--output-chars", type=int, default=100, help="characters of each span's output to show")
    trace.add_argument("--no-output", action="store_true", help="leave outputs out")
    trace.set_defaults(func=cmd_trace)
    ui = sub.add_parser("ui", help="serve the dashboard (binds 127.0.0.1 unless told otherwise)")
    ui.add_argument("--host", help="address to bind (default: dashboard.host, 127.0.0.1)")
    ui.add_argument("--port", type=int, help="port (default: dashboard.port, 7860)")
    ui.add_argument("--database-url", default=argparse.SUPPRESS, help="override database_url")
    ui.add_argument("--auth", help="user:password (default: $LLMOBS_UI_AUTH / dashboard.auth)")
    ui.add_argument("--no-auth", action="store_true", help="allow a non-loopback address without authentication")
    ui.set_defaults(func=cmd_ui)
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
