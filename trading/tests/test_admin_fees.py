"""Operator console, fees: the schedule's tiers and per-account overrides are edited in the
admin, each change audited with its reason, by the operators group only."""

from decimal import Decimal

import pytest

from accounts.models import OperatorAction
from accounts.tests.admin.fixtures import *  # noqa: F403 (fixtures)
from accounts.tests.admin.fixtures import run_action
from accounts.tests.factories import UserFactory
from trading.fee_selectors import fee_rates_for_users
from trading.models import FeeProfile, FeeTier, Trade
from trading.tests.helpers import assert_ledger_ok, drain, place

pytestmark = pytest.mark.django_db

D = Decimal
TIERS = "/admin/trading/feetier/"
PROFILES = "/admin/trading/feeprofile/"


def tier_form(tier: FeeTier | None = None, reason="quarterly review", **changes) -> dict:
    data = (
        {
            name: str(getattr(tier, name))
            for name in ("code", "name", "min_volume", "maker_fee", "taker_fee", "description")
        }
        if tier
        else {}
    )
    data.update({name: str(value) for name, value in changes.items()})
    data["reason"] = reason
    return data


def test_operator_changes_a_tiers_rates_with_a_reason_and_it_is_audited(operator_client, operator):
    vip1 = FeeTier.objects.get(code="vip1")

    response = operator_client.post(
        f"{TIERS}{vip1.pk}/change/", tier_form(vip1, maker_fee="0.00085")
    )

    assert response.status_code == 302, response.content
    vip1.refresh_from_db()
    assert vip1.maker_fee == D("0.00085")
    action = OperatorAction.objects.get()
    assert (action.actor, action.action, action.reason) == (
        operator,
        "fee_tier_update",
        "quarterly review",
    )
    assert action.details == {"maker_fee": ["0.0009", "0.00085"]}


def test_operator_adds_a_tier(operator_client):
    response = operator_client.post(
        f"{TIERS}add/",
        tier_form(
            code="vip4",
            name="VIP 4",
            min_volume="50000000",
            maker_fee="0.0002",
            taker_fee="0.0004",
            description="",
        ),
    )

    assert response.status_code == 302, response.content
    assert FeeTier.objects.get(code="vip4").taker_fee == D("0.0004")
    assert OperatorAction.objects.get().action == "fee_tier_create"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reason": ""}, "reason"),
        ({"maker_fee": "1.5"}, "maker_fee"),
        ({"taker_fee": "-0.001"}, "taker_fee"),
        ({"min_volume": "500000"}, "min_volume"),  # VIP 2's
    ],
)
def test_a_bad_tier_edit_changes_nothing(operator_client, changes, field):
    vip1 = FeeTier.objects.get(code="vip1")
    before = list(FeeTier.objects.values_list())

    response = operator_client.post(f"{TIERS}{vip1.pk}/change/", tier_form(vip1, **changes))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert list(FeeTier.objects.values_list()) == before
    assert not OperatorAction.objects.exists()


def test_the_schedule_keeps_a_tier_at_volume_zero(operator_client):
    regular = FeeTier.objects.get(code="regular")

    response = operator_client.post(
        f"{TIERS}{regular.pk}/change/", tier_form(regular, min_volume="10")
    )

    assert response.status_code == 200
    assert "volume 0" in str(response.context["adminform"].form.errors)
    assert FeeTier.objects.get(code="regular").min_volume == 0


def test_operator_overrides_an_accounts_rates_and_the_matcher_charges_them(
    operator_client, operator, market, trader
):
    buyer, seller = trader(market, usd="1000"), trader(market, btc="1")

    response = operator_client.post(
        f"{PROFILES}add/",
        {
            "user": buyer.pk,
            "tier_override": FeeTier.objects.get(code="vip3").pk,
            "maker_fee_override": "",
            "taker_fee_override": "0.0001",
            "reason": "market maker programme",
        },
    )

    assert response.status_code == 302, response.content
    profile = FeeProfile.objects.get(user=buyer)
    assert (profile.override_by, profile.taker_fee_override) == (operator, D("0.0001"))
    rates = fee_rates_for_users(user_ids=[buyer.pk])[buyer.pk]
    assert (rates.maker, rates.taker) == (D("0.0004"), D("0.0001"))
    action = OperatorAction.objects.get()
    assert (action.action, action.target_id, action.reason) == (
        "fee_override_set",
        str(buyer.pk),
        "market maker programme",
    )
    assert action.details == {
        "tier": [None, "vip3"],
        "maker_fee": [None, None],
        "taker_fee": [None, "0.0001"],
    }
    place(seller, side="sell", price="100", quantity="1")
    drain(market)
    place(buyer, side="buy", price="100", quantity="1")
    drain(market)
    assert Trade.objects.get().buyer_fee == D("0.0001")  # 1 BTC taken at 0.01 %
    assert_ledger_ok()


def test_an_override_needs_a_reason(operator_client):
    user = UserFactory()
    response = operator_client.post(
        f"{PROFILES}add/", {"user": user.pk, "taker_fee_override": "0", "reason": " "}
    )

    assert response.status_code == 200
    assert not FeeProfile.objects.exists()
    assert not OperatorAction.objects.exists()


def test_the_refresh_action_recomputes_the_volume_now(operator_client, market, trader):
    buyer, seller = trader(market, usd="1000"), trader(market, btc="1")
    profile = FeeProfile.objects.create(user=buyer)
    place(seller, side="sell", price="100", quantity="1")
    drain(market)
    place(buyer, side="buy", price="100", quantity="1")
    drain(market)

    response = run_action(operator_client, PROFILES, "refresh_volume", [profile], reason=None)

    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.volume_30d == D(100)
    assert profile.volume_updated_at is not None


def test_staff_outside_the_operators_group_cannot_edit_fees(outsider_client):
    vip1 = FeeTier.objects.get(code="vip1")

    tier = outsider_client.post(f"{TIERS}{vip1.pk}/change/", tier_form(vip1, maker_fee="0"))
    profile = outsider_client.post(
        f"{PROFILES}add/", {"user": UserFactory().pk, "maker_fee_override": "0", "reason": "x"}
    )

    assert (tier.status_code, profile.status_code) == (403, 403)
    assert FeeTier.objects.get(code="vip1").maker_fee == D("0.0009")
    assert not FeeProfile.objects.exists()


def test_the_fee_pages_render_for_an_operator(operator_client, market, trader):
    FeeProfile.objects.create(user=trader(market, usd="1"), volume_30d=D("123.45"))

    pages = [
        operator_client.get(TIERS),
        operator_client.get(f"{TIERS}add/"),
        operator_client.get(f"{TIERS}{FeeTier.objects.get(code='vip2').pk}/change/"),
        operator_client.get(PROFILES),
        operator_client.get(f"{PROFILES}add/"),
    ]

    assert [page.status_code for page in pages] == [200] * 5
    assert b"VIP 2" in pages[0].content
    assert b"123.45" in pages[3].content
