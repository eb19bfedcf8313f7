"""ARCHITECTURE §7: bad input is a 400 (or a business-rule status) in the one error shape, never a
500, and changes nothing. Bodies are raw JSON so the exact bytes a client may send are tested.
"""

import pytest

from wallets.tests.helpers import assert_error, money_state

pytestmark = pytest.mark.django_db

DEPOSITS = "/api/v1/wallets/deposits"
WITHDRAWALS = "/api/v1/wallets/withdrawals"
TEN_KB = "7" * 10_000

BAD_AMOUNTS = [
    ("BTC", '"-1"'),
    ("BTC", "-1"),
    ("BTC", '"-0.00000001"'),
    ("BTC", '"0"'),
    ("BTC", "0"),
    ("BTC", "0.0"),
    ("BTC", '"-0"'),
    ("BTC", '"NaN"'),
    ("BTC", '"nan"'),
    ("BTC", '"sNaN"'),
    ("BTC", '"Infinity"'),
    ("BTC", '"-Infinity"'),
    ("BTC", '"inf"'),
    ("BTC", '"1e400"'),
    ("BTC", "1e400"),
    ("BTC", "1E+400"),
    ("BTC", '"1e1000000"'),
    ("BTC", '"1e18"'),
    ("BTC", "100000000000000000000"),
    ("BTC", '"' + "9" * 64 + '"'),
    ("BTC", '"0.000000001"'),
    ("BTC", "0.000000001"),
    ("BTC", '"1e-9"'),
    ("BTC", '"1.0000000000000000000000000000001"'),
    ("USD", '"1.001"'),
    ("USD", "0.30000000000000004"),
    ("BTC", "0.30000000000000004"),
    ("BTC", '"abc"'),
    ("BTC", '""'),
    ("BTC", '"   "'),
    ("BTC", '"1,5"'),
    ("BTC", '"1.2.3"'),
    ("BTC", '"0x10"'),
    ("BTC", "true"),
    ("BTC", "false"),
    ("BTC", "null"),
    ("BTC", "[1]"),
    ("BTC", '["1"]'),
    ("BTC", '{"value": "1"}'),
    ("BTC", f'"{TEN_KB}"'),
    ("BTC", f'"0.{TEN_KB}"'),
]
BAD_AMOUNT_IDS = [f"{asset}:{raw[:40]}" for asset, raw in BAD_AMOUNTS]

MALFORMED = [
    '{"asset": "BTC", "amount": NaN, "address": "out"}',
    '{"asset": "BTC", "amount": Infinity, "address": "out"}',
    '{"asset": "BTC", "amount": -Infinity, "address": "out"}',
    '{"asset": "BTC", "amount": ' + "1" * 5000 + ', "address": "out"}',  # past int's digit limit
    '{"asset": "BTC", "amount": "1", "address": "out"',
    '{"asset": "BTC", "amount": 01}',
    "[",
]

BAD_ASSETS = [
    '"XYZ"',
    '"BTCBTCBTCBTCB"',
    '""',
    "123",
    "null",
    "true",
    '["BTC"]',
    '{"code": "BTC"}',
    f'"{TEN_KB}"',
]

BAD_ADDRESSES = [
    '""',
    '"' + "a" * 129 + '"',
    '"abc\\u0000def"',
    '"abc\\ndef"',
    '"abc\\u0007"',
    '"\\u200b"',
    "null",
    '["out"]',
    f'"{TEN_KB}"',
]


@pytest.fixture
def funded(user, btc, usd, fund):
    fund(user, btc, "1")
    fund(user, usd, "1000")
    return user


def post_raw(client, path, body):
    return client.post(path, data=body, content_type="application/json")


def body(asset='"BTC"', amount='"0.5"', address='"sim-out"'):
    return f'{{"asset": {asset}, "amount": {amount}, "address": {address}}}'


# --- amounts ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [DEPOSITS, WITHDRAWALS])
@pytest.mark.parametrize(("asset", "amount"), BAD_AMOUNTS, ids=BAD_AMOUNT_IDS)
def test_bad_amount_is_refused_with_400(auth_client, funded, demo_deposits, path, asset, amount):
    before = money_state()

    response = post_raw(auth_client, path, body(asset=f'"{asset}"', amount=amount))

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(error["details"]) == {"amount"}
    assert money_state() == before


@pytest.mark.parametrize("path", [DEPOSITS, WITHDRAWALS])
@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_json_is_refused_with_400(auth_client, funded, demo_deposits, path, raw):
    before = money_state()

    response = post_raw(auth_client, path, raw)

    assert_error(response, 400, "MALFORMED_REQUEST")
    assert money_state() == before


@pytest.mark.parametrize("path", [DEPOSITS, WITHDRAWALS])
def test_missing_fields_are_each_named(auth_client, funded, demo_deposits, path):
    before = money_state()

    error = assert_error(post_raw(auth_client, path, "{}"), 400, "VALIDATION_ERROR")

    expected = {"asset", "amount"} | ({"address"} if path == WITHDRAWALS else set())
    assert set(error["details"]) == expected
    assert money_state() == before


