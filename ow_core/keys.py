"""Redis key names, shared by producers and workers so both sides agree on them.

Everything lives under one prefix (``ow`` by default), so several independent deployments
can share a Redis database and ``redis-cli --scan --pattern 'ow:*'`` shows all of ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

DEFAULT_PREFIX = "ow"
_CLIENT_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
CLIENT_NAME: Final = re.compile(r"[A-Za-z0-9_]{1,40}")
"""A client's name (``OrderClient(name=...)``), which starts its ID: ``<name>-<random>``.
No ``-`` in it, so the pattern of one name's reply streams never covers another's."""
ORDER_QUEUE_TTL_S = 24 * 3600
"""How long an order's follow-up queue is kept after its last follow-up was submitted."""


@dataclass(frozen=True, slots=True)
class Keys:
    """The key names under one prefix."""

    prefix: str = DEFAULT_PREFIX

    @property
    def intents(self) -> str:
        """The intents stream every producer XADDs to."""
        return f"{self.prefix}:intents"

    @property
    def group(self) -> str:
        """The workers' consumer group on the intents stream."""
        return f"{self.prefix}:workers"

    @property
    def dead_letters(self) -> str:
        """Entries that could not be executed, with their error and history."""
        return f"{self.prefix}:dead"

    @property
    def handed_back(self) -> str:
        """Entries a worker that stopped cleanly left for the others to take at once."""
        return f"{self.prefix}:handback"

    def reply(self, client_id: str) -> str:
        """One producer's reply stream."""
        return f"{self.prefix}:reply:{client_id}"

    def is_reply(self, name: str) -> bool:
        """Whether a name has the shape of one of our reply streams, ``<prefix>:reply:<id>``
        with an ID of 1 to 64 letters, digits, ``_`` or ``-`` (workers write nowhere else)."""
        head = f"{self.prefix}:reply:"
        return name.startswith(head) and _CLIENT_ID.fullmatch(name[len(head) :]) is not None

    def result(self, request_id: str) -> str:
        """The stored final result of a request (with a TTL)."""
        return f"{self.prefix}:result:{request_id}"

    def lease(self, request_id: str) -> str:
        """Held by the worker executing a request, so no second worker sends it."""
        return f"{self.prefix}:lease:{request_id}"

    def claims(self, request_id: str) -> str:
        """A request's history: each worker claim and recorded error, oldest first."""
        return f"{self.prefix}:claims:{request_id}"

    def worker(self, name: str) -> str:
        """A live worker's heartbeat (expires when the worker stops renewing it)."""
        return f"{self.prefix}:worker:{name}"

    def budget(self, login: str, kind: str = "orders") -> str:
        """A login's sends in the rate budget's sliding window (a sorted set): ``orders``
        for every endpoint but ``history`` (retrieveBars, limited on its own)."""
        return f"{self.prefix}:budget:{kind}:{login}"

    def budget_pause(self, login: str, kind: str = "orders") -> str:
        """Set after a 429: the whole fleet holds back that window until it expires."""
        return f"{self.prefix}:budget:pause:{kind}:{login}"

    @property
    def token(self) -> str:
        """The fleet's shared broker session token."""
        return f"{self.prefix}:token"

    @property
    def login_refused(self) -> str:
        """Set while the broker refuses the fleet's login: nobody asks again before it expires."""
        return f"{self.prefix}:token:refused"

    @property
    def token_lock(self) -> str:
        """Held by the one worker logging in or renewing the token."""
        return f"{self.prefix}:token:lock"

    def contract(self, symbol: str) -> str:
        """A symbol's contract (ID, tick size and value), shared by the fleet."""
        return f"{self.prefix}:contract:{symbol}"

    def halt(self, account_id: int | None = None) -> str:
        """The kill switch: for every account, or for one."""
        return f"{self.prefix}:halt" if account_id is None else f"{self.prefix}:halt:{account_id}"

    def orders_per_minute(self, account_id: int, minute: int) -> str:
        """New orders an account sent in one minute (for the risk check)."""
        return f"{self.prefix}:risk:orders:{account_id}:{minute}"

    def exposure(self, account_id: int, contract_id: str) -> str:
        """Contracts of new orders in flight on an account and contract (for the risk check)."""
        return f"{self.prefix}:risk:inflight:{account_id}:{contract_id}"

    # --- per account: the mirror and its events (one hash tag per account, so they share a
    # Redis Cluster slot) ---------------------------------------------------------------

    def _account(self, account_id: int, what: str) -> str:
        return f"{self.prefix}:acct:{{{account_id}}}:{what}"

    def mirror_orders(self, account_id: int) -> str:
        """Today's orders of an account (order ID -> its latest ``OrderUpdate``)."""
        return self._account(account_id, "orders")

    def mirror_open(self, account_id: int) -> str:
        """An account's working orders only (order ID -> ``OrderUpdate``), for the risk
        check and ``open_orders()`` to read without today's whole list."""
        return self._account(account_id, "open")

    def mirror_unseen(self, account_id: int) -> str:
        """New orders the broker accepted that the mirror has not seen yet (order ID ->
        ``<contract>|<signed size>|<epoch ms>``): the risk check counts them meanwhile."""
        return self._account(account_id, "unseen")

    def mirror_positions(self, account_id: int) -> str:
        """An account's open positions (contract ID -> ``PositionUpdate``)."""
        return self._account(account_id, "positions")

    def mirror_trades(self, account_id: int) -> str:
        """An account's recent trades (trade ID -> ``TradeUpdate``)."""
        return self._account(account_id, "trades")

    def mirror_account(self, account_id: int) -> str:
        """The account itself (one field, ``account``: its ``AccountUpdate``)."""
        return self._account(account_id, "account")

    def mirror_meta(self, account_id: int) -> str:
        """What the mirror has seen of each thing: ``<at>|<identity>`` (for dedup)."""
        return self._account(account_id, "meta")

    def mirror_synced(self, account_id: int) -> str:
        """Set while the mirror is kept live by a leader (epoch ms of its last proof)."""
        return self._account(account_id, "synced")

    def events(self, account_id: int) -> str:
        """Every change of an account, in order (a stream of ``producer.events``)."""
        return self._account(account_id, "events")

    def leader(self, role: str) -> str:
        """The lease of the one worker holding a hub connection for the login."""
        return f"{self.prefix}:leader:{role}"

    def close_plan(self, request_id: str) -> str:
        """A close's plan, fixed by its first run: the position it started from and the size
        it closes down to (so a retry or another worker never closes twice)."""
        return f"{self.prefix}:close:{request_id}"

    def order_queue(self, account_id: int, order_id: int) -> str:
        """Follow-up intents (modify, cancel) of one order, in submission order."""
        return f"{self.prefix}:orderq:{account_id}:{order_id}"

    # --- patterns, for Redis ACL rules (worker/ops/acl.py) --------------------------------

    def order_queues(self, account_id: int) -> str:
        """Every order queue of one account, as a glob."""
        return self.order_queue(account_id, 0).removesuffix("0") + "*"

    def account_keys(self, account_id: int) -> str:
        """Every mirror and events key of one account, as a glob."""
        return self._account(account_id, "*")

    def replies_of(self, name: str) -> str:
        """Every reply stream of the clients named ``name`` (``OrderClient(name=...)``)."""
        return self.reply(f"{name}-*")

    # --- market data (worker/market, producer/feed.py): one hash tag per contract, so a
    # contract's streams share a Redis Cluster slot -------------------------------------

    @property
    def market_demand(self) -> str:
        """The feed's subscription registry: a sorted set of ``<feed>|<symbol>|<timeframe>``
        members (timeframe empty for quotes and trades), scored by when each expires
        unless its strategy renews it."""
        return f"{self.prefix}:md:demand"

    def market_contract(self, symbol: str) -> str:
        """The contract the feed serves a symbol from (a ``FeedContract``), or why none."""
        return f"{self.prefix}:md:contract:{symbol}"

    def _market(self, contract_id: str, what: str) -> str:
        return f"{self.prefix}:md:{{{contract_id}}}:{what}"

    def quotes(self, contract_id: str) -> str:
        """A contract's quotes (a stream of ``Quote``, trimmed by length)."""
        return self._market(contract_id, "quotes")

    def trades(self, contract_id: str) -> str:
        """A contract's trades in the market (a stream of ``Tick``, trimmed by length)."""
        return self._market(contract_id, "trades")

    def bars(self, contract_id: str, timeframe: str) -> str:
        """A contract's bars of one timeframe, updates in progress and final ones (a stream
        of ``Bar``, trimmed by length)."""
        return self._market(contract_id, f"bars:{timeframe}")

    @property
    def history_requests(self) -> str:
        """Strategies' requests for bar history (a stream every listener reads in a group)."""
        return f"{self.prefix}:md:history"

    @property
    def history_group(self) -> str:
        """The listeners' consumer group on ``history_requests``."""
        return f"{self.prefix}:md:historians"

    def history_answer(self, request_id: str) -> str:
        """The answer to one history request (a list the strategy pops, with a TTL)."""
        return f"{self.prefix}:md:history:{request_id}"
