"""Symbol to contract: searched at the gateway once, cached here and shared by the fleet.

``MNQ`` and ``NQ`` are told apart by the contract name (a substring search for "NQ" also
finds MNQ, docs/gateway.md §4.1): a contract's short name is its symbol, a CME month code
and the year's last one or two digits (MNQZ6, NQZ26).
"""

from __future__ import annotations

import math
import re
import time
from typing import Final, Protocol

from producer.errors import InvalidOrder
from producer.validation import check_symbol
from worker.broker.errors import BrokerProtocolError
from worker.broker.models import (
    Contract,
    ContractInfo,
    SearchContractByIdRequest,
    SearchContractByIdResponse,
    SearchContractRequest,
    SearchContractResponse,
)
from worker.broker.transport import CallStats, Transport

_CONTRACT_NAME: Final = "^{symbol}[FGHJKMNQUVXZ][0-9]{{1,2}}$"


class ContractStore(Protocol):
    """Where a fleet of clients shares resolved contracts (``worker.fleet.contracts``)."""

    async def load(self, symbol: str) -> ContractInfo | None:
        """The shared contract of a symbol, if there is one."""

    async def save(self, info: ContractInfo) -> None:
        """Share a contract just resolved."""


class Contracts:
    """Resolves symbols to contracts for one client."""

    def __init__(
        self,
        transport: Transport,
        *,
        store: ContractStore | None = None,
        refresh_s: float = 60.0,
    ) -> None:
        self._transport = transport
        self._store = store
        self._refresh_s = refresh_s
        self._cache: dict[str, ContractInfo] = {}
        self._checked: dict[str, float] = {}

    def pin(
        self,
        symbol: str,
        contract_id: str,
        tick_size: float | None = None,
        tick_value: float | None = None,
    ) -> None:
        """Pin a symbol to a contract ID (e.g. to trade a month other than the front)."""
        key = check_symbol(symbol)
        self._cache[key] = ContractInfo(key, contract_id, tick_size, tick_value, pinned=True)
        self._checked[key] = math.inf  # never re-read from a shared store

    def cached_id(self, symbol: str) -> str | None:
        """The cached contract ID of a symbol, if any."""
        info = self._cache.get(check_symbol(symbol))
        return info.contract_id if info else None

    def known_by_id(self, contract_id: str) -> ContractInfo | None:
        """A contract this worker resolved already, found by its ID (no request)."""
        return next((i for i in self._cache.values() if i.contract_id == contract_id), None)

    async def shared(self, symbol: str) -> bool:
        """Whether this symbol's contract is here or in the shared store (so ``resolve``
        makes no request)."""
        key = check_symbol(symbol)
        if key in self._cache:
            return True
        return self._store is not None and await self._store.load(key) is not None

    async def resolve(
        self, symbol: str, *, stats: CallStats | None = None, deadline: float | None = None
    ) -> ContractInfo:
        """Symbol to contract (ID, tick size, tick value).

        Cached here; with a shared store, looked up there first (and re-read every
        ``refresh_s``, so an override set from the command line reaches every worker)
        and searched at the broker only when nobody has it yet.
        """
        key = check_symbol(symbol)
        info = self._cache.get(key)
        now = time.monotonic()
        checked = self._checked.get(key, -math.inf)
        pinned_here = checked == math.inf
        if info is not None and info.tick_size is not None and now - checked < self._refresh_s:
            return info
        if self._store is not None and not pinned_here:
            info = await self._store.load(key)
        if info is None or info.tick_size is None:
            if info is not None:
                # Pinned without a tick size: fetch it once.
                contract = await self.by_id(info.contract_id, stats=stats, deadline=deadline)
            else:
                found = await self.search(key, stats=stats, deadline=deadline)
                contract = pick_contract(key, found)
            pinned = info is not None and info.pinned
            info = ContractInfo(key, contract.id, contract.tick_size, contract.tick_value, pinned)
            if self._store is not None and not pinned:
                await self._store.save(info)
        self._cache[key] = info
        if not pinned_here:
            self._checked[key] = now
        return info

    async def search(
        self,
        text: str,
        *,
        live: bool = False,
        stats: CallStats | None = None,
        deadline: float | None = None,
    ) -> list[Contract]:
        """POST /api/Contract/search (§4.1): a substring search, at most 20 answers."""
        answer = await self._transport.call(
            "/api/Contract/search",
            SearchContractRequest(search_text=text, live=live),
            SearchContractResponse,
            idempotent=True,
            stats=stats,
            deadline=deadline,
        )
        return answer.contracts or []

    async def by_id(
        self, contract_id: str, *, stats: CallStats | None = None, deadline: float | None = None
    ) -> Contract:
        """POST /api/Contract/searchById (§4.2)."""
        answer = await self._transport.call(
            "/api/Contract/searchById",
            SearchContractByIdRequest(contract_id=contract_id),
            SearchContractByIdResponse,
            idempotent=True,
            stats=stats,
            deadline=deadline,
        )
        if answer.contract is None:
            raise BrokerProtocolError(
                "searchById answered success without a contract",
                endpoint="/api/Contract/searchById",
                sent=True,
            )
        return answer.contract


def pick_contract(symbol: str, contracts: list[Contract]) -> Contract:
    """The front month of ``symbol`` among search results (the active one; the gateway
    lists it first when several match)."""
    pattern = re.compile(_CONTRACT_NAME.format(symbol=re.escape(symbol)))
    matches = [c for c in contracts if pattern.match(c.name)]
    if not matches:
        raise InvalidOrder(f"no contract found for symbol {symbol!r}", code="unknown_symbol")
    return next((c for c in matches if c.active_contract), matches[0])
