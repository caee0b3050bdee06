import json
from pathlib import Path

import pytest

from tickfleet.accounts.config import (
    SIMULATED_ACCOUNT_ID,
    AccountConfigError,
    index_accounts,
    load_accounts,
    rest_account,
)
from tickfleet.config.settings import Settings


def test_no_configuration_means_one_simulated_account() -> None:
    accounts = load_accounts(Settings(accounts=None, accounts_file=None))
    assert [a.account_id for a in accounts] == [SIMULATED_ACCOUNT_ID]
    assert not accounts[0].has_credentials


def test_accounts_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(
        json.dumps(
            [
                {"account_id": "a1", "api_key": "k1", "access_token": "t1", "max_connections": 2},
                {"account_id": "a2"},
            ]
        )
    )
    accounts = load_accounts(Settings(accounts_file=path, connections_per_account=3))
    assert [(a.account_id, a.max_connections, a.has_credentials) for a in accounts] == [
        ("a1", 2, True),
        ("a2", 3, False),
    ]


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("not json", "not a valid accounts list"),
        ('[{"account_id": "a"}, {"account_id": "a"}]', "duplicate account ids: a"),
        (
            '[{"account_id": "a", "api_key": "k", "max_connections": 2},'
            ' {"account_id": "b", "api_key": "k", "max_connections": 2}]',
            "more than 3 connections",
        ),
        ('[{"account_id": "bad id!"}]', "not a valid accounts list"),
        ('[{"account_id": "a", "surprise": 1}]', "not a valid accounts list"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(raw: str, needle: str) -> None:
    with pytest.raises(AccountConfigError, match=needle):
        load_accounts(Settings(accounts=raw))


def test_unreadable_accounts_file(tmp_path: Path) -> None:
    with pytest.raises(AccountConfigError, match="cannot read accounts file"):
        load_accounts(Settings(accounts_file=tmp_path / "missing.json"))


def test_kite_credentials_in_the_environment_make_one_account() -> None:
    settings = Settings(
        accounts=None, accounts_file=None, kite_api_key="k", kite_access_token="t",
        kite_account_id="desk",
    )  # fmt: skip
    [account] = load_accounts(settings)
    assert (account.account_id, account.api_key, account.has_credentials) == ("desk", "k", True)
    assert account.max_connections == 2  # the third connection of the key is the index's


def test_the_index_connection_counts_against_its_accounts_key() -> None:
    raw = json.dumps(
        [
            {"account_id": "sim"},
            {"account_id": "a", "api_key": "k1", "access_token": "t1"},
            {"account_id": "b", "api_key": "k2", "access_token": "t2"},
        ]
    )
    accounts = load_accounts(Settings(accounts=raw, connections_per_account=3))
    assert rest_account(accounts) == accounts[1]
    assert index_accounts(accounts, ["NIFTY"]) == {"NIFTY": accounts[1]}
    assert [a.max_connections for a in accounts] == [3, 2, 3]
    explicit = raw.replace('"t1"', '"t1", "max_connections": 3')
    with pytest.raises(AccountConfigError, match=r"api keys k1 .*\(k1 carries the index of NIFTY:"):
        load_accounts(Settings(accounts=explicit))


def test_the_indices_take_the_credentialed_accounts_in_turn() -> None:
    raw = json.dumps(
        [
            {"account_id": "a", "api_key": "k1", "access_token": "t1"},
            {"account_id": "sim"},
            {"account_id": "b", "api_key": "k2", "access_token": "t2"},
            {"account_id": "c", "api_key": "k3", "access_token": "t3"},
        ]
    )
    six = "NIFTY,BANKNIFTY,FINNIFTY,MIDCPNIFTY,SENSEX,BANKEX"
    accounts = load_accounts(Settings(accounts=raw, underlyings=six, connections_per_account=3))
    spread = index_accounts(accounts, six.split(","))
    assert {u: a.account_id for u, a in spread.items()} == {
        "NIFTY": "a", "BANKNIFTY": "b", "FINNIFTY": "c",
        "MIDCPNIFTY": "a", "SENSEX": "b", "BANKEX": "c",
    }  # fmt: skip
    # two index connections on each key leave one for the account's options
    assert [a.max_connections for a in accounts] == [1, 3, 1, 1]
    # all six on one key was Kite's limit twice over; one key still cannot carry four
    one = json.dumps([{"account_id": "a", "api_key": "k1", "access_token": "t1"}])
    with pytest.raises(AccountConfigError, match=r"k1 carries the index of NIFTY, BANKNIFTY, "):
        load_accounts(Settings(accounts=one, underlyings="NIFTY,BANKNIFTY,FINNIFTY"))
    assert (
        load_accounts(Settings(accounts=one, underlyings="NIFTY,BANKNIFTY"))[0].max_connections == 1
    )


def test_without_credentials_no_index_stream_has_a_session() -> None:
    accounts = load_accounts(Settings(accounts=json.dumps([{"account_id": "sim"}])))
    assert index_accounts(accounts, ["NIFTY", "SENSEX"]) == {}
    assert rest_account(accounts) is None
