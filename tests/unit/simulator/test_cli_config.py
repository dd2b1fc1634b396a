"""The venue's flags of `order-sim` become the SimConfig and fault settings they name."""

from decimal import Decimal

from simulator.__main__ import build_parser, config_from_args
from simulator.config import SimConfig
from simulator.orders import StopThroughMarket


def config(*argv: str) -> SimConfig:
    parser = build_parser()
    return config_from_args(parser, parser.parse_args(argv))


def test_the_venue_defaults_to_a_still_market_without_limits() -> None:
    defaults = config()
    assert defaults == SimConfig(faults=defaults.faults, seed=None)
    assert defaults.faults.max_fill_size is None


def test_venue_flags() -> None:
    chosen = config(
        "--spread-ticks", "2",
        "--random-walk-ms", "250",
        "--stop-through-market", "trigger",
        "--fee-per-contract", "1.25",
        "--daily-loss-limit", "1000",
        "--max-fill-size", "3",
    )  # fmt: skip
    assert (chosen.spread_ticks, chosen.random_walk_ms) == (2, 250.0)
    assert chosen.stop_through_market is StopThroughMarket.TRIGGER
    assert (chosen.fee_per_contract, chosen.daily_loss_limit) == (Decimal("1.25"), Decimal(1000))
    assert chosen.faults.max_fill_size == 3
