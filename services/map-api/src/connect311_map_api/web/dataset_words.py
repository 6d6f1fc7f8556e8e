"""The datasets' words (connect311_contracts.datasets) in the page's language.

The contract holds the English words; the catalog holds their translations, each with the
field as its context ("311 requests" is a layer's name and, lower case, a count's noun). The
list below is what `pybabel extract` sees; a test checks it against the contract's words.
"""

from __future__ import annotations

import functools
from typing import Any

from connect311_contracts.datasets import KNOWN_DATASETS
from connect311_map_api.web.i18n import translations

__all__ = ["WORD_FIELDS", "datasets_config"]

WORD_FIELDS = ("label", "item", "items", "kindLabel", "idLabel", "descriptionLabel")


def NP_(context: str, message: str) -> tuple[str, str]:  # "translate later", with a context
    """Mark a word for the catalog (keyword NP_:1c,2)."""
    return context, message


MARKED = (
    NP_("dataset label", "311 requests"),
    NP_("dataset item", "311 request"),
    NP_("dataset items", "311 requests"),
    NP_("dataset kindLabel", "Category"),
    NP_("dataset idLabel", "Request"),
    NP_("dataset descriptionLabel", "Description"),
    NP_("dataset label", "Code violations"),
    NP_("dataset item", "code violation case"),
    NP_("dataset items", "code violation cases"),
    NP_("dataset kindLabel", "Case type"),
    NP_("dataset idLabel", "Case"),
    NP_("dataset descriptionLabel", "Violations"),
    NP_("dataset label", "Crime"),
    NP_("dataset item", "crime incident"),
    NP_("dataset items", "crime incidents"),
    NP_("dataset kindLabel", "Offence"),
    NP_("dataset idLabel", "Incident"),
    NP_("dataset descriptionLabel", "Details"),
)


def _config(words: Any) -> dict[str, Any]:
    return {
        "label": words.label,
        "item": words.item,
        "items": words.items,
        "hasStatus": words.has_status,
        "symbol": words.symbol,
        "kindLabel": words.kind_label,
        "idLabel": words.id_label,
        "descriptionLabel": words.description_label,
    }


@functools.cache
def datasets_config(lang: str) -> dict[str, dict[str, Any]]:
    """How the scripts name and draw each known dataset, in `lang` (English as the fallback)."""
    translation = translations(lang)
    out: dict[str, dict[str, Any]] = {}
    for name, words in KNOWN_DATASETS.items():
        config = _config(words)
        for field in WORD_FIELDS:
            config[field] = translation.pgettext(f"dataset {field}", config[field])
        out[name] = config
    return out
