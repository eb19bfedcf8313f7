"""Fee tiers in settlement (ARCHITECTURE §4 "Fees"): each trade charges its two owners their
own rates (tier by 30-day volume, pinned tier or override), never more than the market's,
with exact ledger lines and a clean ledger."""

from datetime import timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from trading.fee_selectors import fee_rates_for_users, fee_standing_for_user
from trading.models import FeeProfile, FeeTier, Market, Trade
from trading.services.fees import fee_volumes_refresh
from trading.tasks import fee_volumes_refresh_task
from trading.tests.factories import MarketFactory
from trading.tests.helpers import assert_ledger_ok, balance_of, drain, place, reload
from wallets.models import LedgerEntry, LedgerKind

pytestmark = pytest.mark.django_db

D = Decimal


def tier(code: str) -> FeeTier:
    return FeeTier.objects.get(code=code)


def fee_lines(user) -> list[tuple[str, Decimal]]:
    return sorted(
        LedgerEntry.objects.filter(user=user, kind=LedgerKind.FEE).values_list(
            "asset__code", "available_delta"
        )
    )


def test_the_migration_seeds_a_schedule_whose_base_tier_charges_the_markets_default():
    schedule = list(FeeTier.objects.values_list("code", "min_volume", "maker_fee", "taker_fee"))
    assert schedule[0] == ("regular", 0, D("0.001"), D("0.002"))
    assert [code for code, *_ in schedule] == ["regular", "vip1", "vip2", "vip3"]
    # Each step is cheaper than the one below it.
    assert all(a[2] > b[2] and a[3] > b[3] for a, b in pairwise(schedule))


def test_trades_in_one_batch_charge_each_owner_its_own_tier_pin_or_override(
    unit_market, trader, btc, usd, fee_account
):
    regular = trader(unit_market, usd="1000")
    by_volume = trader(unit_market, btc="10")
    FeeProfile.objects.create(user=by_volume, volume_30d=D("600000"))  # VIP 2
    overridden = trader(unit_market, usd="1000")
    FeeProfile.objects.create(
        user=overridden, maker_fee_override=D("0"), taker_fee_override=D("0.0005")
    )
    pinned = trader(unit_market, btc="10")
    FeeProfile.objects.create(user=pinned, tier_override=tier("vip3"))
    rest_sell = place(by_volume, side="sell", price="100", quantity="10")
    rest_buy = place(overridden, side="buy", price="99", quantity="5")
    drain(unit_market)
    take_buy = place(regular, side="buy", price="100", quantity="4")
    take_sell = place(pinned, side="sell", price="99", quantity="5")

    drain(unit_market)  # both takers in one batch: one rate lookup for four accounts

    first, second = Trade.objects.order_by("id")
    # regular takes 4 BTC: 0.2 % of the 4 BTC it receives; VIP 2 maker: 0.07 % of 400 USD.
    assert (first.buyer_id, first.seller_id) == (regular.pk, by_volume.pk)
    assert (first.buyer_fee, first.seller_fee) == (D("0.008"), D("0.28"))
    # the pinned VIP 3 takes 495 USD: 0.08 %; the override's maker rate is 0.
    assert (second.buyer_id, second.seller_id) == (overridden.pk, pinned.pk)
    assert (second.buyer_fee, second.seller_fee) == (D("0"), D("0.396"))
    assert reload(take_buy).fee_total == D("0.008")
    assert reload(rest_sell).fee_total == D("0.28")
    assert reload(rest_buy).fee_total == D("0")
    assert reload(take_sell).fee_total == D("0.396")
    assert fee_lines(regular) == [("BTC", D("-0.008"))]
    assert fee_lines(by_volume) == [("USD", D("-0.28"))]
    assert fee_lines(overridden) == []
    assert fee_lines(pinned) == [("USD", D("-0.396"))]
    assert balance_of(regular, btc) == (D("3.992"), D(0))
    assert balance_of(by_volume, usd) == (D("399.72"), D(0))
    assert balance_of(overridden, btc) == (D(5), D(0))
    assert balance_of(pinned, usd) == (D("494.604"), D(0))
    assert balance_of(fee_account, btc) == (D("0.008"), D(0))
    assert balance_of(fee_account, usd) == (D("0.676"), D(0))
    assert_ledger_ok()


