"""Metrika connector against the local fake Metrika (real HTTP, multipart CSV, statuses, quotas)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connectors import registry
from connectors.base import (
    AccountContext,
    AuthRevoked,
    DeliveryItem,
    DeliveryOutcome,
    ItemKind,
    TokenExpired,
)
from connectors.metrika import mapping
from connectors.metrika.client import UploadKind
from tests.fakes.yandex_server import FakeYandex, running_yandex

COUNTER = "44147844"
TOKEN = "metrika-token"
VISITOR = "1700000000123456789"
UNKNOWN_VISITOR = "1711111111000000001"


@pytest.fixture
def yandex() -> Iterator[FakeYandex]:
    with running_yandex() as fake:
        fake.tokens.add(TOKEN, "owner")
        fake.metrika.counters[COUNTER] = {"owner"}
        fake.metrika.visitors.add(VISITOR)
        fake.metrika.goals.add("deal_won")
        yield fake


def context(
    fake: FakeYandex, token: str = TOKEN, api_base: str | None = None, **settings: Any
) -> AccountContext:
    return AccountContext(
        connection_id=1,
        provider="yandex",
        api_base=api_base or fake.base_url,
        account={"counter_id": COUNTER},
        settings=settings,
        access_token=lambda: token,
        hub_base_url="https://hub.example",
    )


def connector(ctx: AccountContext):
    return registry.load("metrika").make_connector(ctx)


def ago(**delta: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(**delta)).isoformat()


def call(
    call_id: int,
    *,
    ym: str | None = VISITOR,
    yclid: str | None = None,
    called_at: str | None = None,
    static: bool = False,
    status: str = "answered",
    session: bool = True,
) -> DeliveryItem:
    payload = {
        "call_id": call_id,
        "client_id": 1,
        "key": f"otkuda-call-{call_id}",
        "caller": "+79991234567",
        "tracking_number": "+74950000001",
        "static": static,
        "called_at": called_at or ago(hours=1),
        "wait_seconds": 7,
        "talk_seconds": 95,
        "status": status,
        "abandoned": False,
        "first_time": True,
        "call_path": f"/clients/1/calls/{call_id}",
        "channel": "Yandex Direct, search",
        "tags": [],
        "session": {
            "landing_url": "https://shop.example/?utm_source=yandex",
            "ym_client_id": ym,
            "yclid": yclid,
        }
        if session
        else None,
    }
    return DeliveryItem(id=call_id, kind=ItemKind.CALL, key=payload["key"], payload=payload)


def deal(deal_id: int, *, call_item: DeliveryItem | None, amount: str = "12500.00") -> DeliveryItem:
    payload = {
        "deal_id": deal_id,
        "client_id": 1,
        "key": f"otkuda-deal-{deal_id}",
        "external_id": f"amo-{deal_id}",
        "amount": amount,
        "currency": "RUB",
        "won_at": ago(minutes=5),
        "caller": "+79991234567",
        "call": call_item.payload if call_item else None,
    }
    return DeliveryItem(id=10_000 + deal_id, kind=ItemKind.DEAL_WON, key=payload["key"], payload=payload)


def by_id(results):
    return {r.id: r for r in results}


def test_calls_arrive_as_csv_per_identifier_type(yandex: FakeYandex) -> None:
    items = [
        call(1),
        call(2, ym=UNKNOWN_VISITOR, static=True, status="missed"),
        call(3, ym=None, yclid="987654321"),
    ]
    results = by_id(connector(context(yandex)).push(items))

    assert {r.outcome for r in results.values()} == {DeliveryOutcome.DONE}
    uploads = list(yandex.metrika.uploads.values())
    assert sorted(u.client_id_type for u in uploads) == ["CLIENT_ID", "YCLID"]
    assert all(u.type == "CALLS" for u in uploads)
    rows = {r.get("ClientId") or r.get("Yclid"): r for r in yandex.metrika.rows(COUNTER, "CALLS")}
    assert set(rows) == {VISITOR, UNKNOWN_VISITOR, "987654321"}
    first = rows[VISITOR]
    assert first["DateTime"] == str(int(dt.datetime.fromisoformat(items[0].payload["called_at"]).timestamp()))
    assert first["PhoneNumber"] == "+74950000001"
    assert (first["TalkDuration"], first["HoldDuration"]) == ("95", "7")
    assert (first["CallMissed"], first["StaticCall"], first["FirstTimeCaller"]) == ("0", "0", "1")
    assert first["Tag"] == "Yandex Direct, search"  # a comma survives CSV quoting
    assert first["URL"] == "https://shop.example/?utm_source=yandex"
    assert first["CallTrackerURL"] == "https://hub.example/clients/1/calls/1"
    assert (rows[UNKNOWN_VISITOR]["CallMissed"], rows[UNKNOWN_VISITOR]["StaticCall"]) == ("1", "1")

    client_upload = next(u for u in uploads if u.client_id_type == "CLIENT_ID")
    assert results[1].external_id == results[2].external_id == str(client_upload.info["id"])
    # As Metrika took it in: both rows valid, one static and one dynamic.
    assert "rows sent 2" in results[1].error and "rows valid 2" in results[1].error
    assert "static 1" in results[1].error and "dynamic 1" in results[1].error
    # Once processed (read through the calls list), one row is linked to a known visitor.
    listed = connector(context(yandex)).client.uploadings(UploadKind.CALLS)
    final = next(u for u in listed if u["id"] == client_upload.info["id"])
    assert (final["status"], final["linked_quantity"]) == ("PROCESSED", 1)


def test_old_calls_and_calls_without_visitor_are_skipped_with_reason(yandex: FakeYandex) -> None:
    items = [call(1, called_at=ago(days=22)), call(2, ym=None), call(3, session=False), call(4)]
    results = by_id(connector(context(yandex)).push(items))

    assert results[1].outcome == DeliveryOutcome.SKIPPED and "21-day window" in results[1].error
    assert results[2].outcome == DeliveryOutcome.SKIPPED and "no Metrika visitor id" in results[2].error
    assert results[3].outcome == DeliveryOutcome.SKIPPED
    assert results[4].outcome == DeliveryOutcome.DONE
    assert len(yandex.metrika.rows(COUNTER, "CALLS")) == 1


def test_push_does_not_wait_for_processing(yandex: FakeYandex) -> None:
    yandex.metrika.polls_to_process = 10**6  # Metrika takes hours
    ctx = context(yandex, deal_goal="deal_won")
    results = connector(ctx).push([call(1), deal(5, call_item=call(1))])
    assert all(r.outcome == DeliveryOutcome.DONE for r in results)
    assert all("processing at Metrika" in r.error for r in results)
    # One request per file: the push stores the file and returns; nothing polls inside it.
    prefix = f"/management/v1/counter/{COUNTER}/offline_conversions"
    assert sorted(entry for entry in yandex.log if entry[1].startswith(prefix)) == [
        ("POST", f"{prefix}/upload"),
        ("POST", f"{prefix}/upload_calls"),
    ]


def test_call_uploads_answer_only_on_the_calls_endpoints(yandex: FakeYandex) -> None:
    [r] = connector(context(yandex)).push([call(1)])
    prefix = f"{yandex.base_url}/management/v1/counter/{COUNTER}/offline_conversions"
    headers = {"Authorization": f"OAuth {TOKEN}"}
    assert requests.get(f"{prefix}/calls_uploading/{r.external_id}", headers=headers).status_code == 200
    wrong = requests.get(f"{prefix}/uploading/{r.external_id}", headers=headers)
    assert wrong.status_code == 404 and wrong.json()["errors"][0]["error_type"] == "not_found"
    assert requests.get(f"{prefix}/uploadings", headers=headers).json() == {"uploadings": []}
    typed = requests.get(f"{prefix}/uploadings", params={"type": "CALLS"}, headers=headers)
    assert typed.status_code == 400 and typed.json()["errors"][0]["error_type"] == "invalid_parameter"


def test_won_deal_goes_to_offline_conversions_with_goal_price_currency(yandex: FakeYandex) -> None:
    ctx = context(yandex, deal_goal="deal_won")
    results = connector(ctx).push([deal(5, call_item=call(1)), deal(6, call_item=None)])
    results = by_id(results)

    assert results[10_005].outcome == DeliveryOutcome.DONE and "rows valid 1" in results[10_005].error
    assert results[10_006].outcome == DeliveryOutcome.SKIPPED and "no call" in results[10_006].error
    [upload] = yandex.metrika.uploads.values()
    assert upload.type == "BASIC" and upload.client_id_type == "CLIENT_ID"
    [row] = upload.rows
    assert row["ClientId"] == VISITOR
    assert (row["Target"], row["Price"], row["Currency"]) == ("deal_won", "12500.00", "RUB")


def test_deal_with_yclid_only_and_bad_currency(yandex: FakeYandex) -> None:
    ctx = context(yandex, deal_goal="deal_won")
    by_click = deal(1, call_item=call(1, ym=None, yclid="424242"))
    bad = deal(2, call_item=call(2))
    bad.payload["currency"] = "rubles"
    results = by_id(connector(ctx).push([by_click, bad]))
    assert results[10_001].outcome == DeliveryOutcome.DONE
    assert results[10_002].outcome == DeliveryOutcome.DEAD and "ISO 4217" in results[10_002].error
    [upload] = yandex.metrika.uploads.values()
    assert upload.client_id_type == "YCLID" and upload.rows[0]["Yclid"] == "424242"


def test_calls_goal_is_named_on_upload(yandex: FakeYandex) -> None:
    connector(context(yandex, calls_goal_name="Звонок")).push([call(1)])
    assert yandex.metrika.call_goal_names == {"Звонок"}


def test_upload_list_is_read_page_by_page(yandex: FakeYandex) -> None:
    metrika = connector(context(yandex, max_rows_per_file=1))
    metrika.push([call(i) for i in range(1, 6)])
    listed = metrika.client.uploadings(UploadKind.CALLS, page=2)
    assert sorted(u["id"] for u in listed) == sorted(yandex.metrika.uploads)
    assert metrika.client.uploadings(UploadKind.BASIC, page=2) == []


def test_won_deal_without_configured_goal_is_skipped(yandex: FakeYandex) -> None:
    [result] = connector(context(yandex)).push([deal(5, call_item=call(1))])
    assert result.outcome == DeliveryOutcome.SKIPPED and "deal_goal" in result.error
    assert yandex.metrika.uploads == {}


def test_find_delivered_recognises_sent_items_after_a_crash(yandex: FakeYandex) -> None:
    sent = [call(i) for i in range(1, 151)] + [deal(7, call_item=call(1))]
    ctx = context(yandex, deal_goal="deal_won")
    first = by_id(connector(ctx).push(sent))
    uploads = list(yandex.metrika.uploads.values())
    assert len(uploads) > 2  # 150 keys do not fit one comment
    assert all(len(u.comment) <= 255 for u in uploads)

    # A fresh instance (the worker restarted) asks about the batch plus items never sent.
    doubt = sent + [call(99), deal(8, call_item=call(1))]
    found = connector(ctx).find_delivered(doubt)
    assert found == {item.id: first[item.id].external_id for item in sent}
    assert len(yandex.metrika.rows(COUNTER, "CALLS")) == 150  # asking sent nothing


def test_a_retry_after_a_lost_answer_uploads_nothing_twice(yandex: FakeYandex) -> None:
    metrika = connector(context(yandex))
    # Metrika stores the file, then the answer is lost (a gateway timeout).
    yandex.metrika.fail_next(504, "timeout", path="upload_calls", after=True)
    [first] = metrika.push([call(1)])
    assert first.outcome == DeliveryOutcome.RETRY
    [upload] = yandex.metrika.uploads.values()

    retried = [dataclasses.replace(call(1), attempts=1), call(2)]
    results = by_id(metrika.push(retried))
    assert results[1].outcome == DeliveryOutcome.DONE and results[1].external_id == str(upload.info["id"])
    assert results[2].outcome == DeliveryOutcome.DONE and results[2].external_id != results[1].external_id
    assert len(yandex.metrika.uploads) == 2  # call 1 once, call 2 once
    assert [r["ClientId"] for r in yandex.metrika.rows(COUNTER, "CALLS")].count(VISITOR) == 2
    assert ("GET", f"/management/v1/counter/{COUNTER}/offline_conversions/calls_uploadings") in yandex.log


def test_a_crash_between_upload_and_answer_does_not_duplicate_calls(yandex: FakeYandex) -> None:
    # The worker died after Metrika stored the file and before the answer was recorded: the pipeline
    # asks a fresh connector about the items in doubt, then sends only what it did not find.
    yandex.metrika.fail_next(504, "timeout", path="upload_calls", after=True)
    connector(context(yandex)).push([call(1), call(2)])
    assert len(yandex.metrika.uploads) == 1
    doubt = [dataclasses.replace(call(1), attempts=1), dataclasses.replace(call(2), attempts=1)]
    found = connector(context(yandex)).find_delivered(doubt)
    [upload_id] = yandex.metrika.uploads
    assert found == {1: str(upload_id), 2: str(upload_id)}
    results = connector(context(yandex)).push(doubt)  # a retry of the same batch
    assert {(r.outcome, r.external_id) for r in results} == {(DeliveryOutcome.DONE, str(upload_id))}
    assert len(yandex.metrika.uploads) == 1 and len(yandex.metrika.rows(COUNTER, "CALLS")) == 2


def test_errors_map_to_outcomes(yandex: FakeYandex) -> None:
    metrika = connector(context(yandex))
    upload = "upload_calls"
    yandex.metrika.fail_next(429, "quota_parallel_requests", path=upload, headers={"Retry-After": "7"})
    [r] = metrika.push([call(1)])
    assert (r.outcome, r.retry_after) == (DeliveryOutcome.RETRY, 7.0)

    yandex.metrika.fail_next(503, "backend_error", path=upload)
    [r] = metrika.push([call(1)])
    assert r.outcome == DeliveryOutcome.RETRY and "backend_error" in r.error

    yandex.metrika.fail_next(400, "invalid_parameter", "Wrong DateTime in line 2", path=upload)
    [r] = metrika.push([call(1)])
    assert r.outcome == DeliveryOutcome.DEAD and "Wrong DateTime in line 2" in r.error

    assert yandex.metrika.uploads == {}
    [r] = metrika.push([call(1)])
    assert r.outcome == DeliveryOutcome.DONE


@pytest.mark.parametrize("quota_status", [429, 420])
def test_daily_quota_retries_much_later(yandex: FakeYandex, quota_status: int) -> None:
    yandex.metrika.daily = 0
    yandex.metrika.quota_status = quota_status
    [r] = connector(context(yandex)).push([call(1)])
    assert r.outcome == DeliveryOutcome.RETRY and "quota_requests_by_uid" in r.error
    assert r.retry_after >= 3600


def test_per_second_quota_answered_with_420_is_a_short_retry(yandex: FakeYandex) -> None:
    yandex.metrika.fail_next(420, "quota_requests_by_ip", path="upload_calls")
    [r] = connector(context(yandex)).push([call(1)])
    assert (r.outcome, r.retry_after) == (DeliveryOutcome.RETRY, 1.0)


def test_refused_token_and_lost_access_raise(yandex: FakeYandex) -> None:
    with pytest.raises(TokenExpired):
        connector(context(yandex, token="stale")).push([call(1)])
    yandex.metrika.counters[COUNTER] = {"someone-else"}
    with pytest.raises(AuthRevoked):
        connector(context(yandex)).push([call(1)])
    assert yandex.metrika.uploads == {}


def test_token_refused_after_a_file_went_in_keeps_that_file_delivered(yandex: FakeYandex) -> None:
    yandex.metrika.expire_tokens_after_uploads = 1  # the token dies right after the first file
    two_files = [call(1), call(2, ym=None, yclid="555")]  # two identifier types, two files
    results = by_id(connector(context(yandex)).push(two_files))
    assert results[1].outcome == DeliveryOutcome.DONE
    assert results[2].outcome == DeliveryOutcome.RETRY and "token refused" in results[2].error
    assert len(yandex.metrika.uploads) == 1
    with pytest.raises(TokenExpired):  # the next push asks the pipeline to refresh
        connector(context(yandex)).push([call(2, ym=None, yclid="555")])


def test_unreachable_api_is_a_retry() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctx = AccountContext(
        connection_id=1,
        provider="yandex",
        api_base=f"http://127.0.0.1:{port}",
        account={"counter_id": COUNTER},
        settings={},
        access_token=lambda: TOKEN,
    )
    [r] = connector(ctx).push([call(1)])
    assert r.outcome == DeliveryOutcome.RETRY


def test_multi_file_push_stays_under_the_per_second_quota(yandex: FakeYandex) -> None:
    yandex.metrika.per_second = 5
    metrika = connector(context(yandex, max_rows_per_file=1))
    assert metrika.rate_limit().per_second < yandex.metrika.per_second
    results = metrika.push([call(i) for i in range(1, 7)])
    assert [r.outcome for r in results] == [DeliveryOutcome.DONE] * 6
    assert len(yandex.metrika.uploads) == 6
    assert yandex.metrika.rejected == []


def test_rows_failing_validation_are_counted(yandex: FakeYandex) -> None:
    bad = call(2)
    bad.payload["tracking_number"] = "n/a"
    results = connector(context(yandex)).push([call(1), bad])
    assert "rows sent 2" in results[0].error and "rows valid 1" in results[0].error


def test_comment_keys_round_trip() -> None:
    keys = ["otkuda-call-7", "otkuda-call-12", "odd,key*with:chars"]
    assert mapping.decode_keys(mapping.encode_keys(keys)) == keys
    assert mapping.decode_keys(mapping.encode_keys(["only"])) == ["only"]
    assert mapping.decode_keys("written by hand") == []
    chunks = mapping.chunk_for_comments([f"otkuda-call-{i}" for i in range(200)], max_rows=1000)
    assert sum(len(c) for c in chunks) == 200
    assert all(len(mapping.encode_keys([f"otkuda-call-{i}" for i in c])) <= 255 for c in chunks)


def test_a_connection_without_a_counter_is_refused(yandex: FakeYandex) -> None:
    ctx = dataclasses.replace(context(yandex), account={"counter_id": "my site"})
    with pytest.raises(ValueError, match="counter_id"):
        connector(ctx)
