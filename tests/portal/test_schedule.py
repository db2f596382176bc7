"""The worker's timing: periodic runs that do not pile up behind a backlog,
and retries that outlast a store's failover."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from celery.beat import Service
from celery.schedules import crontab
from django.conf import settings

from portal import tasks as portal_tasks
from portal.celery import app
from uploads import tasks


def period_seconds(schedule: dt.timedelta | crontab) -> float:
    if isinstance(schedule, dt.timedelta):
        return schedule.total_seconds()
    # The entries here fire at some minutes of every hour, or once a day,
    # every day.
    assert len(schedule.day_of_week) == 7
    if len(schedule.hour) == 1:
        assert len(schedule.minute) == 1
        return 86_400
    assert len(schedule.hour) == 24
    return 3600 / len(schedule.minute)


def test_every_periodic_run_expires_by_the_time_the_next_is_due() -> None:
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        expires = entry.get("options", {}).get("expires")
        assert expires is not None, f"{name} has no expiry: missed runs would arrive together"
        assert 0 < expires <= period_seconds(entry["schedule"]), name


def test_the_health_check_runs_each_minute_and_expires_within_it() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["health-check"]
    assert period_seconds(entry["schedule"]) == 60
    assert entry["options"]["expires"] <= 60


def test_each_hosts_health_check_goes_to_every_worker_and_the_shared_one_to_one() -> None:
    hosts = settings.CELERY_BEAT_SCHEDULE["health-check-hosts"]
    assert hosts["task"] == "portal.tasks.health_check_host"
    assert period_seconds(hosts["schedule"]) == 60
    # A fanout exchange, which a worker started without -Q (make worker) consumes
    # through a queue of its own: one delivery per worker.
    queue = app.amqp.queues[hosts["options"]["queue"]]
    assert queue.exchange.type == "fanout"
    assert queue in app.amqp.queues.consume_from.values()
    shared = app.amqp.queues[settings.CELERY_BEAT_SCHEDULE["health-check"]["options"]["queue"]]
    assert shared.exchange.type == "direct"


def test_a_hosts_health_check_is_acknowledged_on_receipt() -> None:
    """Handed back unacknowledged (its worker stopped), a broadcast would go
    out to every worker again, where tasks are otherwise acknowledged once done."""
    assert settings.CELERY_TASK_ACKS_LATE
    assert settings.CELERY_BEAT_SCHEDULE["health-check-hosts"]["task"] == portal_tasks.health_check_host.name
    assert portal_tasks.health_check_host.acks_late is False


def test_retries_of_an_image_whose_store_was_away_outlast_a_failover_of_five_minutes() -> None:
    delays = [tasks.retry_delay(n) for n in range(tasks.MAX_RETRIES)]
    assert delays == sorted(delays)
    assert sum(delays) >= 5 * 60
    assert max(delays) <= tasks.RETRY_MAX_DELAY
    # A retry waiting longer than the broker's visibility timeout would be delivered twice.
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > tasks.RETRY_MAX_DELAY


def test_beat_starts_where_its_schedules_folder_does_not_exist_yet(tmp_path: Path) -> None:
    # A fresh checkout, or the image (built without var/). The scheduler is
    # the configured one, which `worker --beat` and `beat` both start.
    schedule = tmp_path / "var" / "celerybeat-schedule"
    service = Service(app, schedule_filename=str(schedule), scheduler_cls=app.conf.beat_scheduler)
    scheduler = service.get_scheduler()
    try:
        assert "health-check" in scheduler.schedule
    finally:
        scheduler.close()
    assert list(schedule.parent.iterdir())


def test_beat_keeps_its_schedule_in_the_var_folder() -> None:
    assert Path(app.conf.beat_schedule_filename) == Path(settings.VAR_DIR) / "celerybeat-schedule"
