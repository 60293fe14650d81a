"""Catalog admin: products, variants, bundles (with a component inline) and the search index.

Computed values are read-only here: they are written by the recompute service, which the
bundle/component/variant receivers schedule as jobs after a save. Job actions (recompute,
check, …) are added by the jobs admin work.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from jobs.admin.links import QueuedJobsMessageMixin
from jobs.models import JobTrigger
from jobs.timefmt import reltime

from . import services
from .admin_jobs import BundleJobsAdminMixin
from .errors import BundleError
from .models import Bundle, BundleComponent, Product, ProductVariant, SearchEntry


@admin.register(Product)
class ProductAdmin(QueuedJobsMessageMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "is_bundle_shell", "variant_count", "updated_at")
    list_filter = ("is_bundle_shell",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("is_bundle_shell", "created_at", "updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_variants=Count("variants"))

    @admin.display(description="variants", ordering="n_variants")
    def variant_count(self, obj: Product) -> int:
        return obj.n_variants  # type: ignore[attr-defined]  # annotated by get_queryset


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


@admin.register(ProductVariant)
class ProductVariantAdmin(QueuedJobsMessageMixin, admin.ModelAdmin):
    list_display = (
        "sku",
        "name",
        "product",
        "price",
        "currency",
        "stock_on_hand",
        "allocated",
        "enabled",
        "deleted_at",
    )
    list_filter = ("enabled", DeletedFilter, "currency", "product__is_bundle_shell")
    search_fields = ("sku", "name", "product__name")
    list_select_related = ("product",)
    autocomplete_fields = ("product",)
    readonly_fields = ("deleted_at", "created_at", "updated_at")
    actions = ("soft_delete_selected",)

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
        broken: set[int] = set()
        for variant_id in queryset.values_list("pk", flat=True):
            try:
                broken.update(
                    services.variant_soft_delete(
                        variant_id=variant_id, trigger=JobTrigger.ADMIN, requested_by=request.user
                    )
                )
            except BundleError as exc:
                self.message_user(request, exc.message, messages.ERROR)
        self.message_user(
            request, f"Soft-deleted; {len(broken)} bundle(s) use these variants.", messages.WARNING
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
    extra = 1
    min_num = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("variant__product")


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
    # Chosen to fit 1366 px with the admin's sidebar: slug, currency and "no saving" fold into
    # the columns they qualify; everything else is on the bundle's page.
    list_display = (
        "name",
        "status",
        "pricing",
        "price",
        "available",
        "component_count",
        "problems",
        "recomputed",
    )
    list_filter = ("status", "pricing_rule", "no_saving", "currency")

    class Media:
        js = ("jobs/live.js",)  # relative "recomputed" times with the exact one on hover
        css = {"all": ("jobs/jobs.css",)}  # badges, the jobs list's look, no-wrap cells

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

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_components=Count("components"))

    @admin.display(description="pricing", ordering="pricing_rule")
    def pricing(self, obj: Bundle) -> str:
        value = f"{obj.rule_value.normalize():f}" if obj.rule_value is not None else ""
        texts: dict[str, str] = {
            Bundle.PricingRule.PERCENT_OFF: f"−{value} %",
            Bundle.PricingRule.AMOUNT_OFF: f"−{value} {obj.currency}",
            Bundle.PricingRule.FIXED_PRICE: f"= {value} {obj.currency}",
        }
        text = texts.get(obj.pricing_rule, str(value))
        return f"{text} · no saving" if obj.no_saving else text

    @admin.display(description="price", ordering="computed_price")
    def price(self, obj: Bundle) -> str:
        if obj.computed_price is None:
            return "—"
        # One line: "21.50 USD" broke between amount and currency at 1366 px.
        return format_html(
            '<span class="jobs-nowrap">{}</span>', f"{obj.computed_price:,.2f} {obj.currency}"
        )

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

    @admin.display(description="parts", ordering="n_components")
    def component_count(self, obj: Bundle) -> int:
        return obj.n_components  # type: ignore[attr-defined]  # annotated by get_queryset

    @admin.display(description="problems")
    def problems(self, obj: Bundle) -> str:
        codes = sorted({r.get("code", "?") for r in obj.broken_reasons or []})
        return ", ".join(codes) or "—"

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
    list_display = ("title", "sku", "status", "price", "availability", "indexed_at")
    list_filter = ("status",)
    search_fields = ("title", "sku", "body")
    list_select_related = ("bundle",)
    readonly_fields = [f.name for f in SearchEntry._meta.fields if f.name != "id"]

    def has_add_permission(self, request) -> bool:
        return False  # written by the reindex service only
