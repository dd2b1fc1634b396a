"""Observer hooks, the health state and the JSON log format, without processes."""

from __future__ import annotations

import json
import logging

from producer.contract import OrderResult
from worker.observe import Observer, Observers
from worker.ops.health import HealthState
from worker.ops.logs import JsonFormatter


class Recorder(Observer):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def intent_finished(self, result: OrderResult) -> None:
        self.seen.append(result.request_id)

    def in_flight(self, count: int) -> None:
        self.seen.append(f"in flight {count}")


def test_observers_fan_events_out_to_every_observer() -> None:
    first, second = Recorder(), Recorder()
    both = Observers([first, second, Observer()])
    both.intent_finished(OrderResult(request_id="r1", status="accepted", kind="place"))
    both.in_flight(3)
    both.dead_lettered("ignored by these")
    assert first.seen == second.seen == ["r1", "in flight 3"]


def test_health_turns_bad_only_after_the_threshold_and_recovers() -> None:
    now = [100.0]
    health = HealthState(threshold_s=5, clock=lambda: now[0])
    health.broker_request("/api/Order/place", "timeout", 0.5)
    now[0] += 4
    assert health.report().healthy
    now[0] += 2
    report = health.report()
    assert not report.healthy
    assert "broker failing for 6 s" in report.reason
    health.broker_request("/api/Order/place", "200", 0.001)
    assert health.report().healthy
    # A business answer (HTTP 200, even success false) or a 4xx is a broker that answers.
    health.broker_request("/api/Order/place", "400", 0.001)
    now[0] += 60
    assert health.report().healthy
    health.redis_trouble("read")
    now[0] += 31
    assert "Redis unreachable for 31 s" in health.report().reason
    health.redis_ok()
    assert health.report().healthy


def test_json_log_lines_carry_the_extra_fields() -> None:
    record = logging.LogRecord(
        "worker.outcome", logging.INFO, __file__, 1, "%s done", ("r1",), None
    )
    record.request_id = "r1"
    record.order_id = 42
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "r1 done"
    assert (line["request_id"], line["order_id"], line["level"]) == ("r1", 42, "info")
    assert line["time"].endswith("Z")
