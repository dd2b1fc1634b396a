"""Place, modify and cancel through the queue: producer → Redis → worker → simulator → back."""

from __future__ import annotations

from producer import OrderClient
from worker.local.pytest_plugin import BrokerSim


async def test_place_modify_cancel_round_trip(
    order_client: OrderClient, broker_sim: BrokerSim
) -> None:
    placed = await order_client.place_market_order(
        symbol="MNQ",
        side="BUY",
        quantity=1,
        stop_loss_ticks=50,
        take_profit_ticks=100,
        limit_price=None,
        order_type="market",
        custom_tag="my_strategy",
    )
    assert placed.status == "accepted", placed
    assert placed.order_id is not None
    limit = await order_client.place_order("MNQ", "BUY", 1, order_type="limit", limit_price=20000.0)
    assert limit.status == "accepted", limit
    assert limit.order_id is not None
    modified = await order_client.modify_order(order_id=limit.order_id, price=20000.25, quantity=2)
    assert modified.status == "accepted", modified
    cancelled = await order_client.cancel_order(order_id=limit.order_id)
    assert cancelled.status == "accepted", cancelled
    assert cancelled.order_state == "cancelled"

    orders = {o["id"]: o for o in broker_sim.orders()}
    assert orders[placed.order_id]["customTag"].startswith("my_strategy.")
    assert orders[limit.order_id]["size"] == 2
    assert orders[limit.order_id]["status"] == 3  # Cancelled
