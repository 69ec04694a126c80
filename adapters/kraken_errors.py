"""Kraken's ``{"error": [...], "result": ...}`` envelope, turned into typed errors.

Kraken answers HTTP 200 with a non-empty ``error`` array when a call fails (krakenex
raises nothing). Each entry reads ``<severity><category>:<message>[:<extra>]``; severity
``E`` is an error, ``W`` a warning (the call still succeeded: warnings are logged, never
raised). The first error decides (docs.kraken.com, "Error messages"):

===============================================  ===========================================
error                                            raised
===============================================  ===========================================
EAPI:Invalid key, EAPI:Invalid signature,        AdapterError (fatal): check KRAKEN_API_KEY /
EGeneral:Permission denied, EAPI:Invalid nonce   KRAKEN_API_SECRET and the key's permissions
EGeneral:Temporary lockout                       TransientAdapterError, retry after 900 s
EAPI:Rate limit exceeded, EOrder:Rate limit ...  TransientAdapterError
EService:* , EGeneral:Internal error,            TransientAdapterError
EDatabase:Internal error
EQuery:Unknown asset pair / Unknown asset        UnknownSymbolError (fatal for that pair)
EGeneral:Invalid arguments, anything else        AdapterError (fatal): Kraken's own words
===============================================  ===========================================

An envelope that cannot be read — not an object, ``error`` not an array of strings, no
``result`` on success — is a DataError.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from bastion.adapters.payload import as_list, as_mapping
from bastion.adapters.venue import UnknownSymbolError
from bastion.engine.errors import AdapterError, DataError, TransientAdapterError

LOCKOUT_S = 900.0  # "temporary lockouts typically last approximately 15 minutes"

_KEY_REFUSED = frozenset(
    {"EAPI:Invalid key", "EAPI:Invalid signature", "EGeneral:Permission denied"}
)
_TRANSIENT = frozenset(
    {
        "EAPI:Rate limit exceeded",
        "EOrder:Rate limit exceeded",
        "EGeneral:Internal error",
        "EDatabase:Internal error",
    }
)
_UNKNOWN_SYMBOL = frozenset({"EQuery:Unknown asset pair", "EQuery:Unknown asset"})

log = structlog.get_logger(__name__)


def error_for(
    where: str, entry: str, credential_hint: str, symbol: str | None = None
) -> AdapterError:
    """The typed error for one ``E...`` entry of Kraken's error array.

    ``where`` names the request (method and pair): Kraken's own words do not say which
    pair it does not know."""
    code = ":".join(entry.split(":")[:2])  # drop the optional ":<extra info>"
    if code in _KEY_REFUSED:
        return AdapterError(
            f"{where}: Kraken refused the key ({entry}). This is fatal: {credential_hint} and "
            "that the key may query funds and trades, then restart"
        )
    if code == "EAPI:Invalid nonce":
        return AdapterError(
            f"{where}: Kraken refused the nonce ({entry}). This is fatal: another program uses "
            "this key with higher nonces, or the clock went back; give Bastion its own key"
        )
    if code == "EGeneral:Temporary lockout":
        return TransientAdapterError(
            f"{where}: Kraken locked this key out for a while ({entry})", retry_after_s=LOCKOUT_S
        )
    if code in _TRANSIENT or code.startswith("EService:"):
        return TransientAdapterError(f"{where}: {entry}")
    if code in _UNKNOWN_SYMBOL:
        return UnknownSymbolError(
            f"{where}: {entry}: Kraken does not list {symbol or 'the pair asked for'}; check "
            "the symbol (Kraken's pair name, e.g. XBTUSD) in the kraken feed config",
            venue="kraken",
            symbol=symbol or "",
        )
    return AdapterError(f"{where}: Kraken rejected the request: {entry}")


def unwrap(where: str, body: object, credential_hint: str, symbol: str | None = None) -> object:
    """``body["result"]``, or the typed error for the first entry of ``body["error"]``."""
    envelope: Mapping[str, object] = as_mapping(body, where, "the answer")
    entries = as_list(envelope.get("error", []), where, "field 'error'")
    if not all(isinstance(entry, str) for entry in entries):
        raise DataError(f"{where}: field 'error' must hold strings, got {entries!r:.80}")
    errors = [entry for entry in entries if isinstance(entry, str) and entry.startswith("E")]
    warnings = [entry for entry in entries if isinstance(entry, str) and entry.startswith("W")]
    if warnings:
        log.warning("venue_warned", venue="kraken", where=where, warnings=warnings)
    if errors:
        raise error_for(where, errors[0], credential_hint, symbol)
    if envelope.get("result") is None:
        raise DataError(f"{where}: field 'result' is missing")
    return envelope["result"]
