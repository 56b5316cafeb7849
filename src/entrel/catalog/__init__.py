"""Catalog input and entity extraction."""

from entrel.catalog.entity import Entity, EntityType
from entrel.catalog.reader import CatalogError, CatalogItem, iter_items, parse_attributes, read_catalog

__all__ = ["CatalogError", "CatalogItem", "Entity", "EntityType", "iter_items", "parse_attributes", "read_catalog"]
