"""Site-wide writes: the health alerts."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.mail import EmailMessage, get_connection
from django.utils import timezone

from core import mail
from portal import health
from uploads import holders

logger = logging.getLogger(__name__)

RESOLVED_PREFIX = "Resolved - "
# With reminders, how long a check must pass at every run after an alert
# before its recovery is believed and mailed: a first pass may be the start
# of a flap (failing again at the next run), which only the runs after it
# tell. A failure before then is the same one, recurring.
SETTLE = dt.timedelta(minutes=3)


@dataclass
class HealthOutcome:
    checks: list[health.Check]
    # Alerts the mail server did not take, with its reason.
    undelivered: list[str] = field(default_factory=list)
    # Checks still failing whose alert went out lately: not mailed again
    # this run, with when the next reminder is due.
    held: list[str] = field(default_factory=list)
    # Checks passing again, whose recovery waits until they have passed for
    # SETTLE.
    settling: list[str] = field(default_factory=list)
    # Checks passing again, whose recovery was mailed.
    resolved: list[str] = field(default_factory=list)
    # Checks another run was deciding for at the same time (it may mail an
    # alert, hold it or find the check passing): which run, since when.
    left: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[health.Check]:
        return [check for check in self.checks if not check.ok]


def _state_key(check: health.Check, to: Sequence[str]) -> str:
    """Per host, check and recipients: a one-off run mailing someone else
    (``--email``) changes nothing of what the usual recipients were sent. The
    checks every host shares (database, file store, task queue) are counted
    once for the fleet: beat has whichever worker takes them run them."""
    recipients = hashlib.blake2b(",".join(sorted(to)).encode(), digest_size=8).hexdigest()
    host = "*" if check.name in health.SHARED_CHECK_NAMES else settings.HEALTH_HOST
    return f"health-alert:{host}:{check.name}:{recipients}"


def _recall(check: health.Check, to: Sequence[str]) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] | None = caches["shared"].get(_state_key(check, to))
    except Exception as exc:  # noqa: BLE001 - without memory, every run mails (as the course's script)
        logger.warning("health alert state of %s not read: %s", check.name, exc)
        return None
    return state


def _claim(check: health.Check, to: Sequence[str], claim: dict[str, Any]) -> Any:
    """None when this run may decide and mail what the check's state calls
    for, else the claim of the run that does (cron on every host runs the
    shared checks at the same minute, each would read the same state and
    mail the same alert). The claim names its run, host and start, so the
    runs it holds off can say who decides and until when it may hold: at
    most as long as a run's mail may take, should the run die holding it.
    It names its process too: a claim of this host whose process has ended
    (killed, out of memory) is taken over at once rather than waited out. A
    store that cannot be asked (the claim neither taken nor found) costs the
    memory, never the alert."""
    key = _state_key(check, to) + ":claim"
    try:
        if caches["shared"].add(key, claim, timeout=_claim_seconds()):
            return None
        held = caches["shared"].get(key)
        if held is not None and _claim_run(held) != claim["run"] and _died(held):
            dead = held
            held = _take_over(key, dead, claim)
            if held is None:
                logger.info(
                    "health alert claim of %s taken over from %s, which has ended",
                    check.name,
                    dead["process"],
                )
    except Exception as exc:  # noqa: BLE001 - the alert matters more than its memory
        logger.warning("health alert claim of %s not taken: %s", check.name, exc)
        return None
    return None if held is None or _claim_run(held) == claim["run"] else held


def _died(held: Any) -> bool:
    """Whether a claim is of a run on this host whose process has ended (its
    pid gone, or given to a newer process). Another host's processes cannot
    be seen, nor those of another pid namespace (a container) or boot of this
    one: their claims, those of older releases (no process named) and those
    naming it in text of another shape, hold until they lapse."""
    return (
        isinstance(held, dict)
        and isinstance(held.get("run"), str)
        and held.get("host") == settings.HEALTH_HOST
        and isinstance(held.get("process"), str)
        and holders.ended(held["process"])
    )


def _take_over(key: str, dead: dict[str, Any], claim: dict[str, Any]) -> Any:
    """Takes the dead run's claim at ``key`` for ``claim``'s run: None if
    taken, else the claim that holds the check now. Of the runs that find
    the same dead claim, only the one that adds the entry naming it takes it
    over (the others are held off by that one); it then puts its claim in
    place of the dead one, unless that one has gone meanwhile (lapsed, and
    maybe claimed anew by a run that decides now)."""
    shared = caches["shared"]
    if not shared.add(f"{key}:{dead['run']}", claim, timeout=_claim_seconds()):
        return shared.get(f"{key}:{dead['run']}") or shared.get(key)
    if _claim_run(shared.get(key)) == dead["run"]:
        shared.delete(key)
    if shared.add(key, claim, timeout=_claim_seconds()):
        return None
    return shared.get(key)


def _claim_seconds() -> int:
    """How long a claim holds if its run never lets go of it (and no run
    can see that its process has ended)."""
    return 2 * settings.EMAIL_TIMEOUT + 60


def _claim_run(held: Any) -> Any:
    """The run a claim stands for: a dict names it, an older release's claim
    is the run's id alone."""
    return held.get("run") if isinstance(held, dict) else held


