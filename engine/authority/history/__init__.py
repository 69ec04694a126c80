"""Protections over the closed-trade history (ProtectionPolicy `history:`).

- `lock`: the lock a protection makes (state: `State.locks`);
- `stoploss_guard`, `cooldown`, `low_profit`, `max_drawdown`: one method per module,
  `fire(entry, trades) -> Fired | None` (`base`);
- `evolve`: the locks after one evaluation cycle (expire, fire, never re-lock the same
  trades) and a decision for each new lock;
- `gate`: which locks deny an order (opens and increases), and the wording;
- `release`: an operator's release.

Pure: frozen inputs, `now` passed in.
"""
