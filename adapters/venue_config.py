"""What every venue adapter is configured with: credentials, account labels, timeouts, retries.

Credentials come only from environment variables, read once by ``from_env(environ)``
(a mapping, so tests inject one). They are held as :class:`Secret`, whose ``repr`` and
``str`` never show the value, so an adapter, its config or an error message can be logged
without leaking a key. A missing variable is a fatal :class:`AdapterError` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bastion.adapters.retry import RetryPolicy
from bastion.engine.errors import AdapterError

ACCOUNT_TYPES = ("gen", "rev", "com")


class Secret:
    """A credential string that does not show itself: ``reveal()`` is the only way in."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Secret is not pickled: read it from the environment again")


@dataclass(frozen=True, slots=True)
class Credentials:
    key: Secret
    secret: Secret
    key_var: str  # the environment variables they came from, for error messages
    secret_var: str

    @property
    def hint(self) -> str:
        """How to fix a rejected key, naming the variables (never their values)."""
        return f"check {self.key_var} and {self.secret_var}"

    def values(self) -> tuple[str, str]:
        """The raw values, to scrub them out of anything a venue echoes back."""
        return self.key.reveal(), self.secret.reveal()


def credentials_from_env(
    environ: Mapping[str, str], venue: str, key_var: str, secret_var: str
) -> Credentials:
    """Read a key pair; a missing or blank variable is a fatal error naming it."""
    missing = [name for name in (key_var, secret_var) if not environ.get(name, "").strip()]
    if missing:
        names = " and ".join(missing)
        verb = "is" if len(missing) == 1 else "are"
        raise AdapterError(
            f"{venue}: environment variable {names} {verb} not set; export {key_var} and "
            f"{secret_var} with the venue's API key pair (see README, 'Venue adapters')"
        )
    return Credentials(
        key=Secret(environ[key_var].strip()),
        secret=Secret(environ[secret_var].strip()),
        key_var=key_var,
        secret_var=secret_var,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueConfig:
    """What Bastion knows about an account that the venue does not."""

    account_type: str = "gen"  # gen | rev | com
    strategy_id: str = "unassigned"  # given to every position and fill the venue reports
    account_id: str | None = None  # None: the venue's own account id
    timeout_s: float = 10.0  # per HTTP request
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # How much further back than the trade lookback the first fill fetch reaches, so that
    # positions closed inside the lookback have their opening fills (adapters.trade_ledger).
    trade_history_horizon_s: float = 30 * 86_400

    def __post_init__(self) -> None:
        if self.account_type not in ACCOUNT_TYPES:
            raise ValueError(
                f"account_type must be one of {', '.join(ACCOUNT_TYPES)}, got {self.account_type!r}"
            )
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.trade_history_horizon_s < 0:
            raise ValueError(
                f"trade_history_horizon_s must be ≥ 0, got {self.trade_history_horizon_s}"
            )
