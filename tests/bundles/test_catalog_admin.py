"""Catalog admin pages: list without a query per row, reasons shown, search by component SKU."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from bundles import services
from bundles.errors import BundleError
from bundles.models import Bundle
from jobs.models import Job
from tests.bundles.jobs_support import run_burst_worker
from tests.factories import make_bundle, make_variant

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:bundles_bundle_changelist")


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx)


def test_bundle_list_does_not_query_per_row(admin_client):
    for _ in range(3):
        make_bundle()
    few = queries_for(admin_client, CHANGELIST)
    for _ in range(15):
        make_bundle()
    many = queries_for(admin_client, CHANGELIST)
    assert many == few


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
def test_bundle_page_shows_broken_reasons_readably(admin_client, redis_conn, settings):
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 0
    battery = make_variant(sku="BAT-55")
    bundle = make_bundle(components=[(battery, 1), (make_variant(), 1)])
    services.variant_soft_delete(variant_id=battery.pk)
    run_burst_worker()  # the fan-out's recompute breaks the bundle

    page = admin_client.get(reverse("admin:bundles_bundle_change", args=[bundle.pk]))

    html = page.content.decode()
    assert "<code>component_deleted</code> Component BAT-55" in html
    assert bundle.shell_variant is not None and bundle.shell_variant.sku in html


def test_bundle_search_finds_by_component_sku_and_filters_by_status(admin_client):
    camera = make_variant(sku="CAM-77")
    make_bundle(name="Photo kit", components=[(camera, 1)])
    make_bundle(name="Other kit", status="draft")

    found = admin_client.get(CHANGELIST, {"q": "CAM-77"}).content.decode()
    assert "Photo kit" in found and "Other kit" not in found
    drafts = admin_client.get(CHANGELIST, {"status__exact": "draft"}).content.decode()
    assert "Other kit" in drafts and "Photo kit" not in drafts


def test_activating_without_components_is_refused_in_the_form(admin_client):
    response = admin_client.post(
        reverse("admin:bundles_bundle_add"),
        {
            "name": "Empty",
            "slug": "empty",
            "status": "active",
            "currency": "USD",
            "pricing_rule": "percent_off",
            "rule_value": "0",
            "components-TOTAL_FORMS": "0",
            "components-INITIAL_FORMS": "0",
            "components-MIN_NUM_FORMS": "0",
            "components-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 200
    assert "An active bundle needs at least one component." in response.content.decode()
    assert not Bundle.objects.filter(slug="empty").exists()


def change_form_data(bundle: Bundle, **overrides) -> dict:
    """The change form's POST for a bundle with its components, unchanged unless overridden."""
    components = list(bundle.components.order_by("pk"))
    data = {
        "name": bundle.name,
        "slug": bundle.slug,
        "currency": bundle.currency,
        "pricing_rule": bundle.pricing_rule,
        "rule_value": str(bundle.rule_value),
        "components-TOTAL_FORMS": str(len(components)),
        "components-INITIAL_FORMS": str(len(components)),
        "components-MIN_NUM_FORMS": "0",
        "components-MAX_NUM_FORMS": "1000",
    }
    for n, c in enumerate(components):
        data |= {
            f"components-{n}-id": str(c.pk),
            f"components-{n}-bundle": str(bundle.pk),
            f"components-{n}-variant": str(c.variant_id),
            f"components-{n}-quantity": str(c.quantity),
        }
    return data | overrides


def test_status_is_read_only_on_an_existing_bundles_form(admin_client):
    # Given an active bundle
    bundle = make_bundle(name="Kit")
    url = reverse("admin:bundles_bundle_change", args=[bundle.pk])
    # Then its change form shows the status but offers no field for it
    page = admin_client.get(url).content.decode()
    assert 'name="status"' not in page
    # When a crafted POST tries to archive it (or mark it broken) anyway
    for status in ("archived", "broken", "draft"):
        response = admin_client.post(url, change_form_data(bundle, status=status, name="Kit 2"))
        assert response.status_code == 302
        # Then the other fields are saved, the status is not
        bundle.refresh_from_db()
        assert bundle.name == "Kit 2" and bundle.status == Bundle.Status.ACTIVE


