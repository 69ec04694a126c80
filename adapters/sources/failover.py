"""A priority list of sources: the first one that answers with data worth trusting wins.

For each request the sources are tried in priority order. A source is passed over when it
raises (:class:`AdapterError` or :class:`DataError`: see ``base``) or when its answer
fails the quality check — for bars :func:`assess_bars` must call them usable (for a live
request that includes "not stale"); for quotes :func:`quote_problem` must find nothing.
A source that raised sits out ``cooldown_s`` (or the venue's ``retry_after_s`` if longer)
so a dead primary is not hammered; once it has served its time it is tried first again.

When no source is good enough but some answered, the best answer is returned with
``degraded=True`` and its quality report, so the policy's ``data_quality`` breaker
decides. When none answered, :class:`TransientAdapterError` lists every attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar

from bastion.adapters.sources.base import BarRequest, BarSource, Quote, QuoteSource, quote_problem
from bastion.adapters.sources.clock import Clock
from bastion.engine.errors import AdapterError, DataError, TransientAdapterError
from bastion.engine.indicators.quality import (
    Bar,
    QualityConfig,
    QualityReport,
    Severity,
    assess_bars,
)

S = TypeVar("S", BarSource, QuoteSource)
T = TypeVar("T")  # what a source answers
R = TypeVar("R")  # what the judge learnt about it (a quality report, a problem)


@dataclass(frozen=True, slots=True)
class SourceAttempted:
    """One try of one source, in the order it happened."""

    source: str
    outcome: str  # "ok" | "failed" | "rejected" (low quality) | "cooling_down"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SourcedBars:
    source: str
    bars: tuple[Bar, ...]
    report: QualityReport
    degraded: bool  # no source was good enough: this is the best that answered
    attempts: tuple[SourceAttempted, ...]


@dataclass(frozen=True, slots=True)
class SourcedQuote:
    source: str
    quote: Quote
    problem: str | None  # why the quote is not trusted (only when degraded)
    degraded: bool
    attempts: tuple[SourceAttempted, ...]


class _Failover(Generic[S]):
    def __init__(self, sources: Sequence[S], clock: Clock, cooldown_s: float) -> None:
        if not sources:
            raise ValueError("a failover needs at least one source")
        names = [source.name for source in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique, got {names}")
        self._sources: tuple[S, ...] = tuple(sources)
        self._clock = clock
        self._cooldown_s = cooldown_s
        self._cooling_until_s: dict[str, float] = {}

    @property
    def name(self) -> str:
        return "failover(" + ", ".join(source.name for source in self._sources) + ")"

    def _run(
        self,
        call: Callable[[S], T],
        judge: Callable[[T], tuple[Decimal, str | None, R]],
        what: str,
    ) -> tuple[str, T, R, bool, tuple[SourceAttempted, ...]]:
        """(source, answer, finding, degraded, attempts) of the answer chosen."""
        attempts: list[SourceAttempted] = []
        best: tuple[Decimal, str, T, R] | None = None
        now_s = self._clock.monotonic()
        ready = [s for s in self._sources if self._cooling_until_s.get(s.name, 0.0) <= now_s]
        for source in self._sources:
            if source not in ready and ready:  # all cooling down: try them all anyway
                wait_s = self._cooling_until_s[source.name] - now_s
                attempts.append(SourceAttempted(source.name, "cooling_down", f"{wait_s:.1f} s"))
                continue
            try:
                answer = call(source)
            except (AdapterError, DataError) as error:
                retry_s = error.retry_after_s if isinstance(error, TransientAdapterError) else None
                pause_s = max(self._cooldown_s, retry_s or 0.0)
                self._cooling_until_s[source.name] = self._clock.monotonic() + pause_s
                attempts.append(SourceAttempted(source.name, "failed", str(error)))
                continue
            self._cooling_until_s.pop(source.name, None)
            score, problem, finding = judge(answer)
            if problem is None:
                attempts.append(SourceAttempted(source.name, "ok"))
                return source.name, answer, finding, False, tuple(attempts)
            attempts.append(SourceAttempted(source.name, "rejected", problem))
            if best is None or score > best[0]:
                best = (score, source.name, answer, finding)
        if best is not None:
            _, name, answer, finding = best
            return name, answer, finding, True, tuple(attempts)
        summary = "; ".join(f"{a.source}: {a.outcome} {a.detail}".strip() for a in attempts)
        waits = [until - now_s for until in self._cooling_until_s.values() if until > now_s]
        raise TransientAdapterError(
            f"no source could provide {what} ({summary})",
            retry_after_s=min(waits) if waits else None,
        )


class FailoverBarSource(_Failover[BarSource]):
    def __init__(
        self,
        sources: Sequence[BarSource],
        *,
        clock: Clock,
        quality: QualityConfig | None = None,
        cooldown_s: float = 30.0,
    ) -> None:
        super().__init__(sources, clock, cooldown_s)
        self._quality = quality or QualityConfig()

    def fetch(self, request: BarRequest) -> SourcedBars:
        def judge(bars: tuple[Bar, ...]) -> tuple[Decimal, str | None, QualityReport]:
            report = assess_bars(
                bars,
                interval_s=request.interval_s,
                now=self._clock.now() if request.live else None,  # history is never stale
                config=self._quality,
            )
            if report.usable:
                return report.score_ratio, None, report
            worst = next((i for i in report.issues if i.severity is not Severity.INFO), None)
            reason = f"{worst.code}: {worst.message}" if worst else "score below the minimum"
            return report.score_ratio, f"quality {report.score_ratio}, {reason}", report

        name, bars, report, degraded, attempts = self._run(
            lambda source: tuple(source.fetch_bars(request)), judge, f"{request.symbol} bars"
        )
        return SourcedBars(name, bars, report, degraded, attempts)

    def fetch_bars(self, request: BarRequest) -> Sequence[Bar]:
        """The :class:`BarSource` view: just the bars (even degraded ones)."""
        return self.fetch(request).bars


class FailoverQuoteSource(_Failover[QuoteSource]):
    def __init__(
        self,
        sources: Sequence[QuoteSource],
        *,
        clock: Clock,
        max_age_s: float = 5.0,
        cooldown_s: float = 30.0,
    ) -> None:
        super().__init__(sources, clock, cooldown_s)
        self._max_age_s = max_age_s

    def fetch(self, symbol: str) -> SourcedQuote:
        def judge(quote: Quote) -> tuple[Decimal, str | None, str | None]:
            problem = quote_problem(quote, self._clock.now(), self._max_age_s)
            return Decimal(0 if problem else 1), problem, problem

        name, quote, problem, degraded, attempts = self._run(
            lambda source: source.fetch_quote(symbol), judge, f"a {symbol} quote"
        )
        return SourcedQuote(name, quote, problem, degraded, attempts)

    def fetch_quote(self, symbol: str) -> Quote:
        return self.fetch(symbol).quote
