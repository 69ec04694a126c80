"""Findings and the catalogue of their stable codes.

A code never changes meaning once released. Each has a title, a severity, an
explanation and the fix; `bastion lint --list-codes` prints them and
docs/lint-codes.md is generated from this table (a test keeps them in sync).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    title: str
    severity: Severity
    explanation: str
    fix: str


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    """One problem at one place. Sorts by file, line, column, code."""

    file: str
    line: int
    column: int
    code: str
    severity: Severity
    message: str
    path: str = ""  # JSON pointer into the document
    policy: str = ""  # metadata.name, when known

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "path": self.path,
            "policy": self.policy,
        }


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' — did you mean "x"?' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f' — did you mean "{close[0]}"?' if close else ""


def _c(code: str, title: str, severity: Severity, explanation: str, fix: str) -> Code:
    return Code(code, title, severity, explanation, fix)


CODES: dict[str, Code] = {
    c.code: c
    for c in (
        # --- reading the file -------------------------------------------------------
        _c(
            "BST001",
            "yaml-syntax",
            "error",
            "The file is not valid YAML.",
            "Fix the syntax at the reported place (indentation, a missing colon or quote).",
        ),
        _c(
            "BST002",
            "unsafe-tag",
            "error",
            "A tag such as `!!python/object` asks a YAML loader to build objects or run code. "
            "Bastion reads plain data only and never constructs tagged objects.",
            "Remove the tag; write the value as plain YAML.",
        ),
        _c(
            "BST003",
            "duplicate-key",
            "error",
            "The same key appears twice in one mapping; most YAML loaders silently keep the "
            "last one, so half of what you wrote would be ignored.",
            "Keep one of the two keys.",
        ),
        _c(
            "BST004",
            "alias-expansion",
            "error",
            "Anchors and aliases expand to too many values or nest too deeply (an alias bomb "
            "or a recursive alias).",
            "Write the values out, or use fewer aliases.",
        ),
        _c(
            "BST005",
            "file-too-large",
            "error",
            "The file is over the 1 MiB policy size limit.",
            "Split it into several policies.",
        ),
        _c("BST006", "encoding", "error", "The file is not UTF-8.", "Save it as UTF-8."),
        _c(
            "BST007",
            "not-a-policy",
            "error",
            "The document is empty or is not a mapping with apiVersion, kind, metadata, spec.",
            "Start from a shipped policy in policies/ or `bastion schema KIND`.",
        ),
        _c(
            "BST008",
            "non-finite-number",
            "error",
            "`.inf` or `.nan` cannot be compared meaningfully with market data.",
            "Use a finite number, or leave the field out to take its default.",
        ),
        _c(
            "BST009",
            "unreadable-file",
            "error",
            "The file cannot be opened.",
            "Check the path and its permissions.",
        ),
        _c(
            "BST017",
            "empty-file",
            "error",
            "The policy file is empty or holds only comments. A file truncated by a failed "
            "write, an editor or `: > file` would otherwise read as a set without that "
            "policy: every protection it held would be gone without a single finding.",
            "Restore the file's content (from version control), or delete the file if the "
            "policy is really meant to go; a reload then asks a risk officer to accept the "
            "removal.",
        ),
        # --- schema -----------------------------------------------------------------
        _c(
            "BST010",
            "missing-field",
            "error",
            "A required field is missing.",
            "Add the field; `bastion schema KIND` shows every field with its description.",
        ),
        _c(
            "BST011",
            "unknown-field",
            "error",
            "A field the schema does not know: usually a typo, which would otherwise be "
            "silently ignored.",
            "Correct the name (see the suggestion) or remove the field.",
        ),
        _c(
            "BST018",
            "removed-field",
            "error",
            "A field that older versions accepted and that has been removed, e.g. a breaker's "
            "window_s, which no evaluation ever read: a setting that does nothing misleads "
            "the officer who sets it.",
            "Delete the field; the message says what, if anything, replaces it.",
        ),
        _c(
            "BST012",
            "wrong-type",
            "error",
            "A value has the wrong type.",
            "Give the type the message names. In YAML 1.1, yes/no/on/off are booleans: quote "
            "them when you mean text.",
        ),
        _c(
            "BST013",
            "out-of-range",
            "error",
            "A number is outside the range its unit allows.",
            "Use a value within the range; _pct fields are 0-100, _ratio fields 0-1.",
        ),
        _c(
            "BST014",
            "unknown-value",
            "error",
            "A value is not one of the allowed words.",
            "Use one of the listed values (see the suggestion).",
        ),
        _c(
            "BST015",
            "schema",
            "error",
            "The document breaks another schema rule.",
            "Follow the message; the schema's description explains the field.",
        ),
        _c(
            "BST016",
            "unknown-kind",
            "error",
            "apiVersion is not bastion/v1, or kind is not one of the five policy kinds.",
            "Use apiVersion: bastion/v1 and kind: EscalationPolicy, RollPolicy, BreakerPolicy, "
            "ProtectionPolicy or LimitPolicy (or PolicySet for the set's bastion.yaml).",
        ),
        # --- escalation -----------------------------------------------------------------
        _c(
            "BST101",
            "escalation-thresholds-order",
            "error",
            "Escalation thresholds (breach_atr) must rise strictly from level to level, or a "
            "level could never be reached.",
            "Order the levels by breach_atr, lowest first.",
        ),
        _c(
            "BST102",
            "escalation-intervals-order",
            "error",
            "Monitoring intervals must shrink as the level rises: a riskier position is "
            "checked more often, never less.",
            "Give each level a shorter interval_s.",
        ),
        _c(
            "BST103",
            "escalation-first-level",
            "error",
            "The first level must start at breach_atr 0, or positions below it have no level.",
            "Set the first level's breach_atr to 0.",
        ),
        _c(
            "BST104",
            "escalation-level-names",
            "error",
            "Levels must be listed once each in the order normal, enhanced, recovery, "
            "preservation.",
            "Reorder or rename the levels.",
        ),
        _c(
            "BST105",
            "escalation-hysteresis",
            "warning",
            "hysteresis_atr is as large as the gap between two thresholds: a position could "
            "never step down from the upper level.",
            "Use a hysteresis below the smallest gap.",
        ),
        # --- roll -----------------------------------------------------------------------
        _c(
            "BST201",
            "roll-band-order",
            "error",
            "The target band must satisfy min_abs_delta < target_abs_delta < max_abs_delta.",
            "Reorder the three band values.",
        ),
        _c(
            "BST202",
            "roll-trigger-order",
            "error",
            "The normal roll trigger must be below the emergency trigger.",
            "Set normal_abs_delta < emergency_abs_delta.",
        ),
        _c(
            "BST203",
            "roll-band-above-trigger",
            "error",
            "The band reaches the roll trigger: a freshly rolled position would already be due "
            "for another roll.",
            "Keep max_abs_delta below normal_abs_delta.",
        ),
        _c(
            "BST204",
            "roll-urgency-order",
            "error",
            "Urgency thresholds must fall from emergency to low.",
            "Order them emergency > high > medium > low.",
        ),
        _c(
            "BST205",
            "roll-dte-window",
            "error",
            "min_dte_days must be below max_dte_days.",
            "Widen the expiry window.",
        ),
        _c(
            "BST206",
            "roll-urgency-trigger-mismatch",
            "warning",
            "The emergency (or high) urgency threshold differs from the matching trigger, so "
            "urgency and trigger disagree about the same position.",
            "Use the same numbers for urgency.emergency/high and the triggers.",
        ),
        # --- breakers -------------------------------------------------------------------
        _c(
            "BST301",
            "breaker-duplicate-id",
            "error",
            "Two breakers share an id; resets and metrics could not tell them apart.",
            "Give each breaker a unique id.",
        ),
        _c(
            "BST303",
            "breaker-never-fires",
            "error",
            "The condition can never be true for the metric's range (e.g. a _pct above 100, "
            "or all-of two contradictory comparisons).",
            "Fix the threshold or the condition.",
        ),
        _c(
            "BST304",
            "breaker-always-fires",
            "error",
            "The condition is true for every possible value (e.g. loss_pct >= 0): the breaker "
            "would trip on every evaluation.",
            "Fix the threshold or the comparison.",
        ),
        _c(
            "BST309",
            "breaker-metric-out-of-scope",
            "error",
            "A breaker compares a metric its scope cannot see: a portfolio-wide breaker has "
            "no single position's loss to compare.",
            "Change the breaker's scope to the metric's subject (or a finer one), or pick a "
            "metric measured at the breaker's scope.",
        ),
        _c(
            "BST307",
            "breaker-exact-equality",
            "warning",
            "== or != on a continuous metric almost never matches as intended.",
            "Use >=, >, <= or <.",
        ),
        _c(
            "BST308",
            "breaker-instant-rearm",
            "warning",
            "reset: auto with cooldown_s 0 re-arms at once: the breaker can flap every tick.",
            "Give it a cooldown, or reset: manual.",
        ),
        _c(
            "BST310",
            "trailing-stop-wider-than-stop-loss",
            "warning",
            "A trailing stop (position.drawdown_from_high_pct) is wider than the policy's "
            "position-loss breaker (position.loss_pct). The give-back from the high is never "
            "less than the loss from entry, so the loss breaker acts first until the price "
            "has run well beyond the entry.",
            "Give the trailing stop a threshold at most the position-loss breaker's.",
        ),
        _c(
            "BST311",
            "close-position-not-per-position",
            "error",
            "close_position closes one position, but the breaker is evaluated per account, "
            "strategy, symbol, portfolio or system: there is no single position to close and "
            "the trip would restrict nothing.",
            "Compare a position metric (scope position), or use close_risky or reduce_only.",
        ),
        _c(
            "BST312",
            "halt-symbol-without-a-symbol",
            "error",
            "halt_symbol halts the symbol the breaker tripped for, but the breaker is evaluated "
            "per account, strategy, portfolio or system: there is no symbol to halt and the "
            "trip would restrict nothing.",
            "Compare a symbol or position metric (scope symbol or position), or use halt_all "
            "or reduce_only.",
        ),
        _c(
            "BST313",
            "size-factor-without-reduce-size",
            "warning",
            "size_factor is read only by reduce_size breakers: on a breaker with another "
            "action it does nothing.",
            "Delete size_factor, or give the breaker action reduce_size.",
        ),
        _c(
            "BST314",
            "size-factor-cuts-nothing",
            "warning",
            "A reduce_size breaker with size_factor 1 lets every order add all it asks for: "
            "the trip restricts nothing.",
            "Give it a size_factor below 1 (0.5 halves the orders), or another action.",
        ),
        # --- protection -----------------------------------------------------------------
        _c(
            "BST401",
            "protection-hierarchy-incomplete",
            "error",
            "The hierarchy must rank every protection; a missing one would never be checked.",
            "List all five protections.",
        ),
        _c(
            "BST402",
            "protection-hierarchy-duplicate",
            "error",
            "A protection appears twice in the hierarchy: its priority is ambiguous.",
            "List each protection once.",
        ),
        _c(
            "BST403",
            "protection-core-not-first",
            "error",
            "core_asset_immunity must be first: nothing may override it.",
            "Move core_asset_immunity to the top of the hierarchy.",
        ),
        _c(
            "BST404",
            "protection-bypass-above-override",
            "warning",
            "may_bypass lists a protection ranked above regime_override; an override cannot "
            "bypass what outranks it, so the entry has no effect.",
            "Move regime_override above it, or drop it from may_bypass.",
        ),
        _c(
            "BST405",
            "protection-no-core-assets",
            "warning",
            "core_asset_immunity is enabled but lists no core assets.",
            "List the core assets, or set enabled: false.",
        ),
        # --- history protections (ProtectionPolicy `history:`) ---------------------------
        _c(
            "BST406",
            "history-lookback-shorter-than-lock",
            "warning",
            "A history protection looks back over less time than its lock lasts (for "
            "unlock_at, up to a day). Locks are made from the trades of the lookback: while "
            "the lookback covers the lock, a lock lost with the state file (a restart "
            "without --state) is made again from the same trades; a shorter one lets a "
            "cooldown or guard lapse early.",
            "Make lookback_s at least as long as lock_s (86400 with unlock_at), or accept "
            "that a lost state ends its locks.",
        ),
        _c(
            "BST407",
            "history-trade-limit-zero",
            "error",
            "trade_limit 0 lets a history protection judge a window with no trades: a "
            "profit floor above 0 would lock an account that never traded.",
            "Set trade_limit to 1 (the default) or more.",
        ),
        _c(
            "BST408",
            "history-lock-end-twice",
            "error",
            "A history protection gives both lock_s and unlock_at: which one ends a lock "
            "would be a guess (Bastion takes the later, failing closed).",
            "Keep lock_s (a duration after the last triggering trade) or unlock_at (a UTC "
            "clock time), not both.",
        ),
        _c(
            "BST409",
            "history-no-lock-end",
            "error",
            "A history protection gives neither lock_s nor unlock_at: its locks would end "
            "the moment they are made, so it would never block anything.",
            "Add lock_s (seconds after the last triggering trade) or unlock_at (HH:MM UTC).",
        ),
        _c(
            "BST410",
            "history-param-not-for-method",
            "error",
            "A history protection sets a parameter its method does not read (say "
            "max_drawdown_pct on a cooldown). A field that does nothing misleads whoever "
            "reads the policy.",
            "Remove the parameter, or change the method to the one that reads it.",
        ),
        _c(
            "BST411",
            "history-duplicate-id",
            "error",
            "Two history protections of one policy share an id; locks, reasons, releases "
            "and may_bypass name a protection by its id.",
            "Give each history protection its own id.",
        ),
        _c(
            "BST412",
            "protection-bypass-unknown",
            "error",
            "regime_override.may_bypass lists a name that is neither a bypassable protection "
            "(grace_period, holding_period, whipsaw_protection) nor the id of a history "
            "protection of the policy: it bypasses nothing, and is usually a typo.",
            "Fix the name (see the suggestion) or remove it.",
        ),
        # --- limits and units -----------------------------------------------------------
        _c(
            "BST501",
            "unit-slip-pct",
            "warning",
            "A _pct field holds a value between 0 and 1. _pct fields are per cent (5 means "
            "5 %); 0.05 most likely meant 5.",
            "Write the value in per cent.",
        ),
        _c(
            "BST502",
            "limits-trade-above-portfolio",
            "error",
            "max_risk_per_trade_pct is above max_portfolio_risk_pct: one trade could exceed "
            "the whole portfolio's budget.",
            "Lower the per-trade risk or raise the budget.",
        ),
        _c(
            "BST503",
            "limits-state-allows-new-risk",
            "error",
            "A REDUCING or HALTED trading state allows open or increase, which defeats it.",
            "Allow only close, decrease and cancel in REDUCING; only cancel in HALTED.",
        ),
        _c(
            "BST504",
            "limits-cannot-close",
            "warning",
            "ACTIVE does not allow close or cancel: positions could not be exited.",
            "Add close and cancel to ACTIVE.",
        ),
        _c(
            "BST505",
            "limits-sector-cap-never-binds",
            "warning",
            "A max_per_sector_pct cap is above the equity cap of max_per_asset_class_pct "
            "(its `equity` key, or `*`). Sectors classify equities, and all equities together "
            "are already held below the asset-class cap, so the sector cap never binds.",
            "Lower the sector cap to at most the equity cap, or raise the equity cap if the "
            "sector cap is the one meant.",
        ),
        _c(
            "BST506",
            "limits-asset-cap-above-equity",
            "error",
            "max_per_asset_pct is above 100 % of equity while risk.borrowing is not allowed, "
            "or above 100 × risk.borrowing.max_leverage where it is. Exposure above equity "
            "needs borrowed cash; without borrowing allowed the check caps the symbol at 100 "
            "% anyway, so the number written is not the one enforced.",
            "Lower max_per_asset_pct to at most 100, or allow borrowing "
            "(risk.borrowing: {allowed: true, max_leverage: N}) with 100 × N at least the cap.",
        ),
        _c(
            "BST507",
            "limits-borrowing-without-margin",
            "warning",
            "risk.borrowing is allowed but region.margin_allowed is false: the margin check "
            "keeps every order within the account's cash, so exposure above equity is never "
            "reached.",
            "Set region.margin_allowed: true where the venue lends, or drop borrowing.",
        ),
        _c(
            "BST508",
            "instrument-min-notional-unreachable",
            "error",
            "An `instruments` entry's min_notional_usd is above its max_notional_usd (set "
            'there or inherited from "*"), or above orders.max_notional_per_order_usd: no '
            "order value meets both, so every order for those instruments is denied (or cut "
            "below the minimum and denied).",
            "Lower the minimum or raise the maximum so that min ≤ max.",
        ),
        _c(
            "BST509",
            "instrument-quantity-unreachable",
            "error",
            "An `instruments` entry's quantity rules leave no valid order: min_quantity above "
            "max_quantity, or a lot_size whose smallest whole number of lots at or above "
            "min_quantity is above max_quantity.",
            "Make max_quantity at least the smallest order on the lot (and min_quantity at "
            "most max_quantity), or lower the lot size.",
        ),
        _c(
            "BST511",
            "unit-slip-threshold",
            "warning",
            "A number a breaker compares with a metric measured in per cent, basis points or "
            "ATRs (its threshold, or a value in `when`) looks written as a fraction: below 1 "
            "and more than 31.6 times (for basis points 316 times) below the shipped default "
            "for that metric, where a slip lands 100 (10,000) times below. Against "
            "account.daily_loss_pct, 3 % is written 3; 0.03 means 0.03 %. A deliberate tenth "
            "of the default (0.5 against 5) is not reported.",
            "Write the number in the metric's unit (3 for 3 %, 50 for 50 bps); keep the small "
            "value only if you mean it.",
        ),
        _c(
            "BST512",
            "unit-slip-atr",
            "warning",
            "A value in ATRs (an escalation level's breach_atr, hysteresis_atr, the sizing "
            "atr_multiple) is below 1 and more than 31.6 times below its shipped value: most "
            "likely a per cent of the price written as a fraction (0.02 for 2 %). 0.02 means "
            "a fiftieth of an ATR, so the level is reached by almost any move.",
            "Give the value in ATRs (the shipped escalation ladder is 1, 2, 3 ATR).",
        ),
        # --- the set of policies --------------------------------------------------------
        _c(
            "BST601",
            "unknown-extends",
            "error",
            "`extends` names a policy that is not in the set being linted.",
            "Fix the name (see the suggestion), or lint the directory holding the base.",
        ),
        _c(
            "BST602",
            "extends-cycle",
            "error",
            "Policies extend each other in a cycle.",
            "Break the cycle: one of them must not extend the other.",
        ),
        _c(
            "BST603",
            "extends-kind-mismatch",
            "error",
            "A policy may only extend a policy of the same kind.",
            "Extend a policy of the same kind.",
        ),
        _c(
            "BST604",
            "overlapping-scope",
            "error",
            "Two policies of one kind cover the same accounts with the same precedence and "
            "neither extends the other: which one applies would be arbitrary.",
            "Narrow a scope, make one extend the other, or give one a higher precedence.",
        ),
        _c(
            "BST605",
            "duplicate-policy-name",
            "error",
            "Two policies of one kind have the same metadata.name.",
            "Rename one; names identify policies in decisions and `extends`.",
        ),
        _c(
            "BST606",
            "missing-required-kind",
            "error",
            "The policy set has no policy in enforce mode of a kind it requires. The "
            "PolicySet declaration (bastion.yaml) lists the required kinds; a directory "
            "without one requires all five. A deleted or emptied file would otherwise leave "
            "the set without breakers, limits or protections and lint clean.",
            "Restore the missing policy, or (a risk officer's decision) remove the kind from "
            "spec.required_kinds in bastion.yaml.",
        ),
        _c(
            "BST607",
            "missing-required-item",
            "error",
            "A breaker, limit, protection or escalation level that the PolicySet declaration "
            "lists under spec.minimum is not present, enabled and in enforce mode in any "
            "policy of its kind.",
            "Restore the item (see the suggestion for a misspelt id), or (a risk officer's "
            "decision) remove it from spec.minimum in bastion.yaml.",
        ),
        _c(
            "BST608",
            "duplicate-policyset",
            "error",
            "More than one PolicySet declaration in the set: which one says what the set "
            "must contain would be arbitrary.",
            "Keep one PolicySet (policies/bastion.yaml) and merge the other into it.",
        ),
        _c(
            "BST701",
            "shadow-mode",
            "warning",
            "The policy is in shadow mode: it is evaluated and recorded but never blocks.",
            "Set mode: enforce when it is ready.",
        ),
        # --- the --alerts file (kind: AlertPolicy; service/alerting/lint.py) ------------
        _c(
            "BST801",
            "alert-unknown-receiver",
            "error",
            "A route of the AlertPolicy names a receiver that spec.receivers does not "
            "define: the alerts it takes would go nowhere.",
            "Fix the name (see the suggestion) or define the receiver under spec.receivers.",
        ),
        _c(
            "BST802",
            "alert-secret-in-clear",
            "error",
            "A credential is written in the AlertPolicy file (password:, secret:, a Slack "
            "webhook URL, a user:password URL, an Authorization header): files end up in "
            "git, backups and screenshots.",
            "Write the `*_env` form (password_env: SMTP_PASSWORD, url_env: SLACK_URL, "
            "secret_env: WEBHOOK_KEY) and export the variable where bastion serve runs.",
        ),
        _c(
            "BST803",
            "alert-duplicate-receiver",
            "error",
            "Two receivers of the AlertPolicy have the same name: which one a route means "
            "would be arbitrary.",
            "Rename one of them and fix the routes that name it.",
        ),
        _c(
            "BST804",
            "alert-timing",
            "warning",
            "A route's repeat_interval_s is shorter than its group_wait_s: its groups would "
            "repeat before their first message.",
            "Make repeat_interval_s longer than group_wait_s (hours, usually).",
        ),
        _c(
            "BST805",
            "alert-unused-receiver",
            "warning",
            "A receiver of the AlertPolicy is used by no route: nothing is ever sent to it.",
            "Route alerts to it, or remove it.",
        ),
        _c(
            "BST806",
            "alert-unknown-match",
            "warning",
            "A route matches a severity or an alert kind that Bastion never raises: it "
            "takes nothing (a misspelling?).",
            "Use a known value: the message lists them (and suggests the closest).",
        ),
        # --- the replay --config file (kind: ReplayFeed; adapters/replay_config.py) ------
        _c(
            "BST807",
            "replay-file-missing",
            "error",
            "A bars or positions file named by the ReplayFeed config does not exist: "
            "`bastion serve --adapter replay` would stop at start-up.",
            "Fix the path; it is relative to the directory bastion runs from (the "
            "repository root for the shipped example).",
        ),
    )
}
