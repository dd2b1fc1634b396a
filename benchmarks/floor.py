"""Scenario 1, the floor: the least any Redis-stream queue in Python can cost per request.

Two processes, shaped like ours: a requester XADDs a request and waits on its own reply
stream with XREAD BLOCK; a responder reads the request stream with XREADGROUP BLOCK and
answers with XADD reply + XACK in one round trip (a pipeline, as our finish step is one
Lua call). Nothing else: no decoding, no broker, no bookkeeping. Same Redis, same client
(redis.asyncio with hiredis), same event loop (uvloop) as the product.

    python -m benchmarks.floor responder --redis-url URL
    python -m benchmarks.floor requester --redis-url URL --samples N --warmup W

The requester's result, ``{"samples": [ms, ...], "sent": n, "answered": n}``, goes to
``--result FILE`` or stdout.
The responder prints ``{"ready": true}`` once its group exists, then serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Sequence
from typing import Any, Final

from redis.asyncio import Redis

from benchmarks.procs import deliver, emit, loadgen_parser, redis_option, run
from producer.contract import PlaceOrder, encode_intent
from producer.intents import new_request_id

REQUESTS: Final = "bench:floor:requests"
GROUP: Final = "bench:floor"
_BLOCK_MS: Final = 2000
# The reply timeout of one round trip; a floor request that takes this long is lost.
_ANSWER_TIMEOUT_S: Final = 5.0


def _payload(reply_to: str) -> dict[bytes, bytes]:
    """A real intent's stream fields, so the bytes on the wire match ours."""
    now = int(time.time() * 1000)
    intent = PlaceOrder(
        request_id=new_request_id(),
        reply_to=reply_to,
        account_id=12345678,
        created_at=now,
        deadline=now + 10_000,
        symbol="MNQ",
        side="BUY",
        quantity=1,
        stop_loss_ticks=50,
        take_profit_ticks=100,
    )
    return {**encode_intent(intent), b"reply_to": reply_to.encode()}


def _connect(url: str) -> Redis:
    # A blocking read must never hit the socket timeout.
    client: Redis = Redis.from_url(url, socket_timeout=_BLOCK_MS / 1000 + 5)
    return client


async def respond(url: str) -> None:
    """Answer every request until SIGTERM: XREADGROUP BLOCK, then XADD reply + XACK."""
    redis = _connect(url)
    try:
        await redis.xgroup_create(REQUESTS, GROUP, id="$", mkstream=True)
    except Exception as error:
        if "BUSYGROUP" not in str(error):
            raise
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    emit({"ready": True})
    streams: dict[Any, Any] = {REQUESTS: ">"}
    while not stop.is_set():
        reply = await redis.xreadgroup(GROUP, "responder", streams, count=100, block=200)
        for _stream, entries in reply or ():
            pipe = redis.pipeline(transaction=False)
            for entry_id, fields in entries:
                pipe.xadd(fields[b"reply_to"], {b"r": fields[b"d"]})
                pipe.xack(REQUESTS, GROUP, entry_id)
            await pipe.execute()
    await redis.aclose()


async def request(url: str, samples: int, warmup: int) -> dict[str, Any]:
    """Send requests one at a time; each sample is XADD until its reply is read."""
    redis = _connect(url)
    reply_to = f"bench:floor:reply:{new_request_id()}"
    fields = _payload(reply_to)
    last: bytes | str = "0-0"
    timings: list[float] = []
    sent = answered = 0
    for index in range(warmup + samples):
        started = time.perf_counter()
        await redis.xadd(REQUESTS, fields)  # type: ignore[arg-type]
        sent += 1
        reply = await redis.xread({reply_to: last}, count=1, block=int(_ANSWER_TIMEOUT_S * 1000))
        elapsed = (time.perf_counter() - started) * 1000
        if not reply:
            continue
        answered += 1
        last = reply[0][1][-1][0]
        if index >= warmup:
            timings.append(elapsed)
    await redis.delete(reply_to)
    await redis.aclose()
    return {"samples": timings, "sent": sent, "answered": answered}


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.floor``."""
    parser = loadgen_parser("benchmarks.floor", __doc__)
    parser.add_argument("role", choices=("responder", "requester"))
    redis_option(parser)
    parser.add_argument("--samples", type=int, default=1000, help="measured round trips")
    parser.add_argument("--warmup", type=int, default=200, help="round trips not measured")
    args = parser.parse_args(argv)
    if args.role == "responder":
        run(respond(args.redis_url))
    else:
        deliver(args.result, run(request(args.redis_url, args.samples, args.warmup)))


if __name__ == "__main__":
    main()
