"""The venue's records as the gateway's JSON: one converter per model, shared by the REST
answers (gateway.py) and the real-time payloads (book.py)."""

from simulator.accounts import Account, Position, Trade
from simulator.contracts import Contract
from simulator.orders import Order
from simulator.wire import (
    AccountModel,
    ContractModel,
    OrderModel,
    PositionModel,
    TradeModel,
    money,
    price,
    timestamp,
)


def order_model(order: Order) -> OrderModel:
    """An order as Order/search, /_sim/orders and GatewayUserOrder report it."""
    return OrderModel(
        id=order.id,
        account_id=order.account_id,
        contract_id=order.contract_id,
        symbol_id=order.symbol_id,
        creation_timestamp=timestamp(order.creation_timestamp),
        update_timestamp=timestamp(order.update_timestamp),
        status=order.status,
        type=order.type,
        side=order.side,
        size=order.size,
        limit_price=price(order.limit_price),
        stop_price=price(order.stop_price),
        fill_volume=order.fill_volume,
        filled_price=price(order.filled_price),
        custom_tag=order.custom_tag,
        parent_order_id=order.parent_order_id,
    )


def position_model(position: Position) -> PositionModel:
    """A position as Position/searchOpen and GatewayUserPosition report it: unsigned size."""
    return PositionModel(
        id=position.id,
        account_id=position.account_id,
        contract_id=position.contract_id,
        creation_timestamp=timestamp(position.creation_timestamp),
        type=position.type,
        size=abs(position.size),
        average_price=price(position.average_price),
    )


def trade_model(trade: Trade) -> TradeModel:
    """A half-turn trade as Trade/search and GatewayUserTrade report it."""
    pnl = trade.profit_and_loss
    return TradeModel(
        id=trade.id,
        account_id=trade.account_id,
        contract_id=trade.contract_id,
        creation_timestamp=timestamp(trade.creation_timestamp),
        price=price(trade.price),
        profit_and_loss=None if pnl is None else price(pnl),
        fees=money(trade.fees),
        side=trade.side,
        size=trade.size,
        voided=trade.voided,
        order_id=trade.order_id,
    )


def account_model(account: Account) -> AccountModel:
    """An account as Account/search and GatewayUserAccount report it."""
    return AccountModel(
        id=account.id,
        name=account.name,
        balance=money(account.balance),
        can_trade=account.can_trade,
        is_visible=account.is_visible,
        simulated=account.simulated,
    )


def contract_model(contract: Contract) -> ContractModel:
    """A contract as Contract/search, searchById and available report it."""
    return ContractModel(
        id=contract.id,
        name=contract.name,
        description=contract.description,
        tick_size=contract.tick_size,
        tick_value=contract.tick_value,
        active_contract=contract.active_contract,
        symbol_id=contract.symbol_id,
    )
