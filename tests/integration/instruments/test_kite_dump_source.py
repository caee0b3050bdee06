"""KiteDumpSource (the official client underneath) against a server that answers like Kite."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from pydantic import SecretStr

from producers.kite_sim.local_rest import KiteRestServer
from tests.support.ports import free_port
from tests.unit.instruments.samples import SAMPLE_ALL, make_spec
from tickfleet.accounts.access_tokens import Credentials
from tickfleet.instruments import (
    Instrument,
    InstrumentDumpError,
    InstrumentSourceError,
    KiteDumpSource,
    generate_universe,
    parse_dump,
    read_dump,
    write_dump,
)

API_KEY = "kitekey01"
ACCESS_TOKEN = "accesstoken-7f3a"
NOV_4 = date(2025, 11, 4)


@dataclass
class DumpServer:
    url: str
    body: str = ""
    seen_headers: list[dict[str, str]] = field(default_factory=list)


def handler_for(state: DumpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen_headers.append(dict(self.headers.items()))
            authorised = self.headers.get("Authorization") == f"token {API_KEY}:{ACCESS_TOKEN}"
            if not authorised or self.headers.get("X-Kite-Version") != "3":
                self._send(
                    403,
                    "application/json",
                    orjson.dumps(
                        {
                            "status": "error",
                            "message": "Incorrect `api_key` or `access_token`.",
                            "error_type": "TokenException",
                        }
                    ),
                )
                return
            self._send(200, "text/csv", gzip.compress(state.body.encode()), encoding="gzip")

        def _send(self, status: int, kind: str, payload: bytes, encoding: str = "") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            if encoding:
                self.send_header("Content-Encoding", encoding)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@pytest.fixture
def dump_server() -> Iterator[DumpServer]:
    state = DumpServer(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def nifty_future(option: Instrument) -> Instrument:
    return replace(
        option,
        instrument_token=13238786,
        exchange_token=51714,
        tradingsymbol="NIFTY25NOVFUT",
        instrument_type="FUT",
        strike=0.0,
        segment="NFO-FUT",
        last_price=24110.5,
    )


def source(
    url: str,
    token: str = ACCESS_TOKEN,
    timeout: float = 10.0,
    underlyings: tuple[str, ...] | None = ("NIFTY",),
) -> KiteDumpSource:
    credentials = Credentials(API_KEY, SecretStr(token), "configuration")
    return KiteDumpSource(url, credentials, underlyings, timeout=timeout)


@pytest.mark.timeout(30)
def test_fetch_keeps_the_nifty_index_options_and_futures(dump_server: DumpServer) -> None:
    universe = generate_universe(NOV_4, 24050.0, make_spec(strikes_each_side=5))
    future = nifty_future(universe[1])
    others = read_dump(SAMPLE_ALL)
    assert not any(item.underlying == "NIFTY" for item in others)
    dump_server.body = write_dump([*others[:40], *universe, future, *others[40:]])

    fetched = source(dump_server.url).fetch(NOV_4)

    assert fetched == [*universe, future]
    headers = dump_server.seen_headers[-1]
    assert headers["Authorization"] == f"token {API_KEY}:{ACCESS_TOKEN}"
    assert headers["X-Kite-Version"] == "3"


@pytest.mark.timeout(30)
def test_without_a_filter_every_row_is_kept(dump_server: DumpServer) -> None:
    dump_server.body = SAMPLE_ALL.read_text(encoding="utf-8")
    assert source(dump_server.url, underlyings=None).fetch(NOV_4) == parse_dump(dump_server.body)


@pytest.mark.timeout(30)
def test_refused_credentials_raise_with_kites_message(dump_server: DumpServer) -> None:
    dump_server.body = SAMPLE_ALL.read_text(encoding="utf-8")
    with pytest.raises(InstrumentSourceError, match="HTTP 403") as caught:
        source(dump_server.url, token="expired-token").fetch(NOV_4)
    assert "TokenException" in str(caught.value)
    assert "Incorrect `api_key` or `access_token`." in str(caught.value)
    assert "expired-token" not in str(caught.value)
    assert caught.value.remedy is not None
    assert caught.value.remedy.startswith("renew the access token (KITE_ACCESS_TOKEN")


@pytest.mark.timeout(30)
def test_a_broken_dump_raises_with_its_line(dump_server: DumpServer) -> None:
    good = SAMPLE_ALL.read_text(encoding="utf-8").splitlines()
    good[4] = good[4].replace(",0.05,", ",five cents,")
    dump_server.body = "\n".join(good) + "\n"
    with pytest.raises(InstrumentDumpError, match="line 5, column 'tick_size'") as caught:
        source(dump_server.url).fetch(NOV_4)
    assert (
        caught.value.remedy == "try again later, or set TICKFLEET_INSTRUMENTS_CSV to a saved dump"
    )


@pytest.mark.timeout(30)
def test_an_unreachable_server_raises_a_source_error_in_a_line_with_a_remedy() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(InstrumentSourceError) as caught:
        source(url).fetch(NOV_4)
    assert str(caught.value) == (
        f"kite dump {url} (configuration token): Kite could not be reached (connection refused)"
    )
    assert caught.value.remedy == (
        f"check KITE_API_URL ({url}), or set TICKFLEET_INSTRUMENTS_CSV to a saved dump"
    )


@pytest.mark.timeout(30)
def test_a_slow_or_failing_kite_is_said_in_a_line() -> None:
    with KiteRestServer({API_KEY: ACCESS_TOKEN}) as rest:
        rest.slow(3.0)
        with pytest.raises(InstrumentSourceError) as slow:
            source(rest.url, timeout=0.5).fetch(NOV_4)
        rest.slow(None)
        rest.fail(503)
        with pytest.raises(InstrumentSourceError) as failing:
            source(rest.url).fetch(NOV_4)
    assert str(slow.value).endswith(": Kite did not answer within 0.5s")
    assert "HTTP 503" in str(failing.value)
    assert "\n" not in str(failing.value)
    for caught in (slow, failing):
        assert caught.value.remedy is not None
        assert caught.value.remedy.startswith(f"check KITE_API_URL ({rest.url})")
