"""Who may reach the API and Flower: loopback detection, weak secrets, refusals, masking."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from producers.api.public import public_health, public_line
from tickfleet.config.exposure import (
    MIN_SECRET_CHARS,
    api_refusal,
    flower_refusal,
    is_loopback,
    refusals,
    weak_secret,
)
from workers.flower import guard

pytestmark = pytest.mark.timeout(10)

STRONG = "k3Vq9-Tz1xWm8RpL0aYc"  # 20 characters, no placeholder word

LOOPBACK = [
    "127.0.0.1",
    "127.8.9.10",
    "::1",
    "[::1]",
    "localhost",
    "LocalHost ",
    "::ffff:127.0.0.1",
]
EXPOSED = ["0.0.0.0", "", "::", "10.1.2.3", "192.168.0.7", "fe80::1", "api.example.com", "host1"]


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_addresses_and_names_are_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", EXPOSED)
def test_every_interface_private_addresses_and_other_names_are_not(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        (None, "is not set"),
        ("", "is not set"),
        ("s3cr3t", f"is shorter than {MIN_SECRET_CHARS} characters"),
        ("x" * (MIN_SECRET_CHARS - 1), f"is shorter than {MIN_SECRET_CHARS} characters"),
        ("tickfleet", "is a known default"),
        ("ADMIN", "is a known default"),
        ("change-me", "is a known default"),
        ("please-changeme-before-production", "is a known default"),
        ("CHANGE_ME_to_something_long", "is a known default"),
    ],
)
def test_weak_secrets_say_why(secret: str | None, why: str) -> None:
    assert weak_secret(secret) == why


@pytest.mark.parametrize("secret", [STRONG, "x" * MIN_SECRET_CHARS])
def test_long_non_placeholder_secrets_are_real(secret: str) -> None:
    assert weak_secret(secret) is None


def test_the_api_may_stay_open_on_loopback_only() -> None:
    assert api_refusal("127.0.0.1", None) is None
    assert api_refusal("::1", "short") is None
    assert api_refusal("0.0.0.0", STRONG) is None
    refusal = api_refusal("0.0.0.0", None)
    assert refusal is not None
    assert "0.0.0.0" in refusal and "TICKFLEET_API_KEY is not set" in refusal
    assert "every interface" in (api_refusal("", "short") or "")
    assert "is a known default" in (api_refusal("10.0.0.2", "changeme-changeme-1") or "")


def test_flower_outside_loopback_needs_every_password_real() -> None:
    assert flower_refusal("127.0.0.1", []) is None
    assert flower_refusal("0.0.0.0", [f"ops:{STRONG}"]) is None
    assert flower_refusal("0.0.0.0", [], oauth=True) is None  # Flower's OAuth guards it
    assert "is not set" in (flower_refusal("0.0.0.0", []) or "")
    assert "is a known default" in (flower_refusal("0.0.0.0", ["admin:tickfleet"]) or "")
    assert "is not set" in (flower_refusal("::", ["admin"]) or "")  # a user, no password
    mixed = flower_refusal("10.0.0.2", [f"ops:{STRONG}", "guest:guest"])
    assert mixed is not None and "shorter than" in mixed
    assert STRONG not in mixed, "a refusal never quotes a password"


def test_refusals_read_the_environment_make_run_hands_its_processes() -> None:
    assert refusals({}) == []  # the defaults: both on 127.0.0.1
    both = refusals({"API_HOST": "0.0.0.0", "FLOWER_ADDRESS": "0.0.0.0"})
    assert [r.split(" ")[0] for r in both] == ["the", "Flower"] and "API" in both[0]
    exposed_with_secrets = {
        "API_HOST": "0.0.0.0",
        "TICKFLEET_API_KEY": STRONG,
        "FLOWER_ADDRESS": "0.0.0.0",
        "FLOWER_BASIC_AUTH": f"ops:{STRONG},viewer:{STRONG[::-1]}",
    }
    assert refusals(exposed_with_secrets) == []
    weak_second = {**exposed_with_secrets, "FLOWER_BASIC_AUTH": f"ops:{STRONG},admin:tickfleet"}
    assert len(refusals(weak_second)) == 1


def flower_options(**given: object) -> SimpleNamespace:
    """Flower's parsed options, as many of them as the guard reads."""
    values: dict[str, object] = {"unix_socket": "", "address": "", "basic_auth": [], "auth": ""}
    values.update(given)
    return SimpleNamespace(**values)


def test_the_flower_guard_binds_an_unset_address_to_loopback() -> None:
    options = flower_options()
    guard(options)
    assert options.address == "127.0.0.1"


def test_the_flower_guard_refuses_an_exposed_address_without_a_real_password() -> None:
    with pytest.raises(SystemExit, match=r"refused: Flower would listen on 0\.0\.0\.0"):
        guard(flower_options(address="0.0.0.0", basic_auth=["admin:tickfleet"]))
    exposed = flower_options(address="0.0.0.0", basic_auth=[f"ops:{STRONG}"])
    guard(exposed)
    assert exposed.address == "0.0.0.0"
    guard(flower_options(address="0.0.0.0", unix_socket="/run/flower.sock"))  # a file


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (
            "last reload failed: ConnectionError: Error 111 connecting to 10.0.0.5:6379",
            "last reload failed: ConnectionError: Error 111 connecting to <address>",
        ),
        (
            "stream kite:primary: lost redis://:pw@redis.internal:6379/0\nTraceback...",
            "stream kite:primary: lost <url>",
        ),
        (
            "worker stream@host-7 pid 4242 cannot open /srv/tickfleet/var/x.db",
            "worker <worker> pid=<pid> cannot open <path>",
        ),
        (
            "account a1: post a new access token to /admin/accounts/a1/token",
            "account a1: post a new access token to /admin/accounts/a1/token",
        ),
        ("db at [fe80::1:2] and db.local:5432", "db at [<address>] and <address>"),
    ],
)
def test_public_lines_keep_the_verdict_and_mask_the_map(line: str, shown: str) -> None:
    assert public_line(line) == shown


def test_a_public_line_is_one_short_line() -> None:
    shown = public_line("x" * 500 + "\nsecond line")
    assert len(shown) == 160 and shown.endswith("…") and "second" not in shown
    assert public_line("  ") == ""


def test_the_public_health_summary_has_no_details() -> None:
    doc = {
        "redis": {"ok": True, "latency_ms": 0.3},
        "database": {"ok": False, "error": "OperationalError: /srv/db/tickfleet.db locked"},
        "status": "down",
    }
    assert public_health(doc) == {
        "status": "down",
        "problems": ["database unreachable"],
        "warnings": [],
        "detail": "the full document needs the API key (X-API-Key)",
    }
