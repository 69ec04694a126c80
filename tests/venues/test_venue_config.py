"""Credentials from the environment, held as Secrets; what every venue config validates."""

from __future__ import annotations

import pickle

import pytest

from bastion.adapters.venue_config import Secret, VenueConfig, credentials_from_env
from bastion.engine.errors import AdapterError


def test_secret_when_printed_then_value_hidden() -> None:
    """repr, str and f-strings of a Secret never show the value."""
    secret = Secret("hunter2")
    assert "hunter2" not in f"{secret} {secret!r} {[secret]}"
    assert secret.reveal() == "hunter2"


def test_secret_when_pickled_then_refused() -> None:
    """A Secret does not travel in pickles (process pools, caches)."""
    with pytest.raises(TypeError):
        pickle.dumps(Secret("hunter2"))


def test_credentials_when_read_then_whitespace_stripped_and_hint_names_vars() -> None:
    """Values are stripped; the hint names the variables, never the values."""
    credentials = credentials_from_env({"K": " k3y-value\n", "S": "s3cret-value "}, "v", "K", "S")
    assert credentials.values() == ("k3y-value", "s3cret-value")
    assert credentials.hint == "check K and S"
    assert "k3y-value" not in repr(credentials) and "s3cret-value" not in repr(credentials)


@pytest.mark.parametrize("account_type", ["gen", "rev", "com"])
def test_config_when_known_account_type_then_accepted(account_type: str) -> None:
    """gen, rev and com are the account types policies scope on."""
    assert VenueConfig(account_type=account_type).account_type == account_type


@pytest.mark.parametrize(("field", "value"), [("account_type", "retail"), ("timeout_s", 0.0)])
def test_config_when_invalid_then_value_error_naming_field(field: str, value: object) -> None:
    """An unknown account type or a non-positive timeout is refused when configured."""
    with pytest.raises(ValueError, match=field):
        VenueConfig(**{field: value})  # type: ignore[arg-type]


def test_credentials_when_environment_empty_then_both_variables_named() -> None:
    """With nothing set, the error names both variables in one message."""
    with pytest.raises(AdapterError, match="K and S are not set"):
        credentials_from_env({}, "venue", "K", "S")