def test_a_markets_own_rates_scale_every_accounts_rates(unit_market, trader, btc, usd, fee_account):
    # A promotion: maker free, taker a twentieth of the base tier's 0.2 %.
    Market.objects.filter(pk=unit_market.pk).update(maker_fee=D("0"), taker_fee=D("0.0001"))
    buyer = trader(unit_market, usd="1000")
    FeeProfile.objects.create(user=buyer, taker_fee_override=D("0.0005"))  # a quarter of 0.2 %
    seller = trader(unit_market, btc="10")
    place(seller, side="sell", price="100", quantity="5")
    drain(unit_market)
    place(buyer, side="buy", price="100", quantity="5")
    drain(unit_market)

    trade = Trade.objects.get()
    # 5 BTC × 0.0001 × 0.0005 / 0.002 = 5 × 0.000025; the seller's maker side is free.
    assert (trade.buyer_fee, trade.seller_fee) == (D("0.000125"), D("0"))
    assert balance_of(fee_account, btc) == (D("0.000125"), D(0))
    assert_ledger_ok()


def test_a_dearer_market_charges_the_base_tier_its_rate_and_a_vip_its_share(
    unit_market, trader, btc, usd, fee_account
):
    Market.objects.filter(pk=unit_market.pk).update(taker_fee=D("0.01"))
    regular, vip = trader(unit_market, usd="1000"), trader(unit_market, usd="1000")
    FeeProfile.objects.create(user=vip, volume_30d=D("50000"))  # VIP 1: taker 0.16 % of 0.2 %
    seller = trader(unit_market, btc="10")
    place(seller, side="sell", price="100", quantity="2")
    drain(unit_market)
    place(regular, side="buy", price="100", quantity="1")
    place(vip, side="buy", price="100", quantity="1")
    drain(unit_market)

    assert list(Trade.objects.order_by("id").values_list("buyer_fee", flat=True)) == [
        D("0.01"),
        D("0.008"),
    ]
    assert_ledger_ok()


def test_a_schedule_edit_applies_from_the_next_batch(unit_market, trader, btc, fee_account):
    buyer = trader(unit_market, usd="1000")
    FeeProfile.objects.create(user=buyer, volume_30d=D("60000"))  # VIP 1
    seller = trader(unit_market, btc="10")
    place(seller, side="sell", price="100", quantity="2")
    drain(unit_market)
    place(buyer, side="buy", price="100", quantity="1")
    matcher = drain(unit_market)
    FeeTier.objects.filter(code="vip1").update(taker_fee=D("0.0012"))
    place(buyer, side="buy", price="100", quantity="1")
    drain(unit_market, matcher)  # the same matcher, no restart

    assert list(Trade.objects.order_by("id").values_list("buyer_fee", flat=True)) == [
        D("0.0016"),
        D("0.0012"),
    ]
    assert_ledger_ok()


def test_an_account_no_tier_covers_pays_the_markets_rates(unit_market, trader):
    user = UserFactory()
    FeeTier.objects.filter(code="regular").update(min_volume=D("1"))
    rates = fee_rates_for_users(user_ids=[user.pk])[user.pk]
    assert (rates.maker, rates.taker) == (None, None)
    buyer, seller = trader(unit_market, usd="1000"), trader(unit_market, btc="1")
    place(seller, side="sell", price="100", quantity="1")
    drain(unit_market)
    place(buyer, side="buy", price="100", quantity="1")
    drain(unit_market)
    trade = Trade.objects.get()
    assert (trade.buyer_fee, trade.seller_fee) == (D("0.002"), D("0.1"))
    assert_ledger_ok()


