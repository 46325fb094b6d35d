"""Which (notifier, recipient) pairs one alert change goes to.

Planned once, when the change is first recorded, and stored with it: a later change of
settings or of the recipients CSV never re-addresses a delivery already promised.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ostwatch.settings import NotifyRoute, NotifySettings
from schemas.alerts import SEVERITY_RANK, AlertChange
from streams.notify.recipients import CommuneContact

log = logging.getLogger(__name__)

COMMUNE_KIND = "commune_notification"
# Channels that reach a person; the outbox is a local record and is never re-addressed.
PERSONAL = ("email", "webhook")


@dataclass(frozen=True)
class Target:
    notifier: str
    recipient: str
    fallback: bool = False  # a commune notification sent to the default recipient


def default_routes(settings: NotifySettings) -> tuple[NotifyRoute, ...]:
    """Everything to every configured notifier; e-mail from warning up, and every commune
    notification (the engine raises them as ``info``, but the law requires them sent)."""
    routes: list[NotifyRoute] = []
    if settings.outbox_enabled:
        routes.append(NotifyRoute(notifier="outbox"))
    if settings.webhook_enabled:
        routes.append(NotifyRoute(notifier="webhook"))
    if settings.email_enabled:
        routes.append(NotifyRoute(notifier="email", min_severity="warning"))
        routes.append(NotifyRoute(notifier="email", kinds=(COMMUNE_KIND,)))
    return tuple(routes)


def reaches_communes(routes: Sequence[NotifyRoute]) -> bool:
    """Whether every commune notification, whatever its severity, goes to a person."""
    return any(
        r.notifier in PERSONAL
        and ("*" in r.kinds or COMMUNE_KIND in r.kinds)
        and r.min_severity == "info"
        and "opened" in r.changes
        for r in routes
    )


def route_matches(route: NotifyRoute, change: AlertChange) -> bool:
    alert = change.alert
    return (
        ("*" in route.kinds or alert.kind in route.kinds)
        and SEVERITY_RANK[alert.severity] <= SEVERITY_RANK[route.min_severity]
        and change.change in route.changes
    )


class Router:
    """Routes from settings plus the default and commune recipients of each notifier."""

    def __init__(
        self,
        routes: Sequence[NotifyRoute],
        defaults: Mapping[str, Sequence[str]],
        communes: Mapping[str, CommuneContact] | None = None,
    ) -> None:
        unknown = sorted({r.notifier for r in routes} - set(defaults))
        if unknown:
            raise ValueError(
                f"route to notifier(s) not configured: {', '.join(unknown)} "
                "(set OSTWATCH_NOTIFY_WEBHOOK_URL / OSTWATCH_NOTIFY_SMTP_HOST, or drop the route)"
            )
        self.routes = tuple(routes)
        self.defaults = {name: tuple(recipients) for name, recipients in defaults.items()}
        self.communes = dict(communes or {})

    def plan(self, change: AlertChange) -> list[Target]:
        notifiers = list(dict.fromkeys(r.notifier for r in self.routes if route_matches(r, change)))
        if change.alert.kind != COMMUNE_KIND:
            return [Target(n, r) for n in notifiers for r in self.defaults[n]]
        contact = self.communes.get(str(change.alert.details.get("commune", "")))
        own = {"email": contact.emails, "webhook": contact.webhooks} if contact else {}
        reachable = any(own.get(n) for n in notifiers if n in PERSONAL)
        if not reachable and any(n in PERSONAL for n in notifiers):
            log.warning(
                "commune has no contact in the recipients CSV; sending to the default recipients",
                extra={
                    "alert_id": change.alert.alert_id,
                    "commune": change.alert.details.get("commune"),
                },
            )
        targets: list[Target] = []
        for name in notifiers:
            if name not in PERSONAL:
                targets += [Target(name, r) for r in self.defaults[name]]
            elif reachable:
                targets += [Target(name, r) for r in own.get(name, ())]
            else:
                targets += [Target(name, r, fallback=True) for r in self.defaults[name]]
        return targets