def test_a_new_bundle_starts_as_draft_or_active_only(admin_client):
    page = admin_client.get(reverse("admin:bundles_bundle_add")).content.decode()
    assert 'value="draft"' in page and 'value="active"' in page
    assert 'value="archived"' not in page and 'value="broken"' not in page
    response = admin_client.post(
        reverse("admin:bundles_bundle_add"),
        {
            "name": "Archived at birth",
            "slug": "archived-at-birth",
            "status": "archived",
            "currency": "USD",
            "pricing_rule": "percent_off",
            "rule_value": "0",
            "components-TOTAL_FORMS": "0",
            "components-INITIAL_FORMS": "0",
            "components-MIN_NUM_FORMS": "0",
            "components-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 200
    assert not Bundle.objects.filter(slug="archived-at-birth").exists()


def test_component_autocomplete_offers_no_shell_variants(admin_client):
    bundle = make_bundle(name="Kit")
    make_variant(name="Kit spare", sku="KIT-SPARE")
    response = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "term": "kit",
            "app_label": "bundles",
            "model_name": "bundlecomponent",
            "field_name": "variant",
        },
    )
    texts = [r["text"] for r in response.json()["results"]]
    assert any("KIT-SPARE" in t for t in texts)
    assert bundle.shell_variant is not None
    assert not any(bundle.shell_variant.sku in t for t in texts)


def test_variant_list_and_filters_render(admin_client):
    make_bundle()
    url = reverse("admin:bundles_productvariant_changelist")
    assert admin_client.get(url, {"deleted": "yes", "enabled__exact": "1"}).status_code == 200
    assert admin_client.get(url, {"q": "SKU"}).status_code == 200


def _add_form_data(slug: str, *components: tuple) -> dict:
    data = {
        "name": slug.capitalize(),
        "slug": slug,
        "status": "draft",
        "currency": "USD",
        "pricing_rule": "percent_off",
        "rule_value": "0",
        "components-TOTAL_FORMS": str(len(components)),
        "components-INITIAL_FORMS": "0",
        "components-MIN_NUM_FORMS": "0",
        "components-MAX_NUM_FORMS": "1000",
    }
    for n, (variant, quantity) in enumerate(components):
        data |= {f"components-{n}-variant": str(variant.pk), f"components-{n}-quantity": quantity}
    return data


def test_the_bundle_form_refuses_a_component_in_another_currency_with_the_services_message(
    admin_client,
):
    # Given a variant priced in euros, and what the service says about it
    euro = make_variant(currency="EUR")
    with pytest.raises(BundleError) as refused:
        services.components_validate(components=[(euro.pk, 1)], currency="USD")
    # When a USD bundle is saved with it in the admin
    response = admin_client.post(
        reverse("admin:bundles_bundle_add"), _add_form_data("euro-kit", (euro, 1))
    )
    # Then the form shows the service's message and nothing is created
    assert response.status_code == 200
    assert refused.value.code == "currency_mismatch"
    assert escape(refused.value.message) in response.content.decode()
    assert not Bundle.objects.filter(slug="euro-kit").exists()


def test_the_bundle_form_refuses_a_soft_deleted_component_with_the_services_message(
    admin_client,
):
    gone = make_variant()
    services.variant_soft_delete(variant_id=gone.pk)
    with pytest.raises(BundleError) as refused:
        services.components_validate(components=[(gone.pk, 1)], currency="USD")
    response = admin_client.post(
        reverse("admin:bundles_bundle_add"), _add_form_data("ghost-kit", (gone, 1))
    )
    assert response.status_code == 200
    assert refused.value.code == "component_deleted"
    assert escape(refused.value.message) in response.content.decode()
    assert not Bundle.objects.filter(slug="ghost-kit").exists()


def test_a_bundle_whose_component_was_deleted_since_can_still_be_renamed(admin_client):
    # Given a bundle whose component was soft-deleted after it was added (integrity breaks it)
    bundle = make_bundle(name="Kit")
    component = bundle.components.first()
    assert component is not None
    services.variant_soft_delete(variant_id=component.variant_id)
    # When only its name changes in the admin, the kept row does not block the save
    url = reverse("admin:bundles_bundle_change", args=[bundle.pk])
    response = admin_client.post(url, change_form_data(bundle, name="Kit renamed"))
    assert response.status_code == 302
    bundle.refresh_from_db()
    assert bundle.name == "Kit renamed"


def test_the_soft_delete_action_asks_for_the_jobs_as_the_admin_user(admin_client, admin_user):
    # Given a variant a bundle uses
    battery = make_variant(sku="BAT-77")
    kit = make_bundle(components=[(battery, 1), (make_variant(), 1)])
    # When it is soft-deleted with the variant list's action
    response = admin_client.post(
        reverse("admin:bundles_productvariant_changelist"),
        {"action": "soft_delete_selected", "_selected_action": [battery.pk]},
        follow=True,
    )
    # Then it is deleted, the page says how many bundles use it, and the service asked for the
    # fan-out and the broken-scope check, from the admin, as that user
    assert response.status_code == 200
    battery.refresh_from_db()
    assert battery.deleted_at is not None
    assert "Soft-deleted; 1 bundle uses these variants." in response.content.decode()
    asked = Job.objects.filter(kind__in=("fanout", "consistency_check"))
    assert sorted(asked.values_list("kind", "trigger", "requested_by")) == [
        ("consistency_check", "admin", admin_user.pk),
        ("fanout", "admin", admin_user.pk),
    ]
    assert Bundle.objects.get(pk=kit.pk).status == Bundle.Status.ACTIVE  # broken by the jobs


