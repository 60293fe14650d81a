"""The demo catalog, written set-based: ``catalog`` plans it in plain values, ``loader`` writes
it one SQL statement per table and chunk, ``seed`` puts the two together."""

from bundles.seeding.seed import SeedResult, demo_catalog_delete, demo_catalog_seed

__all__ = ["SeedResult", "demo_catalog_delete", "demo_catalog_seed"]
