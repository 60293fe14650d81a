"""Catalog admin: products, variants, bundles (with a component inline) and the search index.

Computed values are read-only here: they are written by the recompute service, which the
bundle/component/variant receivers schedule as jobs after a save. Job actions (recompute,
check, …) are added by the jobs admin work.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext

from jobs.admin.links import QueuedJobsMessageMixin
from jobs.models import JobTrigger
from jobs.timefmt import reltime

from . import services
from .admin_jobs import BundleJobsAdminMixin
from .errors import BundleError
from .models import Bundle, BundleComponent, Product, ProductVariant, SearchEntry
from .pricing import minor_units, quantize_money

NBSP = "\u00a0"  # "21.50 USD" never breaks between amount and currency


def money(amount: Decimal | None, currency: str) -> str:
    """ "1,234.50 USD", "3,000 JPY": rounded to the currency's minor unit (ISO 4217), not the
    four decimals the column stores."""
    if amount is None:
        return "—"
    places = minor_units(currency)
    return f"{quantize_money(amount, currency):,.{places}f}{NBSP}{currency}"


def plain_amount(amount: Decimal | None, currency: str | None = None) -> Decimal | None:
    """A stored amount as a form shows it: the currency's decimals ("5.49", "1500"), or without
    trailing zeros when no currency applies (a percentage: "12.5") — never dropping a digit
    it has ("4.995" stays)."""
    if amount is None:
        return None
    if currency is not None:
        rounded = amount.quantize(Decimal(1).scaleb(-minor_units(currency)))
        if rounded == amount:
            return rounded
    # normalize() alone would write 100 as "1E+2"
    return amount.quantize(Decimal(1)) if amount == amount.to_integral() else amount.normalize()


class ShellFilter(admin.SimpleListFilter):
    """Real products' rows first: bundle shells (the product and variant each bundle is sold
    as) are hidden unless asked for — they are the bundles' own rows, edited on the bundle."""

    title = "kind"
    parameter_name = "kind"
    shell_field = "is_bundle_shell"
    DEFAULT = "real"

    def lookups(self, request, model_admin):
        return (("real", "Products for sale"), ("shell", "Bundle shells"), ("all", "All"))

    def value(self):
        return super().value() or self.DEFAULT

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "real":
            return queryset.filter(**{self.shell_field: False})
        if self.value() == "shell":
            return queryset.filter(**{self.shell_field: True})
        return queryset


class VariantShellFilter(ShellFilter):
    shell_field = "product__is_bundle_shell"


@admin.register(Product)
class ProductAdmin(QueuedJobsMessageMixin, admin.ModelAdmin):
    # Shells are hidden by the kind filter unless asked for: no column needed for it.
    list_display = ("name", "slug", "variant_count", "updated")
    list_filter = (ShellFilter,)
    ordering = ("is_bundle_shell", "name")  # real products first when shells are shown too
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("is_bundle_shell", "created_at", "updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_variants=Count("variants"))

    class Media:
        js = ("jobs/live.js",)  # relative times with the exact one on hover
        css = {"all": ("bundles/catalog.css",)}

    @admin.display(description="variants", ordering="n_variants")
    def variant_count(self, obj: Product) -> int:
        return obj.n_variants  # type: ignore[attr-defined]  # annotated by get_queryset

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, obj: Product) -> str:
        return reltime(obj.updated_at)


