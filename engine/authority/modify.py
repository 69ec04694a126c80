"""A modify: a change to an open order's size or price, checked like the order it changes.

A request with action `modify` names the order (`modified_order_id`) and the size it now
goes to (`target_size`); `current_size` is the size it went to before the change
(default: the snapshot's position plus the orders approved since it — the order being
changed among them when Bastion approved it). So:

- a modify that raises the order's size adds `target_size - current_size` units: the
  exposure limits run on those units, as for an increase (`OrderRequest.increasing`);
- one that lowers it, or changes only the price, adds nothing: the exposure limits pass
  (and, as for a decrease, the pending exposure of the order it changes is not released
  until a snapshot shows what happened: the safe side);
- every modify counts against the LimitPolicy's `orders.modify_rate`, not the submit rate
  (Nautilus: max_order_modify_rate), and the trading state must allow `modify` (one that
  adds units, `increase` too: REDUCING denies it, HALTED denies every modify).

Modifications are remembered in `AuthorityState.submits` under `modify_key(account)`
("modify:" + the account id), so the state file and its readers need no new section.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime, timedelta

from bastion.engine.authority.book import ZERO, AccountBook
from bastion.engine.authority.request import OrderRequest, resized
from bastion.engine.state import AuthorityState

MODIFY = "modify"
_PREFIX = "modify:"


def modify_key(account_id: str) -> str:
    """Where an account's modification times are kept in `AuthorityState.submits`."""
    return _PREFIX + account_id


def is_modify_key(key: str) -> bool:
    return key.startswith(_PREFIX)


def with_current(request: OrderRequest, book: AccountBook) -> OrderRequest:
    """The modify with its `current_size` as the check counts it, so that `increasing`
    knows whether it adds units: the book the check reads (the snapshot plus the pending
    orders, the order being changed among them when Bastion approved it). A larger
    current_size names units Bastion does not hold in memory (the order was not approved
    or reported here, or a snapshot already dropped it): the modify is measured from the
    book, as if its whole size were new — the safe side."""
    held = book.symbols.get(request.symbol)
    if held is None:
        counted = ZERO
    else:
        counted = held.short_units if request.side == "short" else held.long_units
    asked = request.current_size
    if asked is not None and asked <= counted:
        return request
    return resized(
        request, action=request.action, current_size=counted, target_size=request.target_size
    )


def modifies(
    memory: AuthorityState, account_id: str, now: datetime, window: timedelta | None
) -> int:
    """Modifications remembered for the account within the window (None: no LimitPolicy)."""
    if window is None:
        return 0
    times = memory.submits.get(modify_key(account_id), ())
    if not times:
        return 0
    return len(times) - bisect_right(times, now - window)