def _left(check: health.Check, held: Any) -> str:
    """What a run held off a check by another's claim says: who decides for
    it, not what it decided (it may mail the alert, hold it back as mailed
    lately, or find the check passing on its host)."""
    if (
        isinstance(held, dict)
        and isinstance(held.get("host"), str)
        and isinstance(held.get("started"), dt.datetime)
        and isinstance(held.get("until"), dt.datetime)
    ):
        return (
            f"{check.subject}: being handled by the run on {held['host']} that started at "
            f"{held['started']:%H:%M:%S %Z} (its claim lapses at {held['until']:%H:%M:%S %Z} "
            "should that run have died)"
        )
    # Claimed by an older release, or a claim not of this shape (another
    # release's, a store shared with another program): never a failed run.
    return f"{check.subject}: being handled by another run"


def _unclaim(check: health.Check, to: Sequence[str], run: str) -> None:
    key = _state_key(check, to) + ":claim"
    try:
        if _claim_run(caches["shared"].get(key)) == run:
            caches["shared"].delete(key)
    except Exception as exc:  # noqa: BLE001 - it expires
        logger.warning("health alert claim of %s not released: %s", check.name, exc)


def _keep(check: health.Check, to: Sequence[str], state: dict[str, Any] | None) -> None:
    """Remember what was mailed for the check (None: nothing to remember).
    A store that cannot be written (a full disk under var/, the very thing
    an alert may be about) costs the memory, never the alert."""
    try:
        if state is None:
            caches["shared"].delete(_state_key(check, to))
        else:
            caches["shared"].set(_state_key(check, to), state, timeout=None)
    except Exception as exc:  # noqa: BLE001 - the alert matters more than its memory
        logger.warning("health alert state of %s not kept: %s", check.name, exc)


def _headers(check: health.Check, **more: str) -> dict[str, str]:
    """What tells a fleet's alerts apart, where no reader of the course's
    body looks: the host, the check and what was measured."""
    headers = {"X-Portal-Host": settings.HEALTH_HOST, "X-Portal-Check": check.name, **more}
    headers["X-Portal-Detail"] = " ".join(check.detail.split())
    return headers


def _alert(check: health.Check, to: list[str], since: dt.datetime | None = None) -> EmailMessage:
    """The course's alert: its subject and its body, exactly; a reminder
    says in a header since when the check fails."""
    more = {"X-Portal-Failing-Since": f"{since:%Y-%m-%d %H:%M %Z}"} if since else {}
    return EmailMessage(
        check.subject, health.BODY, settings.DEFAULT_FROM_EMAIL, to, headers=_headers(check, **more)
    )


