"""``Desk.subscribe_each``: a batch of requests is written in one transaction with one
upsert per round, and each request still reads as if it had been written alone, in
order (its own mode, whether it created the subscription, its event), on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
import pytest
import redis

from tests.support.seed import now_of, seed_universe
from tickfleet.config.settings import Settings
from tickfleet.subscriptions.admission import Rejection
from tickfleet.subscriptions.desk import Subscribed
from tickfleet.subscriptions.store import Mode, Status, SubscriptionRequest
from tickfleet.wiring.services import Services

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def services(
    make_settings: Callable[..., Settings], database_url: str
) -> Iterator[tuple[Services, list[int]]]:
    settings = make_settings(
        database_url=database_url, max_tokens_per_connection=4, connections_per_account=1
    )
    tokens = [o.instrument_token for o in seed_universe(settings)]
    made = Services(settings)
    yield made, tokens
    made.close()


def _created(pubsub: redis.client.PubSub) -> list[int]:
    found = []
    while (message := pubsub.get_message(timeout=0.5)) is not None:
        event = orjson.loads(message["data"])
        assert event["event_type"] == "subscription_created"
        found.append(event["instrument_token"])
    return found


def test_a_batch_reads_as_its_requests_written_one_by_one(
    services: tuple[Services, list[int]], redis_client: redis.Redis
) -> None:
    svc, (t1, t2, t3, t4, t5, t6, *_) = services
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(svc.channels().events)
    pubsub.get_message(timeout=1)
    batch = [
        [SubscriptionRequest(t1, Mode.LTP)],
        [SubscriptionRequest(t1, Mode.FULL)],
        [SubscriptionRequest(t1)],  # no mode: the active one keeps FULL
        [SubscriptionRequest(t2)],
        [SubscriptionRequest(t2, Mode.QUOTE), SubscriptionRequest(t3)],
        [SubscriptionRequest(t4), SubscriptionRequest(t5)],  # no room left for two more
        [SubscriptionRequest(t4)],  # the last free slot
        [SubscriptionRequest(t6)],
    ]

    outcomes = svc.desk().subscribe_each(batch, now_of(svc.settings))

    seen: list[list[tuple[int, Mode, bool]] | str] = []
    for outcome in outcomes:
        if isinstance(outcome, Subscribed):
            seen.append([(s.token, s.mode, s.token in outcome.new) for s in outcome.saved])
            assert set(outcome.rows) == {s.token for s in outcome.saved}
        else:
            assert all(isinstance(r, Rejection) and r.kind == "capacity" for r in outcome)
            seen.append("refused")
    assert seen == [
        [(t1, Mode.LTP, True)],
        [(t1, Mode.FULL, False)],
        [(t1, Mode.FULL, False)],
        [(t2, Mode.FULL, True)],
        sorted([(t2, Mode.QUOTE, False), (t3, Mode.FULL, True)]),
        "refused",
        [(t4, Mode.FULL, True)],
        "refused",
    ]
    stored = {s.token: (s.mode, s.status) for s in svc.subscriptions.find()}
    assert stored == {
        t1: (Mode.FULL, Status.ACTIVE),
        t2: (Mode.QUOTE, Status.ACTIVE),
        t3: (Mode.FULL, Status.ACTIVE),
        t4: (Mode.FULL, Status.ACTIVE),
    }
    assert _created(pubsub) == [t1, t2, t3, t4]  # once each, in request order
    pubsub.close()
