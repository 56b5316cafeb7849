"""Catalog input and entity extraction."""

from entrel.catalog.entity import Entity, EntityType
from entrel.catalog.extractor import EntityExtractor, Vocabulary
from entrel.catalog.reader import CatalogError, CatalogItem, item_text, iter_items, parse_attributes, read_catalog

__all__ = [
    "CatalogError",
    "CatalogItem",
    "Entity",
    "EntityExtractor",
    "EntityType",
    "Vocabulary",
    "item_text",
    "iter_items",
    "parse_attributes",
    "read_catalog",
]