def _recurring(
    check: health.Check, to: list[str], state: dict[str, Any], remind: dt.timedelta
) -> EmailMessage:
    """The alert of a check that keeps failing again after passing: the
    course's subject, and a body that says it flaps, mailed once per
    reminder interval however often it flips in between."""
    since: dt.datetime = state["since"]
    recurring = f"failed again {state['recurred']} time(s) after passing since the last alert"
    minutes = remind.total_seconds() / 60
    body = "\n".join(
        [
            health.BODY,
            "",
            f"The {check.name} check keeps recurring (flapping): it {recurring}.",
            f"Failing since: {since:%Y-%m-%d %H:%M %Z}. Host: {settings.HEALTH_HOST}.",
            f"This alert is mailed at most once every {minutes:g} minutes while it flaps; its recovery "
            f"once it has passed for {SETTLE.total_seconds() / 60:g} minutes.",
        ]
    )
    more = {"X-Portal-Failing-Since": f"{since:%Y-%m-%d %H:%M %Z}", "X-Portal-Recurring": recurring}
    return EmailMessage(
        check.subject, body + "\n", settings.DEFAULT_FROM_EMAIL, to, headers=_headers(check, **more)
    )


def _anew(check: health.Check, to: list[str], passed: dt.datetime, since: dt.datetime) -> EmailMessage:
    """The alert of a check that fails again at the first run in SETTLE or
    more after one that saw it pass: the course's subject, and a body that
    says why no recovery came between this failure and the last."""
    body = "\n".join(
        [
            health.BODY,
            "",
            f"The {check.name} check fails again, as a new failure: it passed at the run of "
            f"{passed:%Y-%m-%d %H:%M %Z}, and no run saw whether it kept passing until this one "
            "(its recovery, had it held, was not mailed).",
            f"Failing since: {since:%Y-%m-%d %H:%M %Z}. Host: {settings.HEALTH_HOST}.",
        ]
    )
    more = {"X-Portal-Last-Passed": f"{passed:%Y-%m-%d %H:%M %Z}"}
    return EmailMessage(
        check.subject, body + "\n", settings.DEFAULT_FROM_EMAIL, to, headers=_headers(check, **more)
    )


def _resolved(check: health.Check, to: list[str], state: dict[str, Any]) -> EmailMessage:
    """The alert last mailed (its subject, whatever the limit is now), resolved."""
    subject = RESOLVED_PREFIX + str(state["subject"]).removeprefix("Error - ")
    since: dt.datetime = state["since"]
    body = "\n".join(
        [
            f"The {check.name} check passes again: {check.detail}.",
            "",
            f"Host: {settings.HEALTH_HOST}",
            f"Failing since: {since:%Y-%m-%d %H:%M %Z}",
        ]
    )
    return EmailMessage(subject, body + "\n", settings.DEFAULT_FROM_EMAIL, to, headers=_headers(check))


