"""The broker call of the peers' workers: the HTTP requests our worker sends, and no more.

A user who picks streaq or taskiq instead of our worker writes a task that holds one
aiohttp session, logs in once, resolves the contract once and then POSTs
``/api/Order/place`` per task. This module is that task body, shared by every peer so
they all make the same request: the same endpoint, headers and JSON as
``worker.broker.client.GatewayClient.place_order`` sends for a bracketed market BUY (the
fields, their order and the signed bracket ticks), with a fresh ``customTag`` each time,
as the simulator, like the gateway, refuses a tag used before.

It imports nothing of the product (only aiohttp and msgspec), so a peer that cannot share
our redis-py runs it from a virtual environment of its own.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import msgspec

from benchmarks.workload import ACCOUNT, STOP_LOSS_TICKS, SYMBOL, TAKE_PROFIT_TICKS

USER: Final = "demo"
API_KEY: Final = "demo-key"
_TIMEOUT: Final = aiohttp.ClientTimeout(total=10)
_JSON: Final = {"Content-Type": "application/json", "Accept": "application/json"}
# ProjectX enums (docs/gateway.md §5): type 2 market, side 0 bid; bracket type 4 stop,
# 1 limit; a buy's stop-loss ticks are negative (§5.7).
_MARKET: Final = 2
_BID: Final = 0
_STOP: Final = 4
_LIMIT: Final = 1


def new_tag() -> str:
    """A tag no order had before, about as long as the worker's ``bench.<request key>``."""
    return f"bench.{uuid.uuid4().hex[:22]}"


def make_session() -> aiohttp.ClientSession:
    """One persistent session, pooled as the worker's (``worker.broker.transport.make_session``)."""
    connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=60.0, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector)


@dataclass
class PeerGateway:
    """A logged-in session with the contract resolved; ``place`` is the per-task call."""

    session: aiohttp.ClientSession
    base_url: str
    headers: dict[str, str]
    contract_id: str

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, base_url: str) -> PeerGateway:
        """Log in (``Auth/loginKey``) and resolve the symbol (``Contract/search``) once."""
        credentials = {"userName": USER, "apiKey": API_KEY}
        login = await _post(session, base_url + "/api/Auth/loginKey", _JSON, credentials)
        headers = {"Authorization": f"Bearer {login['token']}", **_JSON}
        search = {"searchText": SYMBOL, "live": False}
        found = await _post(session, base_url + "/api/Contract/search", headers, search)
        contract = next(c for c in found["contracts"] if c["name"].startswith(SYMBOL))
        return cls(session, base_url, headers, contract["id"])

    async def place(self, tag: str) -> dict[str, Any]:
        """POST ``/api/Order/place``: a market BUY of 1 with stop-loss and take-profit
        brackets; the order ID, a status and the time at the broker, as our worker reports."""
        started = time.perf_counter()
        answer = await _post(
            self.session,
            self.base_url + "/api/Order/place",
            self.headers,
            {
                "accountId": ACCOUNT,
                "contractId": self.contract_id,
                "type": _MARKET,
                "side": _BID,
                "size": 1,
                "limitPrice": None,
                "stopPrice": None,
                "trailPrice": None,
                "customTag": tag,
                "stopLossBracket": {"ticks": -STOP_LOSS_TICKS, "type": _STOP},
                "takeProfitBracket": {"ticks": TAKE_PROFIT_TICKS, "type": _LIMIT},
            },
        )
        return {
            "status": "accepted"
            if answer.get("success")
            else f"rejected: {answer.get('errorCode')}",
            "order_id": answer.get("orderId"),
            "ms": (time.perf_counter() - started) * 1000,
        }


async def _post(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    async with session.post(
        url, data=msgspec.json.encode(body), headers=headers, timeout=_TIMEOUT
    ) as response:
        response.raise_for_status()
        answer: dict[str, Any] = msgspec.json.decode(await response.read())
        return answer
