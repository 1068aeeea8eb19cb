"""The open-dataset definitions the API serves: the publication core's (``pipelines.publish.datasets``).

The API reads only code, title, title_en, provider_department, abstract, open_attribute and fields
(name, type, label_zh, description, filterable) of each definition, so tests may hand it any object with those.
"""

from __future__ import annotations

from pipelines.publish.datasets import OPEN_ATTRIBUTES as OPEN_ATTRIBUTE_ZH
from pipelines.publish.datasets import load_datasets

__all__ = ["OPEN_ATTRIBUTE_ZH", "load_datasets"]
