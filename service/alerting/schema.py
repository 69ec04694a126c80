"""The JSON Schema of the --alerts file (kind: AlertPolicy), published as
schemas/alerts.schema.json (`make schemas`). Every property is described: editors show
the descriptions as hover help."""

from __future__ import annotations

from typing import Any

ALERT_KIND = "AlertPolicy"
RECEIVER_TYPES = ("webhook", "slack", "email", "alertmanager", "log")

_ENV_NAME = {
    "type": "string",
    "pattern": "^[A-Z_][A-Z0-9_]*$",
    "description": "the name of an environment variable (never the secret itself)",
}
_SECONDS = {"type": "number", "minimum": 0}
_URL = {"type": "string", "pattern": "^https?://", "description": "an http(s) URL"}
_LIST_OF_TEXT = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}


def _with(base: dict[str, Any], description: str) -> dict[str, Any]:
    return {**base, "description": description}


_DELIVERY = {
    "timeout_s": _with(
        {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
        "seconds one delivery attempt may take before it is abandoned (default 5)",
    ),
    "retries": _with(
        {"type": "integer", "minimum": 0, "maximum": 10},
        "attempts after a failed one, with exponential backoff (default 3)",
    ),
    "backoff_s": _with(
        {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
        "the first retry's delay; doubled each time (default 0.5)",
    ),
    "max_per_minute": _with(
        {"type": "integer", "minimum": 1},
        "messages this receiver may send per minute; more are dropped and counted as "
        'bastion_alerts_sent_total{outcome="throttled"} (default 60)',
    ),
}


def _receiver(
    kind: str, description: str, props: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": False,
        "required": ["name", "type", *required],
        "properties": {
            "name": _with(
                {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]*$"},
                "the receiver's name, as routes name it",
            ),
            "type": _with({"const": kind}, f"`{kind}`"),
            **props,
            **_DELIVERY,
        },
    }


_RECEIVERS = {
    "webhook": _receiver(
        "webhook",
        "a JSON POST of each notification",
        {
            "url": _with(_URL, "where to POST (may be written in clear)"),
            "url_env": _with(_ENV_NAME, "an environment variable holding the URL"),
            "secret_env": _with(
                _ENV_NAME,
                "an environment variable holding the HMAC-SHA256 key: the body is signed "
                "in the X-Bastion-Signature header as sha256=<hex>",
            ),
            "headers": _with(
                {"type": "object", "additionalProperties": {"type": "string"}},
                "extra request headers (no credentials: use secret_env)",
            ),
        },
        [],
    ),
    "slack": _receiver(
        "slack",
        "a Slack (or Mattermost) incoming webhook",
        {
            "url_env": _with(
                _ENV_NAME,
                "an environment variable holding the webhook URL (the URL is a credential)",
            ),
            "url": _with(
                _URL,
                "the webhook URL, for a local relay only: a hooks.slack.com "
                "URL is a credential and must come from url_env",
            ),
            "channel": _with({"type": "string"}, "override the webhook's channel"),
        },
        [],
    ),
    "email": _receiver(
        "email",
        "an e-mail through an SMTP server (STARTTLS unless starttls: false)",
        {
            "host": _with({"type": "string", "minLength": 1}, "the SMTP server"),
            "port": _with(
                {"type": "integer", "minimum": 1, "maximum": 65535}, "the SMTP port (default 587)"
            ),
            "starttls": _with(
                {"type": "boolean"}, "upgrade to TLS before authenticating (default true)"
            ),
            "ca_file": _with(
                {"type": "string"}, "a CA bundle to verify the server with (default: the system's)"
            ),
            "from": _with({"type": "string", "minLength": 3}, "the sender address"),
            "to": _with(_LIST_OF_TEXT, "the recipients"),
            "username_env": _with(_ENV_NAME, "an environment variable holding the SMTP user"),
            "password_env": _with(_ENV_NAME, "an environment variable holding the SMTP password"),
        },
        ["host", "from", "to"],
    ),
    "alertmanager": _receiver(
        "alertmanager",
        "POST to an Alertmanager's /api/v2/alerts (its routes and silences apply there)",
        {
            "url": _with(_URL, "the Alertmanager base URL, e.g. http://alertmanager:9093"),
            "url_env": _with(_ENV_NAME, "an environment variable holding the base URL"),
        },
        [],
    ),
    "log": _receiver("log", "one `alert_notified` log event per notification", {}, []),
}

_MATCH = {
    "type": "object",
    "description": "which alerts the route takes: every field given must match (a value "
    "in the list; shell patterns such as gen-* for account and breaker); none: all",
    "additionalProperties": False,
    "properties": {
        "severity": _with(_LIST_OF_TEXT, "info, warning, critical, emergency"),
        "kind": _with(
            _LIST_OF_TEXT,
            "breaker_tripped, evaluation_failed, history_locked, order_sent_denied, "
            "persist_failed, position_unevaluable, protection_removed, reload_rejected",
        ),
        "account": _with(_LIST_OF_TEXT, "account ids or patterns"),
        "breaker": _with(_LIST_OF_TEXT, "breaker ids or patterns"),
    },
}

_TIMING = {
    "group_wait_s": _with(
        _SECONDS, "how long a new group waits for more alerts before its first message (default 30)"
    ),
    "group_interval_s": _with(
        _SECONDS,
        "how long a group waits before a message about new or resolved alerts (default 300)",
    ),
    "repeat_interval_s": _with(
        _SECONDS, "how long before a message is sent again for alerts still firing (default 14400)"
    ),
}

ALERTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://bastion.dev/schemas/alerts.schema.json",
    "title": "Bastion AlertPolicy",
    "description": "Where `bastion serve --alerts FILE` delivers alerts: receivers, and "
    "routes by severity, kind, account and breaker, with grouping and timing.",
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": _with({"const": "bastion/v1"}, "always bastion/v1"),
        "kind": _with({"const": ALERT_KIND}, "always AlertPolicy"),
        "metadata": {
            "type": "object",
            "description": "who owns this file",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": _with({"type": "string", "minLength": 1}, "the configuration's name"),
                "owner": _with({"type": "string"}, "who to ask about it"),
                "description": _with({"type": "string"}, "what it is for"),
            },
        },
        "spec": {
            "type": "object",
            "description": "receivers and routes",
            "additionalProperties": False,
            "required": ["receivers", "routes"],
            "properties": {
                "defaults": {
                    "type": "object",
                    "description": "timing for routes that do not set their own",
                    "additionalProperties": False,
                    "properties": {
                        **_TIMING,
                        "critical_group_wait_s": _with(
                            {"type": "number", "minimum": 0, "maximum": 5},
                            "the longest a critical or emergency alert waits before its "
                            "first message, whatever its route says (default 1; at most 5: "
                            "critical alerts are delivered within 5 s)",
                        ),
                    },
                },
                "queue_size": _with(
                    {"type": "integer", "minimum": 10, "maximum": 1_000_000},
                    "alerts waiting for delivery at most; a full queue drops the oldest "
                    "of the lowest severity, counted in bastion_alerts_dropped_total "
                    "(default 10000)",
                ),
                "receivers": {
                    "type": "array",
                    "description": "where messages go",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "type"],
                        "properties": {
                            "type": _with(
                                {"enum": list(RECEIVER_TYPES)},
                                "webhook, slack, email, alertmanager or log",
                            ),
                        },
                        "allOf": [
                            {
                                "if": {"properties": {"type": {"const": kind}}},
                                "then": {"$ref": f"#/$defs/{kind}"},
                            }
                            for kind in RECEIVER_TYPES
                        ],
                    },
                },
                "routes": {
                    "type": "array",
                    "description": "tried in order; the first that matches takes the alert "
                    "(and the next ones too when it says continue: true)",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["receivers"],
                        "properties": {
                            "match": _MATCH,
                            "receivers": _with(_LIST_OF_TEXT, "receiver names"),
                            "group_by": _with(
                                {
                                    "type": "array",
                                    "items": {
                                        "enum": [
                                            "kind",
                                            "severity",
                                            "account",
                                            "breaker",
                                            "subject",
                                            "policy",
                                        ]
                                    },
                                },
                                "labels whose values split alerts into groups (one message "
                                "per group); default [kind, breaker, account]",
                            ),
                            "continue": _with(
                                {"type": "boolean"}, "try the next routes too (default false)"
                            ),
                            **_TIMING,
                        },
                    },
                },
            },
        },
    },
    "$defs": _RECEIVERS,
}
