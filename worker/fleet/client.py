"""The broker client of a fleet's process: one session, and the token, rate budget and
resolved contracts shared with every other worker through Redis."""

from __future__ import annotations

import aiohttp
from redis.asyncio import Redis

from worker.broker.client import GatewayClient
from worker.fleet.budget import RateBudget
from worker.fleet.contracts import SharedContracts
from worker.fleet.tokens import SharedTokens
from worker.observe import Observer
from worker.settings import Settings


def fleet_broker(
    settings: Settings, session: aiohttp.ClientSession, redis: Redis, observer: Observer
) -> GatewayClient:
    """The broker client, sharing the fleet's token, rate budget and resolved contracts."""
    keys = settings.keys
    return GatewayClient(
        session,
        settings.base_url,
        username=settings.username,
        api_key=settings.api_key.reveal(),
        retry=settings.retry,
        request_timeout=settings.broker_timeout_ms / 1000,
        connect_timeout=settings.broker_connect_timeout_ms / 1000,
        renew_margin=settings.token_renew_margin_s,
        budget=None
        if settings.budget is None
        else RateBudget(redis, settings.budget, settings.history_budget),
        tokens=SharedTokens(redis, keys),
        contracts=SharedContracts(redis, keys, ttl_s=settings.contract_ttl_s),
        contract_refresh_s=settings.contract_refresh_s,
        observer=observer,
    )
