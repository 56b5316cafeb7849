"""Extract job: catalog -> entities per item, with the vocabulary learned from it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from entrel.catalog import CatalogItem, Entity, iter_items, read_catalog
from entrel.catalog.extractor import EntityExtractor, Vocabulary
from entrel.config import Settings

__all__ = ["ExtractedCatalog", "run"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractedCatalog:
    items: list[CatalogItem]
    # Entities of items[i], in the extractor's stable order.
    entities: list[list[Entity]]
    vocabulary: Vocabulary
    seconds: float

    def entity_table(self) -> list[Entity]:
        """Every distinct entity, sorted: the snapshot's entity ids are positions here."""
        return sorted({e for entities in self.entities for e in entities})


def run(settings: Settings, progress: bool = True) -> ExtractedCatalog:
    """Read the configured catalog and extract every item's entities."""
    started = time.perf_counter()
    items = list(iter_items(read_catalog(settings.catalog)))
    vocabulary = Vocabulary.learn(items)
    entities = EntityExtractor(settings.extraction, vocabulary).extract_many(items, progress=progress)
    seconds = time.perf_counter() - started
    log.info(
        "entities extracted",
        extra={"items": len(items), "entities": sum(map(len, entities)), "seconds": round(seconds, 1)},
    )
    return ExtractedCatalog(items, entities, vocabulary, seconds)
