"""The example snapshots show what their names promise, with realistic numbers."""

from __future__ import annotations

from decimal import Decimal

from bastion.engine.indicators.greeks import bsm_greeks
from bastion.engine.snapshot import Snapshot, load_snapshot
from tests.snapshot.conftest import EXAMPLES


def _load(name: str) -> Snapshot:
    return load_snapshot(EXAMPLES / f"{name}.json")


def test_examples_when_loaded_then_each_has_accounts_of_every_type() -> None:
    """Every example holds a gen, a rev and a com account."""
    for name in ("calm", "atr-breach", "crash-day", "option-near-roll"):
        assert {account.type for account in _load(name).accounts} == {"gen", "rev", "com"}


def test_atr_breach_when_loaded_then_long_equity_about_2_3_atr_below_entry() -> None:
    """SPY-123 is long and 2.31 ATR (ATR 4.12) below its entry price."""
    snapshot = _load("atr-breach")
    position = next(p for p in snapshot.positions if p.id == "SPY-123")
    assert (position.side, position.asset_class) == ("long", "equity")
    atr = snapshot.market[position.symbol].atr_usd
    breach = (position.entry_price_usd - position.price_usd) / atr
    assert atr == Decimal("4.12")
    assert round(breach, 2) == Decimal("2.31")


def test_crash_day_when_loaded_then_portfolio_down_over_5_pct_vol_3x_errors_high() -> None:
    """Portfolio down more than 5 % on the day, volatility ≥ 3× normal, error rate high."""
    snapshot = _load("crash-day")
    start = sum(account.day_start_equity_usd for account in snapshot.accounts)
    now = sum(account.equity_usd for account in snapshot.accounts)
    assert (start - now) / start * 100 > 5
    assert all(
        m.volatility >= Decimal("2.8") * m.normal_volatility for m in snapshot.market.values()
    )
    assert snapshot.system.error_rate_pct >= 10
    assert snapshot.regime.severity == "critical"


def test_option_near_roll_when_delta_computed_then_short_put_near_0_55() -> None:
    """The short put's |delta| from strike, expiry and implied volatility is about 0.55."""
    snapshot = _load("option-near-roll")
    position = next(p for p in snapshot.positions if p.asset_class == "option")
    leg = position.option
    assert leg is not None
    assert (position.side, leg.option_type, leg.delta) == ("short", "put", None)
    years = (leg.expires_at - snapshot.as_of).total_seconds() / (365 * 86400)
    greeks = bsm_greeks(
        "put",
        spot=leg.underlying_price_usd,
        strike=leg.strike_usd,
        time_years=years,
        rate=leg.risk_free_rate,
        volatility=leg.implied_volatility,
        dividend_yield=leg.dividend_yield,
    )
    assert abs(abs(greeks.delta) - 0.55) < 0.01
    assert abs(Decimal(str(greeks.price)) - position.price_usd) < Decimal("0.05")


def test_examples_when_accounts_read_then_equity_is_cash_plus_positions() -> None:
    """Realistic bookkeeping: equity = cash + signed position value (× multiplier)."""
    for name in ("calm", "atr-breach", "crash-day", "option-near-roll"):
        snapshot = _load(name)
        for account in snapshot.accounts:
            value = sum(
                (1 if p.side == "long" else -1)
                * p.quantity
                * p.price_usd
                * (p.option.multiplier if p.option else 1)
                for p in snapshot.positions
                if p.account_id == account.id
            )
            assert account.cash_usd + value == account.equity_usd, (name, account.id)
