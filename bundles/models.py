"""Catalog models: products, variants, bundles and their components, the search index."""

from __future__ import annotations

from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import F, Q


class Product(models.Model):
    name = models.CharField(max_length=255)
    slug = models.SlugField(max_length=255, unique=True)
    description = models.TextField(blank=True)
    # True for the product that stands for a bundle in the catalog and the search index.
    is_bundle_shell = models.BooleanField(default=False, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class VariantQuerySet(models.QuerySet):
    def alive(self) -> VariantQuerySet:
        return self.filter(deleted_at__isnull=True)


class ProductVariant(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    price = models.DecimalField(max_digits=14, decimal_places=4)
    currency = models.CharField(max_length=3, default="USD")
    stock_on_hand = models.IntegerField(default=0)
    allocated = models.IntegerField(default=0)
    enabled = models.BooleanField(default=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = VariantQuerySet.as_manager()

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="variant_price_non_negative"),
            models.CheckConstraint(
                condition=Q(stock_on_hand__gte=0), name="variant_stock_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(allocated__gte=0), name="variant_allocated_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class Bundle(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        BROKEN = "broken", "Broken"
        ARCHIVED = "archived", "Archived"

    class PricingRule(models.TextChoices):
        PERCENT_OFF = "percent_off", "Percent off"
        AMOUNT_OFF = "amount_off", "Fixed amount off"
        FIXED_PRICE = "fixed_price", "Fixed price"

    name = models.CharField(max_length=255)
    slug = models.SlugField(max_length=255, unique=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    # The status a broken bundle returns to once its unfixable issues are gone ("" unless
    # broken; see integrity.status_after).
    status_before_broken = models.CharField(max_length=16, choices=Status.choices, blank=True)
    pricing_rule = models.CharField(
        max_length=16, choices=PricingRule.choices, default=PricingRule.PERCENT_OFF
    )
    rule_value = models.DecimalField(max_digits=14, decimal_places=4, default=0)
    currency = models.CharField(max_length=3, default="USD")
    availability_cap = models.PositiveIntegerField(null=True, blank=True)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_to = models.DateTimeField(null=True, blank=True)

    computed_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    computed_availability = models.PositiveIntegerField(default=0)
    # A fixed price not below the components' total: allowed, but flagged (no saving).
    no_saving = models.BooleanField(default=False)
    broken_reasons = models.JSONField(default=list, blank=True)
    last_recomputed_at = models.DateTimeField(null=True, blank=True)

    shell_product = models.OneToOneField(
        Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="bundle"
    )
    shell_variant = models.OneToOneField(
        ProductVariant,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="shell_of_bundle",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rule_value__gte=0), name="bundle_rule_value_non_negative"
            ),
            models.CheckConstraint(
                condition=~Q(pricing_rule="percent_off") | Q(rule_value__lte=100),
                name="bundle_percent_off_at_most_100",
            ),
            models.CheckConstraint(
                condition=Q(computed_price__isnull=True) | Q(computed_price__gte=0),
                name="bundle_computed_price_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_to__isnull=True)
                | Q(valid_to__gt=F("valid_from")),
                name="bundle_valid_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class BundleComponent(models.Model):
    bundle = models.ForeignKey(Bundle, on_delete=models.CASCADE, related_name="components")
    # PROTECT: a variant that a bundle uses can't be hard-deleted (soft delete breaks bundles).
    variant = models.ForeignKey(
        ProductVariant, on_delete=models.PROTECT, related_name="bundle_components"
    )
    quantity = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["bundle", "variant"], name="component_once_per_bundle"),
            models.CheckConstraint(
                condition=Q(quantity__gte=1) & Q(quantity__lte=1000),
                name="component_quantity_1_to_1000",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.variant_id}"

    def clean(self) -> None:
        # Rule at the door (forms, admin inline): no bundles inside bundles.
        from django.core.exceptions import ValidationError

        if self.variant_id and (
            self.variant.product.is_bundle_shell
            or Bundle.objects.filter(shell_variant_id=self.variant_id).exists()
        ):
            raise ValidationError(
                {"variant": "A bundle's shell variant can't be a component of a bundle."}
            )


class SearchEntry(models.Model):
    """One row per bundle (under its shell's SKU): what the catalog search finds."""

    bundle = models.OneToOneField(Bundle, on_delete=models.CASCADE, related_name="search_entry")
    title = models.CharField(max_length=255)
    sku = models.CharField(max_length=64, db_index=True)
    body = models.TextField(blank=True)
    price = models.DecimalField(max_digits=14, decimal_places=4, null=True)
    availability = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, db_index=True)
    # Filled on PostgreSQL only (a tsvector); SQLite searches title, body and SKU with LIKE.
    document = SearchVectorField(null=True, blank=True)
    indexed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "search entries"

    def __str__(self) -> str:
        return self.title