def health_alert(
    *,
    recipients: Sequence[str] | None = None,
    checks: tuple[Callable[[], health.Check], ...] = health.SYSTEM_CHECKS + health.SERVICE_CHECKS,
) -> HealthOutcome:
    """Run the system checks and the portal's own (database, file store,
    task queue), and mail their alerts.

    By default, as the course's script, each failing check is mailed at
    every run. With ``HEALTH_REMIND_MINUTES``, a check that stays failed is
    mailed when it starts failing, then once every that many minutes while
    it still fails, and once more when it has passed again at every run for
    ``SETTLE``: a check run every minute by beat or cron does not mail the
    same alert every minute, nor a recovery it takes back a minute later. What
    was mailed is kept per host, check and recipients in the shared cache,
    so every process of a host (cron, beat's worker) counts alike.

    A check that fails again before it has passed for ``SETTLE`` after an
    alert (one that flaps, as a CPU at 79% and 81% on alternate minutes) is
    still one failure: its alerts keep to one per reminder interval, saying
    that it keeps recurring, and no recovery is mailed until it holds. That
    holds for a failure found within a reminder interval (``SETTLE`` at
    least) of the last run that saw it pass: one found later (no run
    between, the host was off) may have followed a recovery no run saw, and
    is a new one, mailed at once, saying when it last passed.

    Two runs at once (cron on every host, for the checks they share) mail
    a check's alert once: the run that claims it first decides for it, the
    other leaves it be.

    A mail server that is away loses no alert silently: the ones not sent
    are returned with the reason (after the first failure, without waiting
    for the server again), and are tried again on the next run. The run's
    mail as a whole stops after twice EMAIL_TIMEOUT, however slowly the
    server keeps answering.
    """
    started = timezone.now()
    outcome = HealthOutcome(health.run(checks))
    to = list(recipients or settings.HEALTH_RECIPIENTS)
    now = timezone.now()
    remind = dt.timedelta(minutes=settings.HEALTH_REMIND_MINUTES)
    # Each message, with the state to keep once it is sent and if it is not
    # (None: nothing to remember for that check).
    due: list[tuple[health.Check, EmailMessage, dict[str, Any] | None, dict[str, Any] | None]] = []
    run = uuid.uuid4().hex
    claimed: list[health.Check] = []
    try:
        for check in outcome.checks:
            if not check.ok:
                logger.warning("health check failed: %s (%s)", check.name, check.detail)
            if not remind:  # the course's script: each failure at every run, nothing remembered
                if not check.ok and to:
                    due.append((check, _alert(check, to), None, None))
                continue
            claim = {
                "run": run,
                "host": settings.HEALTH_HOST,
                "process": holders.this_process(),
                "started": started,
                "until": timezone.now() + dt.timedelta(seconds=_claim_seconds()),
            }
            held = _claim(check, to, claim)
            if held is not None:
                if not check.ok:
                    outcome.left.append(_left(check, held))
                continue
            claimed.append(check)
            _decide(check, to, now, remind, outcome, due)
        _send(to, outcome, due)
    finally:
        for check in claimed:
            _unclaim(check, to, run)
    return outcome


def _decide(
    check: health.Check,
    to: list[str],
    now: dt.datetime,
    remind: dt.timedelta,
    outcome: HealthOutcome,
    due: list[tuple[health.Check, EmailMessage, dict[str, Any] | None, dict[str, Any] | None]],
) -> None:
    """What the check's state calls for, with reminders, added to ``due``."""
    state = _recall(check, to)
    if check.ok:
        if state is not None:
            _passing(check, to, state, now, outcome, due)
        return
    _failing(check, to, state, now, remind, outcome, due)


def _send(
    to: list[str],
    outcome: HealthOutcome,
    due: list[tuple[health.Check, EmailMessage, dict[str, Any] | None, dict[str, Any] | None]],
) -> None:
    # A mail server that does not answer is not asked again for each alert:
    # every minute's run would outlast the minute (EMAIL_TIMEOUT per alert).
    # One that answers too slowly to time out is given twice EMAIL_TIMEOUT for
    # the whole run's mail.
    away: str | None = None
    deadline = mail.Deadline.for_a_run()
    for check, message, sent, unsent in due:
        if away is not None:
            outcome.undelivered.append(f"{message.subject}: {away}")
            _keep(check, to, unsent)
            continue
        message.connection = get_connection(deadline=deadline)
        try:
            message.send()
        except mail.RecipientsRefused as exc:  # taken for the others, if any
            logger.error("health alert %s: %s", message.subject, exc)
            outcome.undelivered.append(f"{message.subject}: {exc}")
            if not exc.accepted:  # mailed to no one: tried again next run
                _keep(check, to, unsent)
                continue
        except OSError as exc:  # smtplib's errors included
            logger.error("health alert not mailed: %s: %s", message.subject, exc)
            away = f"{exc or type(exc).__name__}"
            outcome.undelivered.append(f"{message.subject}: {away}")
            _keep(check, to, unsent)
            continue
        if check.ok:  # the recovery went out
            outcome.resolved.append(str(message.subject))
        _keep(check, to, sent)