def test_volume_refresh_values_each_market_in_the_reference_asset_and_moves_tiers(
    unit_market, trader, fund
):
    eth_btc = MarketFactory(
        symbol="ETH-BTC",
        base_asset__code="ETH",
        base_asset__name="Ether",
        base_asset__precision=8,
        quote_asset=unit_market.base_asset,
        tick_size=D(1),
        lot_size=D(1),
        min_qty=D(1),
        min_notional=D(1),
    )
    big, small = trader(unit_market, usd="100000"), trader(unit_market, btc="1000")
    fund(small, eth_btc.base_asset, "100")
    place(small, side="sell", price="100", quantity="500")  # BTC at 100 USD
    drain(unit_market)
    place(big, side="buy", price="100", quantity="500")  # 50,000 USD each side
    drain(unit_market)
    fund(big, unit_market.base_asset, "1000")
    place(small, "ETH-BTC", side="sell", price="10", quantity="20")
    drain(eth_btc)
    place(big, "ETH-BTC", side="buy", price="10", quantity="20")  # 200 BTC = 20,000 USD
    drain(eth_btc)
    old = FeeProfile.objects.create(user=UserFactory(), volume_30d=D("999999"))

    assert fee_volumes_refresh() == 2

    assert FeeProfile.objects.get(user=big).volume_30d == D("70000")
    assert FeeProfile.objects.get(user=small).volume_30d == D("70000")
    assert reload_profile(old).volume_30d == 0  # no trade in 30 days: back to 0
    rates = fee_rates_for_users(user_ids=[big.pk, old.user_id])
    assert (rates[big.pk].maker, rates[big.pk].taker) == (D("0.0009"), D("0.0016"))  # VIP 1
    assert (rates[old.user_id].maker, rates[old.user_id].taker) == (D("0.001"), D("0.002"))


def test_volume_refresh_counts_only_the_last_30_days_and_one_account_on_demand(unit_market, trader):
    buyer, seller = trader(unit_market, usd="1000"), trader(unit_market, btc="10")
    place(seller, side="sell", price="100", quantity="3")
    drain(unit_market)
    place(buyer, side="buy", price="100", quantity="3")
    drain(unit_market)
    Trade.objects.update(created_at=timezone.now() - timedelta(days=31))
    place(seller, side="sell", price="100", quantity="1")
    drain(unit_market)
    place(buyer, side="buy", price="100", quantity="1")
    drain(unit_market)

    fee_volumes_refresh(user_ids=[buyer.pk])

    assert FeeProfile.objects.get(user=buyer).volume_30d == D(100)
    assert not FeeProfile.objects.filter(user=seller).exists()


def reload_profile(profile: FeeProfile) -> FeeProfile:
    profile.refresh_from_db()
    return profile


def test_beat_refreshes_the_volumes_daily(unit_market, trader, settings):
    entry = settings.CELERY_BEAT_SCHEDULE["fee-volumes-refresh"]
    buyer, seller = trader(unit_market, usd="1000"), trader(unit_market, btc="1")
    place(seller, side="sell", price="100", quantity="1")
    drain(unit_market)
    place(buyer, side="buy", price="100", quantity="1")
    drain(unit_market)

    assert entry["task"] == fee_volumes_refresh_task.name
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({0}, {10})
    assert fee_volumes_refresh_task.apply().get() == 2
    assert FeeProfile.objects.get(user=seller).volume_30d == D(100)


def test_an_override_above_the_base_tier_pays_and_reports_the_markets_rate(unit_market, trader):
    seller = trader(unit_market, btc="1")
    FeeProfile.objects.create(user=seller, maker_fee_override=D("0.005"))
    buyer = trader(unit_market, usd="1000")
    place(seller, side="sell", price="100", quantity="1")
    drain(unit_market)
    place(buyer, side="buy", price="100", quantity="1")
    drain(unit_market)

    assert Trade.objects.get().seller_fee == D("0.1")  # 0.1 % of 100: never above the market's
    rates = fee_rates_for_users(user_ids=[seller.pk])[seller.pk]
    assert rates.maker == D("0.005")
    assert rates.standard() == (D("0.001"), D("0.002"))
    assert fee_standing_for_user(user=seller).maker_fee == D("0.001")
    assert_ledger_ok()
