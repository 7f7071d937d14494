"""A table-driven rule: completed tasks kill the controller caches a per-tenant table names.

The Python twin of ``rules-examples/task-controllers`` (same name, behaviour, configuration
and errors), so a tenant can swap one component for the other.

Shows: one generic component serving many tenants, each with its own table, read from the
rule's per-tenant configuration; key templates (``{run_id}``); and a missing or malformed
table reported as a configuration error (the host applies its failure policy) instead of a
crash.

Configuration (JSON text under two keys, e.g. ``tagbust eval --config task-controllers=FILE``
with ``{"rules": {...}, "cache_keys": {...}}``):
- ``rules``: ``{"build_climate": {"invalidates_cache": ["climate", "wepp"]}, ...}``
- ``cache_keys``: ``{"climate": "{run_id}:climate", "wepp": "{run_id}:wepp"}``

Event: a write to ``tasks`` whose ``status`` becomes ``completed``; each id is a task name,
and the context carries the template values (``run_id``).

Build: ``scripts/build-python-rules.sh`` (-> ``target/guests/python/task_controllers.wasm``).
"""

import json

from tagbust_guest import (
    Context,
    Decision,
    Level,
    Operation,
    Rule,
    RuleError,
    RuleInfo,
    WriteEvent,
    export_rule,
    render,
)


def _parse(ctx: Context, key: str, check):
    text = ctx.config(key)
    if text is None:
        ctx.log(Level.WARN, "rule table missing", {"key": key})
        raise RuleError.Config(f"no `{key}` table is configured for this tenant")
    try:
        return check(json.loads(text))
    except (ValueError, RecursionError) as e:
        ctx.log(Level.WARN, "rule table malformed", {"key": key})
        raise RuleError.Config(f"`{key}` is not a valid table: {e}") from None


def _object(value, what):
    if not isinstance(value, dict):
        raise ValueError(f"{what}: expected an object, found {type(value).__name__}")
    return value


def _rules(value):
    """``{task: {"invalidates_cache": [controller, ...]}}`` -> ``{task: [controller, ...]}``."""
    out = {}
    for task, rule in _object(value, "the table").items():
        controllers = _object(rule, f"task `{task}`").get("invalidates_cache")
        if not isinstance(controllers, list) or not all(isinstance(c, str) for c in controllers):
            raise ValueError(f"task `{task}`: `invalidates_cache` must be a list of strings")
        out[task] = controllers
    return out


def _cache_keys(value):
    """``{controller: template}``."""
    for controller, template in _object(value, "the table").items():
        if not isinstance(template, str):
            raise ValueError(f"controller `{controller}`: the template must be a string")
    return value


@export_rule
class TaskControllers(Rule):
    def __init__(self, rules, cache_keys):
        self.rules = rules
        self.cache_keys = cache_keys

    @classmethod
    def info(cls) -> RuleInfo:
        return RuleInfo(
            "task-controllers",
            "1.0.0",
            priority=20,
            resources=["tasks"],
            operations=[
                Operation.UPDATE,
                Operation.UPSERT,
                Operation.BULK_UPDATE,
                Operation.BULK_UPSERT,
            ],
            description="Kills controller caches named by the tenant's task table",
        )

    @classmethod
    def init(cls, ctx: Context) -> "TaskControllers":
        rules = _parse(ctx, "rules", _rules)
        cache_keys = _parse(ctx, "cache_keys", _cache_keys)
        return cls(rules, cache_keys)

    def evaluate(self, event: WriteEvent, ctx: Context) -> Decision:
        decision = Decision()
        if not event.changed_to("status", "completed"):
            return decision
        for task in event.ids:
            controllers = self.rules.get(task)
            if controllers is None:
                continue
            for controller in controllers:
                template = self.cache_keys.get(controller)
                if template is None:
                    ctx.log(
                        Level.WARN,
                        "controller has no cache key template",
                        {"controller": controller},
                    )
                    raise RuleError.Config(
                        f"task `{task}` names controller `{controller}`, which has no cache key"
                    )
                decision.key(render(template, event, task))
        return decision
