"""Names of the accounts and roles ostwatch's services use on Kafka and ClickHouse.

One place for them, imported by the DDL generator (``infra/security.py``), the dashboards
(the Grafana data source logs in as ``GRAFANA_CLICKHOUSE_USER``) and the docs' examples.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# ClickHouse roles (infra/security.py renders their DDL).
INGEST_ROLE: Final = "ostwatch_ingest"  # the stream worker: migrations, archive, aggregates
AUDITOR_ROLE: Final = "ostwatch_auditor"  # read-only: the archive and the registry history
VIEWER_ROLE_PREFIX: Final = "ostwatch_viewer_"  # + province slug: read-only, that province only
READ_ONLY_PROFILE: Final = "ostwatch_read_only"  # readonly = 2: no writes, settings allowed

# The ClickHouse user the Grafana data source logs in as: a read-only viewer, granted the
# viewer role of the province the Grafana serves (never the ingest writer).
GRAFANA_CLICKHOUSE_USER: Final = "ostwatch_viewer"


def province_slug(province: str) -> str:
    """'Bắc Giang' → 'bac_giang': an identifier-safe spelling of a province name."""
    text = unicodedata.normalize("NFKD", province.replace("Đ", "D").replace("đ", "d"))
    ascii_text = text.encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text).strip("_")
    if not slug:
        raise ValueError("a province name needs at least one letter or digit")
    return slug


def viewer_role(province: str) -> str:
    """The read-only role of one province's viewers (its row policies carry the same name)."""
    return VIEWER_ROLE_PREFIX + province_slug(province)
