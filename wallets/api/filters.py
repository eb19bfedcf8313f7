import django_filters

from wallets.models import LedgerEntry, LedgerKind


class LedgerFilter(django_filters.FilterSet):
    asset = django_filters.CharFilter(field_name="asset__code", method="filter_asset")
    kind = django_filters.ChoiceFilter(choices=LedgerKind.choices)

    class Meta:
        model = LedgerEntry
        fields = ["asset", "kind"]

    def filter_asset(self, queryset, name, value):
        return queryset.filter(asset__code=value.strip().upper())
