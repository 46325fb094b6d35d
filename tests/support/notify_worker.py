"""A delivery process for crash tests: records N alert changes (as the agent would after a
Kafka (re)delivery) and delivers them until killed.

    python -m tests.support.notify_worker DATA_DIR WEBHOOK_URL N
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ostwatch.settings import NotifySettings
from streams.notify.service import RawAlert, build_notify
from tests.support.notify import alert_change


async def main(data_dir: Path, webhook_url: str, count: int) -> None:
    settings = NotifySettings(
        webhook_url=webhook_url, webhook_rate_per_s=1000, backoff_base_s=0.2, backoff_max_s=1.0
    )
    service = build_notify(settings, data_dir)
    changes = [alert_change(i) for i in range(count)]
    await service.accept(
        [RawAlert(c.to_bytes(), "ostwatch.alerts", 0, i) for i, c in enumerate(changes)]
    )
    print("ready", flush=True)
    await service.run()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