VARIANTS = reverse("admin:bundles_productvariant_changelist")


def _rows(html: str, *texts: str) -> list[str]:
    """Which of ``texts`` the page shows, in the order it shows them."""
    found = [(html.find(t), t) for t in texts if t in html]
    return [t for _, t in sorted(found)]


def test_the_variant_list_shows_products_for_sale_and_hides_bundle_shells_by_default(admin_client):
    # Given a bundle (its shell variant) and a real variant whose SKU sorts after the shell's
    real = make_variant(sku="ZZ-REAL-1")
    bundle = make_bundle(components=[(real, 1), (make_variant(), 1)])
    assert bundle.shell_variant is not None
    shell = bundle.shell_variant.sku
    # When the variant list opens
    default = admin_client.get(VARIANTS).content.decode()
    # Then the real variants are listed, the shells are not
    assert "ZZ-REAL-1" in default and shell not in default
    # And the shells are one filter away; with all of them shown, real variants come first
    assert shell in admin_client.get(VARIANTS, {"kind": "shell"}).content.decode()
    everything = admin_client.get(VARIANTS, {"kind": "all"}).content.decode()
    assert _rows(everything, "ZZ-REAL-1", shell) == ["ZZ-REAL-1", shell]


def test_prices_show_their_currencys_decimals_not_the_stored_four(admin_client):
    # Given variants and bundles in USD, EUR and JPY (stored with four decimals)
    usd = [make_variant(price="1234.5", sku="USD-1"), make_variant(price="3", sku="USD-2")]
    eur = [make_variant(currency="EUR", price="12.5", sku="EUR-1")]
    jpy = [make_variant(currency="JPY", price="1500", sku="JPY-1")]
    make_bundle(components=[(usd[0], 1), (usd[1], 1)], name="Dollar kit")
    make_bundle(components=[(eur[0], 2)], name="Euro kit", currency="EUR")
    make_bundle(components=[(jpy[0], 3)], name="Yen kit", currency="JPY")
    # When the lists open
    variants = admin_client.get(VARIANTS).content.decode()
    bundles = admin_client.get(CHANGELIST).content.decode()
    # Then each amount has its currency's decimals (ISO 4217), on one line with its code
    for shown in ("1,234.50\u00a0USD", "3.00\u00a0USD", "12.50\u00a0EUR", "1,500\u00a0JPY"):
        assert shown in variants, shown
    for shown in ("1,237.50\u00a0USD", "25.00\u00a0EUR", "4,500\u00a0JPY"):
        assert shown in bundles, shown
    assert "1234.5000" not in variants and "4500.0000" not in bundles
    assert "1500.00" not in variants


def test_the_variant_and_bundle_forms_show_amounts_without_storage_zeros(admin_client):
    yen = make_variant(currency="JPY", price="1500")
    odd = make_variant(price="4.995")  # more decimals than the currency: none dropped
    bundle = make_bundle(rule_value="12.5")

    def form(name, pk):
        return admin_client.get(reverse(f"admin:bundles_{name}_change", args=[pk])).content.decode()

    assert 'name="price" value="1500"' in form("productvariant", yen.pk)
    assert 'name="price" value="4.995"' in form("productvariant", odd.pk)
    assert 'name="rule_value" value="12.5"' in form("bundle", bundle.pk)


def test_the_bundle_list_puts_problems_under_the_status(admin_client):
    bundle = make_bundle(name="Lantern kit")
    Bundle.objects.filter(pk=bundle.pk).update(
        status=Bundle.Status.BROKEN,
        broken_reasons=[{"code": "component_deleted", "message": "gone"}],
    )
    html = admin_client.get(CHANGELIST).content.decode()
    assert 'Broken<span class="bundles-subline">component_deleted</span>' in html


def test_the_soft_delete_message_counts_bundles_in_the_plural(admin_client):
    battery = make_variant()
    make_bundle(components=[(battery, 1)])
    make_bundle(components=[(battery, 2)])
    response = admin_client.post(
        VARIANTS,
        {"action": "soft_delete_selected", "_selected_action": [battery.pk]},
        follow=True,
    )
    assert "Soft-deleted; 2 bundles use these variants." in response.content.decode()


@pytest.mark.parametrize(("n", "counted"), [(1, "1 bundle"), (2, "2 bundles")])
def test_a_bulk_action_names_its_bundles_in_the_right_number(admin_client, n, counted):
    ids = [make_bundle(status="draft").pk for _ in range(n)]
    admin_client.post(CHANGELIST, {"action": "activate_selected", "_selected_action": ids})
    parent = Job.objects.get(kind="bulk_operation")
    assert parent.reason == f"Bulk activate of {counted} from the bundle admin"
