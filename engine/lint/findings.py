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
    )
}