def _failing(
    check: health.Check,
    to: list[str],
    state: dict[str, Any] | None,
    now: dt.datetime,
    remind: dt.timedelta,
    outcome: HealthOutcome,
    due: list[tuple[health.Check, EmailMessage, dict[str, Any] | None, dict[str, Any] | None]],
) -> None:
    """A failing check, with reminders: mailed when it starts, then once per
    reminder interval, whether it failed all along or passed in between."""
    passed: dt.datetime | None = None
    if state is not None and state.get("passing_since") is not None:
        # The last run that saw it pass (a state kept by an older release
        # knows only the first). Failing within a reminder interval of it,
        # it is the same failure, recurring: a flap seen by runs a minute
        # apart or by cron every few minutes alike. Later, it may have held
        # in between, unseen by any run (the host was off, cron stopped): a
        # new failure, whose alert goes out at once rather than at a
        # reminder that may be a day away.
        last_pass: dt.datetime = state.get("passed_at") or state["passing_since"]
        if now - last_pass >= max(SETTLE, remind):
            state, passed = None, last_pass
    state = {"since": now, "mailed": None, "recurred": 0, **(state or {}), "subject": check.subject}
    if passed is not None:  # kept until its alert is mailed: one not taken is retried as it was
        state["last_passed"] = passed
    if state.get("passing_since") is not None:  # it passed, not for long enough: it recurs
        state["recurred"] += 1
    state["passing_since"], state["passed_at"], state["resolved"] = None, None, False
    if not to:
        _keep(check, to, state)
        return
    mailed: dt.datetime | None = state["mailed"]
    if mailed is not None and mailed > now:  # the clock was set back since: mailed now, as far as it can tell
        mailed = state["mailed"] = now
    if mailed is not None and now < mailed + remind:
        next_at = mailed + remind
        recurring = f", failed again {state['recurred']} time(s) since" if state["recurred"] else ""
        outcome.held.append(
            f"{check.subject}: mailed at {mailed:%H:%M %Z}{recurring}, "
            f"reminder at {next_at:%H:%M %Z} if it still fails"
        )
        _keep(check, to, state)
        return
    passed = state.get("last_passed")
    if mailed is None and passed is not None:
        message = _anew(check, to, passed, state["since"])
    elif mailed is None:
        message = _alert(check, to)
    elif state["recurred"]:
        message = _recurring(check, to, state, remind)
    else:
        message = _alert(check, to, state["since"])
    due.append((check, message, {**state, "mailed": now, "recurred": 0, "last_passed": None}, state))


def _passing(
    check: health.Check,
    to: list[str],
    state: dict[str, Any],
    now: dt.datetime,
    outcome: HealthOutcome,
    due: list[tuple[health.Check, EmailMessage, dict[str, Any] | None, dict[str, Any] | None]],
) -> None:
    """A check passing again, with reminders: its recovery is mailed once it
    has passed at every run for ``SETTLE`` (held until then), and what was
    mailed is forgotten with it."""
    if not state.get("mailed") or not to:  # nothing was mailed, nothing to resolve
        _keep(check, to, None)
        return
    # A pass the clock dates after now (it was set back since) counts from now,
    # not from a time that may be hours off.
    passing_since: dt.datetime = min(state.get("passing_since") or now, now)
    settled = now - passing_since >= SETTLE
    state = {**state, "passing_since": passing_since, "passed_at": now}
    if state.get("resolved"):  # kept by a release that mailed a first pass at once: mailed already
        _keep(check, to, None if settled else state)
        return
    if not settled:
        outcome.settling.append(
            f"{RESOLVED_PREFIX}{str(state['subject']).removeprefix('Error - ')}: passing since "
            f"{passing_since:%H:%M %Z}, mailed once it has passed for {SETTLE.total_seconds() / 60:g} minutes"
        )
        _keep(check, to, state)
        return
    due.append((check, _resolved(check, to, state), None, state))
