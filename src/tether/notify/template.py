"""Message text: ``spec.template`` (or the default) rendered in Jinja2's sandboxed environment.

Variables: ``event``, ``alert``, ``revision``, ``short_revision``, ``author``, ``subject``,
``link`` (the commit on its forge, when the source URL names one), ``count``, ``app`` (the first
app) and ``apps``, each app with ``namespace``, ``name``, ``reason``, ``message``, ``sync``,
``health``, ``failing`` (a list of ``[object, reason]``), ``drift``, ``labels`` and, for
Recovered, ``failure`` (``event``, ``reason``, ``message``, ``revision``, ``lasted``).
"""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from tether.controller.reports import AppReport
from tether.errors import UsageError
from tether.notify.policy import Message, Notice

DEFAULT_TEMPLATE = """\
{{ event }}: {% if count == 1 %}{{ app.namespace }}/{{ app.name }}{% else %}{{ count }} apps{% endif %}\
{% if short_revision %} at {{ short_revision }}{% endif %}\
{% if subject %} ("{{ subject }}"{% if author %} by {{ author }}{% endif %}){% endif %}
{% for a in apps %}
- {{ a.namespace }}/{{ a.name }}{% if a.reason %}: {{ a.reason }}{% endif %}\
{% if a.message %} {{ a.message }}{% endif %}\
{% for obj, why in a.failing %}
  - {{ obj }}: {{ why }}{% endfor %}\
{% if a.failure %}
  recovered from {{ a.failure.event }}{% if a.failure.reason %} ({{ a.failure.reason }}){% endif %} \
after {{ a.failure.lasted }}{% endif %}\
{% endfor %}
{% if link %}{{ link }}{% endif %}"""


@functools.cache
def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(autoescape=False, trim_blocks=False, keep_trailing_newline=False)


def lasted(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def commit_link(report: AppReport) -> str:
    from tether.forge import forge_repo

    try:
        return forge_repo(report.source_url).commit_link(report.revision)
    except Exception:  # not a known forge: no link
        return ""


def _app(notice: Notice) -> dict[str, Any]:
    r = notice.report
    entry: dict[str, Any] = {
        "namespace": r.namespace,
        "name": r.name,
        "reason": r.reason,
        "message": r.message,
        "sync": r.sync,
        "health": r.health,
        "failing": [list(f) for f in r.failing],
        "drift": list(r.drift),
        "labels": dict(r.labels),
        "revision": r.revision,
        "failure": None,
    }
    if notice.failure is not None:
        f = notice.failure
        entry["failure"] = {
            "event": f.event,
            "reason": f.report.reason,
            "message": f.report.message,
            "revision": f.report.revision,
            "lasted": lasted(notice.at - f.since),
        }
    return entry


def context(message: Message) -> dict[str, Any]:
    first = message.notices[0].report
    apps = [_app(n) for n in message.notices]
    return {
        "event": message.event,
        "alert": message.alert.name,
        "revision": message.revision,
        "short_revision": message.revision[:12],
        "author": first.author,
        "subject": first.subject,
        "link": commit_link(first),
        "count": len(apps),
        "app": apps[0],
        "apps": apps,
    }


def title(message: Message) -> str:
    first = message.notices[0].report
    who = f"{first.namespace}/{first.name}" if len(message.notices) == 1 else f"{len(message.notices)} apps"
    at = f" at {message.revision[:12]}" if message.revision else ""
    return f"[tether] {message.event}: {who}{at}"


def check_template(source: str, where: str) -> None:
    """Refuse a template that does not parse, naming the Alert and the line."""
    try:
        _environment().parse(source)
    except TemplateError as error:
        line = getattr(error, "lineno", None)
        raise UsageError(f"{where}: spec.template{f' line {line}' if line else ''}: {error}") from None


def render(message: Message) -> str:
    """The body; a template that fails while rendering falls back to the default, saying so."""
    source = message.alert.template or DEFAULT_TEMPLATE
    data = context(message)
    try:
        return _environment().from_string(source).render(data).strip()
    except TemplateError as error:
        body = _environment().from_string(DEFAULT_TEMPLATE).render(data).strip()
        return f"{body}\n(Alert {message.alert.namespace}/{message.alert.name}: spec.template failed: {error})"


__all__ = ["DEFAULT_TEMPLATE", "check_template", "commit_link", "context", "lasted", "render", "title"]