class DeletedFilter(admin.SimpleListFilter):
    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        return (("no", "Not deleted"), ("yes", "Soft-deleted"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(deleted_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(deleted_at__isnull=True)
        return queryset


class ProductVariantForm(forms.ModelForm):
    class Meta:
        model = ProductVariant
        fields = (
            "product",
            "sku",
            "name",
            "price",
            "currency",
            "stock_on_hand",
            "allocated",
            "enabled",
        )
        labels = {"sku": "SKU"}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and "price" in self.initial:  # "5.49", not the stored "5.4900"
            self.initial["price"] = plain_amount(self.instance.price, self.instance.currency)


@admin.register(ProductVariant)
class ProductVariantAdmin(QueuedJobsMessageMixin, admin.ModelAdmin):
    form = ProductVariantForm
    # Chosen to fit 1366 px with the admin's sidebar: the product under the variant's name, the
    # currency with the price, enabled and deleted as one "state"; the rest on the variant's page.
    list_display = ("sku", "name_and_product", "unit_price", "stock", "allocated", "state")
    list_filter = (VariantShellFilter, "enabled", DeletedFilter, "currency")
    ordering = ("product__is_bundle_shell", "sku")  # real variants first when shells are shown

    class Media:
        js = ("jobs/live.js",)  # "deleted 3 min ago" ticking, the exact time on hover
        css = {"all": ("bundles/catalog.css",)}

    search_fields = ("sku", "name", "product__name")
    list_select_related = ("product",)
    autocomplete_fields = ("product",)
    readonly_fields = ("deleted_at", "created_at", "updated_at")
    actions = ("soft_delete_selected",)

    @admin.display(description="name", ordering="name")
    def name_and_product(self, obj: ProductVariant) -> str:
        return format_html('{}<span class="bundles-subline">{}</span>', obj.name, obj.product.name)

    @admin.display(description="stock", ordering="stock_on_hand")
    def stock(self, obj: ProductVariant) -> int:
        return obj.stock_on_hand

    @admin.display(description="price", ordering="price")
    def unit_price(self, obj: ProductVariant) -> str:
        return money(obj.price, obj.currency)

    @admin.display(description="state", ordering="enabled")
    def state(self, obj: ProductVariant) -> str:
        if obj.deleted_at:
            return format_html("deleted {}", reltime(obj.deleted_at))
        return "enabled" if obj.enabled else "disabled"

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # The component inline's autocomplete offers only variants that may be components.
        if request.GET.get("model_name") == "bundlecomponent":
            queryset = queryset.filter(product__is_bundle_shell=False, deleted_at__isnull=True)
        return queryset, may_have_duplicates

    @admin.action(
        description="Soft-delete selected variants (breaks bundles using them)",
        permissions=["delete"],
    )
    def soft_delete_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        user = request.user
        assert user.is_authenticated  # admin_view let only staff in
        broken: set[int] = set()
        for variant_id in queryset.values_list("pk", flat=True):
            try:
                broken.update(
                    services.variant_soft_delete(
                        variant_id=variant_id, trigger=JobTrigger.ADMIN, requested_by=user
                    )
                )
            except BundleError as exc:
                self.message_user(request, exc.message, messages.ERROR)
        n = len(broken)
        self.message_user(
            request,
            ngettext(
                "Soft-deleted; %(n)d bundle uses these variants.",
                "Soft-deleted; %(n)d bundles use these variants.",
                n,
            )
            % {"n": n},
            messages.WARNING,
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        # A shell goes with its bundle; deleting it alone would only break the bundle.
        if obj is not None and obj.product.is_bundle_shell:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj: ProductVariant) -> None:
        # Same rule from every door (admin's own page already lists protecting components).
        services.variant_hard_delete(variant_id=obj.pk)

    def delete_queryset(self, request, queryset) -> None:
        for variant_id in queryset.values_list("pk", flat=True):
            try:
                services.variant_hard_delete(variant_id=variant_id)
            except BundleError as exc:
                self.message_user(request, exc.message, messages.ERROR)


class ComponentInlineFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        # Rule at the door: an active bundle has at least one component.
        kept = [
            f
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE") and f.cleaned_data.get("variant")
        ]
        if self.instance.status == Bundle.Status.ACTIVE and not kept:
            raise forms.ValidationError("An active bundle needs at least one component.")
        if any(f.errors for f in self.forms):
            return  # each bad row already says what is wrong with it
        # The rest of the rules at the door are the service's, with its messages.
        try:
            services.components_validate(
                components=[
                    (f.cleaned_data["variant"].pk, f.cleaned_data["quantity"]) for f in kept
                ],
                currency=self.instance.currency,
                kept_variant_ids=[
                    f.cleaned_data["variant"].pk
                    for f in kept
                    if f.instance.pk and not f.has_changed()
                ],
            )
        except BundleError as exc:
            raise forms.ValidationError(exc.message) from exc


class BundleComponentInline(admin.TabularInline):
    model = BundleComponent
    formset = ComponentInlineFormSet
    autocomplete_fields = ("variant",)
    # What a component costs and has in stock, next to it (the row's own label, "2 × 49", is
    # hidden by bundles/catalog.css: quantity and variant id say nothing new).
    fields = ("variant", "quantity", "unit_price", "in_stock")
    readonly_fields = ("unit_price", "in_stock")
    extra = 1
    min_num = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("variant__product")

    @admin.display(description="unit price")
    def unit_price(self, obj: BundleComponent) -> str:
        return money(obj.variant.price, obj.variant.currency) if obj.variant_id else ""

    @admin.display(description="in stock")
    def in_stock(self, obj: BundleComponent) -> str:
        if not obj.variant_id:
            return ""
        return str(max(0, obj.variant.stock_on_hand - obj.variant.allocated))


class BundleForm(forms.ModelForm):
    class Meta:
        model = Bundle
        fields = (
            "name",
            "slug",
            "status",
            "currency",
            "pricing_rule",
            "rule_value",
            "availability_cap",
            "valid_from",
            "valid_to",
        )

    # Only a new bundle's form has the status field (the admin makes it read-only later).
    CREATABLE_STATUSES = (Bundle.Status.DRAFT, Bundle.Status.ACTIVE)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "status" in self.fields:
            self.fields["status"].choices = [  # type: ignore[attr-defined]  # a ChoiceField
                (value, label)
                for value, label in Bundle.Status.choices
                if value in self.CREATABLE_STATUSES
            ]
        bundle = self.instance
        if bundle.pk and "rule_value" in self.initial:  # "12.5" %, "2.50" USD; not "2.5000"
            in_money = bundle.pricing_rule != Bundle.PricingRule.PERCENT_OFF
            self.initial["rule_value"] = plain_amount(
                bundle.rule_value, bundle.currency if in_money else None
            )

    def clean_status(self) -> str:
        status = self.cleaned_data["status"]
        if status not in self.CREATABLE_STATUSES:
            raise forms.ValidationError("A new bundle starts as draft or active.")
        return status


# Shown read-only on the bundle page: the services compute them, people never type them.
COMPUTED_FIELDS = (
    "price",  # "21.50 USD", as in the list (the stored decimal shows "21.5000")
    "computed_availability",
    "no_saving",
    "broken_reasons_display",
    "status_before_broken",
    "last_recomputed",
    "shell_links",
    "created",
    "updated",
)


@admin.register(Bundle)
class BundleAdmin(QueuedJobsMessageMixin, BundleJobsAdminMixin, admin.ModelAdmin):
    form = BundleForm
    inlines = (BundleComponentInline,)
    # Chosen to fit 1366 px with the admin's sidebar open and the filter panel: a bundle's
    # problems go under its status, "no saving" under its price; the pricing rule, the slug
    # and the components are on the bundle's page.
    list_display = ("name", "status_and_problems", "price", "available", "recomputed")
    list_filter = ("status", "pricing_rule", "no_saving", "currency")

    class Media:
        js = ("jobs/live.js",)  # relative "recomputed" times with the exact one on hover
        css = {"all": ("jobs/jobs.css", "bundles/catalog.css")}

    search_fields = ("name", "slug", "components__variant__sku", "shell_variant__sku")
    list_select_related = ("shell_variant",)
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = COMPUTED_FIELDS
    fieldsets = (
        (None, {"fields": ("name", "slug", "status", "currency")}),
        ("Pricing", {"fields": ("pricing_rule", "rule_value", "availability_cap")}),
        ("Validity", {"fields": ("valid_from", "valid_to")}),
        (
            "Computed (read-only)",
            {"fields": COMPUTED_FIELDS},
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None:
            # Status changes go through the activate/archive actions (bundles_set_status and
            # its rules); broken comes and goes with the integrity check.
            fields += ("status",)
        return fields

    @admin.display(description="status", ordering="status")
    def status_and_problems(self, obj: Bundle) -> str:
        codes = sorted({r.get("code", "?") for r in obj.broken_reasons or []})
        if not codes:
            return obj.get_status_display()
        return format_html(
            '{}<span class="bundles-subline">{}</span>', obj.get_status_display(), ", ".join(codes)
        )

    @admin.display(description="price", ordering="computed_price")
    def price(self, obj: Bundle) -> str:
        amount = money(obj.computed_price, obj.currency)
        if obj.no_saving:  # a fixed price not below the components' total
            return format_html('{}<span class="bundles-subline">no saving</span>', amount)
        return amount

    @admin.display(description="recomputed", ordering="last_recomputed_at")
    def recomputed(self, obj: Bundle) -> str:
        return reltime(obj.last_recomputed_at)

    # The page's times in the jobs' format: relative, the exact time (seconds) on hover.
    @admin.display(description="last recomputed")
    def last_recomputed(self, obj: Bundle) -> str:
        return reltime(obj.last_recomputed_at)

    @admin.display(description="created")
    def created(self, obj: Bundle) -> str:
        return reltime(obj.created_at)

    @admin.display(description="updated")
    def updated(self, obj: Bundle) -> str:
        return reltime(obj.updated_at)

    @admin.display(description="available", ordering="computed_availability")
    def available(self, obj: Bundle):
        return obj.computed_availability

    @admin.display(description="broken reasons")
    def broken_reasons_display(self, obj: Bundle) -> str:
        if not obj.broken_reasons:
            return "—"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li><code>{}</code> {}{}</li>",
                (
                    (
                        r.get("code", "?"),
                        r.get("message", ""),
                        " (fixable)" if r.get("fixable") else "",
                    )
                    for r in obj.broken_reasons
                ),
            ),
        )

    @admin.display(description="shell")
    def shell_links(self, obj: Bundle) -> str:
        if not obj.shell_variant_id:
            return "missing (a recompute recreates it)"
        url = reverse("admin:bundles_productvariant_change", args=[obj.shell_variant_id])
        assert obj.shell_variant is not None  # its id was checked above
        return format_html('<a href="{}">{}</a>', url, obj.shell_variant.sku)


@admin.register(SearchEntry)
class SearchEntryAdmin(admin.ModelAdmin):
    list_display = ("title", "sku", "status", "indexed_price", "availability", "indexed_at")
    list_filter = ("status",)
    search_fields = ("title", "sku", "body")
    list_select_related = ("bundle",)
    readonly_fields = [f.name for f in SearchEntry._meta.fields if f.name != "id"]

    def has_add_permission(self, request) -> bool:
        return False  # written by the reindex service only

    @admin.display(description="price", ordering="price")
    def indexed_price(self, obj: SearchEntry) -> str:
        return money(obj.price, obj.bundle.currency)
