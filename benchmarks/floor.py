"""Scenario 1, the floor: the least any Redis-stream queue in Python can cost per request.

Two processes, shaped like ours: a requester XADDs a request and waits on its own reply
stream with XREAD BLOCK; a responder reads the request stream with XREADGROUP BLOCK and
answers with XADD reply + XACK in one round trip (a pipeline, as our finish step is one
Lua call). Nothing else: no decoding, no broker, no bookkeeping. Same Redis, same client
(redis.asyncio with hiredis), same event loop (uvloop) as the product.

    python -m benchmarks.floor responder --redis-url URL
    python -m benchmarks.floor requester --redis-url URL --samples N --warmup W
    python -m benchmarks.floor requester --redis-url URL --concurrency C --duration S

The requester's result, ``{"samples": [ms, ...], "sent": n, "answered": n}``, goes to
``--result FILE`` or stdout.
With ``--concurrency`` it measures the floor's throughput instead: ``C`` requests in
flight, each tagged with an ID the responder echoes, replies matched by one reader; it
takes the throughput load generators' protocol (warm up, ``{"ready": true}``, wait for
``go <epoch>``, run ``--duration`` seconds) and reports ``in_window`` completions.
The responder prints ``{"ready": true}`` once its group exists, then serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Sequence
from typing import Any, Final

from redis.asyncio import Redis

from benchmarks.procs import deliver, emit, loadgen_parser, redis_option, run, wait_for_go
from producer.contract import PlaceOrder, encode_intent
from producer.intents import new_request_id

REQUESTS: Final = "bench:floor:requests"
GROUP: Final = "bench:floor"
_BLOCK_MS: Final = 2000
_READER_BLOCK_MS: Final = 100
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
                answer: dict[Any, Any] = {b"r": fields[b"d"]}
                if b"i" in fields:  # a throughput request: echo its ID
                    answer[b"i"] = fields[b"i"]
                pipe.xadd(fields[b"reply_to"], answer)
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


async def blast(url: str, concurrency: int, duration: float) -> dict[str, Any]:
    """``concurrency`` requests in flight for ``duration`` seconds from the go signal."""
    redis = _connect(url)
    reply_to = f"bench:floor:reply:{new_request_id()}"
    fields = _payload(reply_to)
    loop = asyncio.get_running_loop()
    waiting: dict[bytes, asyncio.Future[None]] = {}
    ids = itertools.count()

    finished = asyncio.Event()

    async def read_replies() -> None:
        last: bytes | str = "0-0"
        # Ends on the event, not by a cancel: redis-py can absorb a cancel (see
        # producer.aio.cancel_and_wait), and the requester would never exit.
        while not finished.is_set():
            reply = await redis.xread({reply_to: last}, count=1000, block=_READER_BLOCK_MS)
            for _stream, entries in reply or ():
                for entry_id, answer in entries:
                    last = entry_id
                    future = waiting.pop(answer[b"i"], None)
                    if future is not None and not future.done():
                        future.set_result(None)

    async def one() -> bool:
        key = str(next(ids)).encode()
        future = waiting[key] = loop.create_future()
        tagged: dict[Any, Any] = {**fields, b"i": key}
        await redis.xadd(REQUESTS, tagged)
        try:
            await asyncio.wait_for(future, _ANSWER_TIMEOUT_S)
        except TimeoutError:
            waiting.pop(key, None)
            return False
        return True

    reader = asyncio.create_task(read_replies())
    warm = await asyncio.gather(*(one() for _ in range(concurrency)))
    emit({"ready": True})
    start_at = await wait_for_go()
    end = start_at + duration
    sent, answered, in_window = len(warm), sum(warm), 0

    async def lane() -> None:
        nonlocal sent, answered, in_window
        while time.time() < end:
            sent += 1
            if await one():
                answered += 1
                in_window += time.time() <= end

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    finished.set()
    await reader
    await redis.delete(reply_to)
    await redis.aclose()
    return {"sent": sent, "answered": answered, "in_window": in_window}


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.floor``."""
    parser = loadgen_parser("benchmarks.floor", __doc__)
    parser.add_argument("role", choices=("responder", "requester"))
    redis_option(parser)
    parser.add_argument("--samples", type=int, default=1000, help="measured round trips")
    parser.add_argument("--warmup", type=int, default=200, help="round trips not measured")
    parser.add_argument(
        "--concurrency", type=int, help="requester: measure throughput with C in flight"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="throughput: seconds")
    args = parser.parse_args(argv)
    if args.role == "responder":
        run(respond(args.redis_url))
    elif args.concurrency:
        deliver(args.result, run(blast(args.redis_url, args.concurrency, args.duration)))
    else:
        deliver(args.result, run(request(args.redis_url, args.samples, args.warmup)))


if __name__ == "__main__":
    main()
