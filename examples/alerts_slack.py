"""Alert on slow LLM calls and get a Slack message, fully offline: a local stand-in for Slack's incoming webhook
receives the messages.

Run: python examples/alerts_slack.py
Records into the configured database (LLMOBS_DATABASE_URL, default sqlite:///data/llmobs.db).
"""

from __future__ import annotations

import http.server
import json
import threading
import time

import llmobs
from llmobs.alerts.manager import AlertManager
from llmobs.alerts.notification_handlers import SlackConfig, SlackNotifier
from llmobs.alerts.rules import AlertRule


class FakeSlack(http.server.BaseHTTPRequestHandler):
    """Answers like Slack's incoming webhook (200 "ok") and prints the header of each message it gets."""

    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeSlack.received.append(body)
        print(f"  slack got: {body['blocks'][0]['text']['text']}")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@llmobs.observe(kind="generation")
def answer(question: str, seconds: float) -> str:
    """A stand-in for an LLM call that takes ``seconds``."""
    time.sleep(seconds)
    llmobs.update_current_span(model_name="gpt-4o-mini", prompt_tokens=12, completion_tokens=30)
    return f"an answer to {question!r}"


def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeSlack)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    webhook_url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/XXXXXXXX"

    alert_manager = AlertManager()
    alert_manager.add_rule(AlertRule(
        rule_id="slow_llm_calls", name="Slow LLM calls", metric_name="response_time_p95", condition="gt",
        threshold=150, severity="critical", window_minutes=5, cooldown_minutes=10,
        filters={"model_name": "gpt-4o-mini"}, description="p95 latency of gpt-4o-mini above 150 ms"))
    alert_manager.add_notification_handler(SlackNotifier(SlackConfig(
        webhook_url=webhook_url, channel="#llm-alerts", username="LLM Observer")))

    print("recording 3 slow calls (250 ms each) ...")
    for i in range(3):
        answer(f"slow question {i}", 0.25)
    llmobs.flush()
    for t in alert_manager.evaluate_rules():  # one tick, what the scheduler runs every interval
        print(f"transition: {t.rule_id} {t.from_state} -> {t.to_state} ({t.message})")
    for alert in alert_manager.get_active_alerts(severity="critical"):
        print(f"active alert {alert['alert_id']}: {alert['name']} value={alert['value']:.0f} ms")

    print("recording 100 fast calls ...")
    for i in range(100):
        answer(f"fast question {i}", 0.0)
    llmobs.flush()
    for t in alert_manager.evaluate_rules():
        print(f"transition: {t.rule_id} {t.from_state} -> {t.to_state} ({t.message})")

    alert_manager.delete_rule("slow_llm_calls")  # a demo rule: do not leave it for a real scheduler
    server.shutdown()
    print(f"slack messages received: {len(FakeSlack.received)}")


if __name__ == "__main__":
    main()