@pytest.mark.parametrize("path", [DEPOSITS, WITHDRAWALS])
def test_a_json_array_body_is_refused(auth_client, funded, demo_deposits, path):
    before = money_state()

    response = post_raw(auth_client, path, '[{"asset": "BTC", "amount": "0.5"}]')

    assert_error(response, 400, "VALIDATION_ERROR")
    assert money_state() == before


@pytest.mark.parametrize("path", [DEPOSITS, WITHDRAWALS])
@pytest.mark.parametrize("raw", ["false", "true", "0", "1.5", "null", '"BTC"'])
def test_a_scalar_json_body_is_refused(auth_client, funded, demo_deposits, path, raw):
    before = money_state()

    response = post_raw(auth_client, path, raw)

    assert_error(response, 400, "VALIDATION_ERROR")
    assert money_state() == before


# --- assets and addresses -----------------------------------------------------------------


@pytest.mark.parametrize("path", [DEPOSITS, WITHDRAWALS])
@pytest.mark.parametrize("asset", BAD_ASSETS, ids=[a[:20] for a in BAD_ASSETS])
def test_bad_asset_code_is_refused_with_400(auth_client, funded, demo_deposits, path, asset):
    before = money_state()

    response = post_raw(auth_client, path, body(asset=asset))

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(error["details"]) == {"asset"}
    assert money_state() == before


@pytest.mark.parametrize("address", BAD_ADDRESSES, ids=[a[:20] for a in BAD_ADDRESSES])
def test_bad_withdrawal_address_is_refused_with_400(auth_client, funded, address):
    before = money_state()

    response = post_raw(auth_client, WITHDRAWALS, body(address=address))

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(error["details"]) == {"address"}
    assert money_state() == before


def test_withdrawal_below_the_minimum_is_refused_with_400(auth_client, funded):
    before = money_state()

    response = post_raw(auth_client, WITHDRAWALS, body(amount='"0.00009999"'))

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["details"] == {"amount": ["The minimum BTC withdrawal is 0.00010000."]}
    assert money_state() == before


def test_withdrawal_whose_amount_plus_fee_cannot_be_stored_is_refused_with_400(auth_client, funded):
    before = money_state()

    response = post_raw(
        auth_client, WITHDRAWALS, body(asset='"USD"', amount='"999999999999999999"')
    )

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["details"] == {"amount": ["Too large."]}
    assert money_state() == before


def test_withdrawal_of_the_minimum_is_accepted(auth_client, funded):
    response = post_raw(auth_client, WITHDRAWALS, body(amount='"0.0001"'))

    assert response.status_code == 201, response.content


# --- business rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asset", "amount", "required", "available"),
    [
        ("BTC", '"1"', "1.00010000", "1.00000000"),
        ("BTC", "0.9999001", "1.00000010", "1.00000000"),
        ("USD", '"999.01"', "1000.01", "1000.00"),
        ("USD", '"20000000000"', "20000000001.00", "1000.00"),
        ("USD", '"999999999999999998"', "999999999999999999.00", "1000.00"),
    ],
)
def test_withdrawal_over_the_balance_is_422_with_required_and_available(
    auth_client, funded, asset, amount, required, available
):
    before = money_state()

    response = post_raw(auth_client, WITHDRAWALS, body(asset=f'"{asset}"', amount=amount))

    error = assert_error(response, 422, "INSUFFICIENT_BALANCE")
    assert error["details"] == {"asset": asset, "required": required, "available": available}
    assert money_state() == before


def test_withdrawal_of_an_inactive_asset_is_422(auth_client, funded, btc):
    btc.is_active = False
    btc.save()
    before = money_state()

    assert_error(post_raw(auth_client, WITHDRAWALS, body()), 422, "ASSET_INACTIVE")

    assert money_state() == before


def test_demo_deposit_is_403_when_demo_deposits_are_off(auth_client, funded, settings):
    settings.DEMO_DEPOSITS = False
    before = money_state()

    response = post_raw(auth_client, DEPOSITS, body())

    assert_error(response, 403, "DEMO_DEPOSITS_DISABLED")
    assert money_state() == before


@pytest.mark.parametrize(
    ("asset", "amount"), [("BTC", '"2.00000001"'), ("USD", '"20000000000"'), ("USD", "1e17")]
)
def test_demo_deposit_over_the_per_request_cap_is_422(
    auth_client, funded, demo_deposits, asset, amount
):
    before = money_state()

    response = post_raw(auth_client, DEPOSITS, body(asset=f'"{asset}"', amount=amount))

    error = assert_error(response, 422, "DEPOSIT_LIMIT")
    assert "max_per_request" in error["details"]
    assert money_state() == before


def test_demo_deposit_over_the_daily_cap_is_422(auth_client, btc, demo_deposits):
    for _ in range(2):
        assert post_raw(auth_client, DEPOSITS, body(amount='"2"')).status_code == 201
    before = money_state()

    response = post_raw(auth_client, DEPOSITS, body(amount='"1.00000001"'))

    error = assert_error(response, 422, "DEPOSIT_LIMIT")
    assert error["details"] == {
        "asset": "BTC",
        "max_per_day": "5",
        "deposited_today": "4.00000000",
    }
    assert money_state() == before
    assert post_raw(auth_client, DEPOSITS, body(amount='"1"')).status_code == 201
