"""The README's example of a strategy author's own tests, run as written: only the
fixtures that the installed pytest plugin provides."""

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from producer import OrderClient, OrderResult
from worker.local.pytest_plugin import BrokerSim


async def test_my_strategy_places_with_brackets(
    order_client: OrderClient, broker_sim: BrokerSim
) -> None:
    result = await order_client.place_order(
        "MNQ", "BUY", 1, stop_loss_ticks=20, take_profit_ticks=40
    )
    assert result.status == "accepted"
    assert len(broker_sim.orders()) == 3  # the entry and its two bracket legs


async def test_my_recorded_session_replays_cleanly(
    replay_intents: Callable[..., Awaitable[list[OrderResult | None]]], tmp_path: Path
) -> None:
    intent = {"kind": "place", "request_id": "r1", "reply_to": "ow:reply:x",
              "account_id": 12345678, "created_at": 0, "deadline": 10_000,
              "symbol": "ES", "side": "SELL", "quantity": 1}  # fmt: skip
    recorded = tmp_path / "session.jsonl"
    recorded.write_text(json.dumps(intent) + "\n")
    results = await replay_intents(recorded)
    assert [r.status if r else None for r in results] == ["accepted"]
