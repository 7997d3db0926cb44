"""What a change to a stack's config does to people: who gains or loses which model, limit or price.

    python -m commands.access_diff --stack dev --base origin/main          # a ref vs the working tree
    python -m commands.access_diff --stack dev --base-dir ../base --usage last-month.csv

Both states are loaded by their own tree's real loader (harness.program.typed_config: the
project file, the stack file and the defaults of that tree's components/config/model.py), so a
change of a default shows as well as a change of the stack file; then both are compared as
typed config (components.config.StackConfig), section by section (SECTIONS). Markdown, for a
pull request comment, led by a hidden marker per stack that the workflow finds the comment by.

`--usage` takes the usage export (commands/usage.py, CSV or JSON): each changed price then
shows what that usage would have cost before and after.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from components.access.tiers import priorities, stack_budget_caps
from components.config import ModelConfig, Price, Rate, StackConfig, TierConfig
from components.config.model import Budget
from components.config.types import window_seconds

PROJECT_DIR = Path(__file__).resolve().parent.parent
K = TypeVar("K")
TIMES = "\N{MULTIPLICATION SIGN}"
TO = "\N{EN DASH}"

# Run in a tree (cwd) with that tree's code: its loader and defaults read its own files
# (harness/program.py PROJECT_DIR is the tree it lies in). The dump leaves out the secret keys
# (never needed here) and, of a model served by another, the keys it did not set: those are
# server keys the served model must not carry, which the validator of the model reading the
# dump refuses (components/config/model.py ModelConfig._served_by_fits).
_DUMP = """
import json, sys
from components.config import ConfigError
from harness.program import typed_config
try:
    config = typed_config(sys.argv[1])
except ConfigError as error:
    sys.exit(str(error))
secret = {"hugging_face_token", "limitador_redis_url"}
data = json.loads(config.model_dump_json(by_alias=True, exclude=secret))
for entry, model in zip(data["models"], config.models):
    if getattr(model, "served_by", None):
        for key, field in model.model_fields.items():
            if key not in model.model_fields_set:
                entry.pop(field.alias or key, None)
print(json.dumps(data))
"""


class LoadError(RuntimeError):
    """A side's config could not be loaded (refused by its loader, or no such tree)."""


def marker(stack: str) -> str:
    """The hidden first line the workflow finds a stack's comment by (.github/workflows/access-diff.yml)."""
    return f"<!-- maas-access-diff:{stack} -->"


def load_tree(tree: Path, stack: str) -> StackConfig | None:
    """`stack`'s config as `tree`'s own code loads it; None when the tree has no such stack."""
    if not (tree / f"Pulumi.{stack}.yaml").is_file():
        return None
    done = subprocess.run(
        [sys.executable, "-c", _DUMP, stack], cwd=tree, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise LoadError(f"{tree}: stack '{stack}' does not load:\n{done.stderr.strip()}")
    return StackConfig.model_validate_json(done.stdout)


def extract_ref(repo: Path, ref: str, into: Path) -> Path:
    """The tree of `ref`, written under `into`. `git archive <tree-ish>` without paths writes
    every file of the current directory's tree, as tar by default (git Documentation/
    git-archive.adoc, OPTIONS <path> and --format), so it runs at the repository's top."""
    top = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True
    ).stdout.strip()
    done = subprocess.run(["git", "-C", top, "archive", ref], capture_output=True, check=False)
    if done.returncode != 0:
        raise LoadError(f"git archive {ref}: {done.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        archive.extractall(into, filter="data")
    # The project may sit below the repository's top (a monorepo): the same place in the ref.
    return into / Path(repo).resolve().relative_to(Path(top).resolve())


# --- usage ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Used:
    """What one row of the usage export (commands/usage.py FIELDS) spent."""

    tier: str
    model: str
    requests: int
    tokens: int


def read_usage(path: Path) -> list[Used]:
    """The usage export, CSV or JSON, as commands/usage.py render() writes it."""
    text = path.read_text()
    rows = json.loads(text) if text.lstrip().startswith("[") else list(csv.DictReader(io.StringIO(text)))
    return [Used(r["tier"], r["model"], int(r["requests"]), int(r["tokens"])) for r in rows]


def cost(price: Price, requests: int, tokens: int) -> float:
    """What usage costs at `price`, as the chargeback rules price it (per request, per 1,000 tokens)."""
    return requests * price.per_request + tokens / 1000 * price.per_thousand_tokens


# --- what the config says -----------------------------------------------------------------


def reachable(config: StackConfig) -> set[tuple[str, str]]:
    """(tier, model) pairs the config admits: the table the AuthPolicy's model rules are
    compiled from (ModelConfig.admits, components/access/tiers.py model_rules)."""
    return {(t.name, m.name) for t in config.tiers for m in config.models if m.admits(t.name)}


def limits(tier: TierConfig) -> dict[str, tuple[Rate, ...]]:
    """A tier's limits, by name: each one or more windows, all enforced at once."""
    return {"requests": tier.requests, "tokens": tier.tokens}


def quotas(model: ModelConfig) -> dict[tuple[str, str], tuple[Rate, ...]]:
    """A model's own quotas, by (tier, limit): what it sets in place of the tier's limit."""
    return {
        (tier, kind): rates
        for tier, own in model.limits.items()
        for kind, rates in (("requests", own.requests), ("tokens", own.tokens))
        if rates is not None
    }


def caps(tier: TierConfig) -> dict[str, int]:
    """What one request of the tier may ask for, and the self-service keys a user may hold."""
    return {
        "max tokens per request": tier.max_tokens,
        "max choices per request": tier.max_choices,
        "max live keys per user": tier.keys.max_keys,
        "max key lifetime (days)": tier.keys.max_lifetime_days,
    }


def routing(model: ModelConfig) -> dict[str, str]:
    """How a model is reached and by what."""
    return {
        "host": model.host,
        "shared name": model.served_name,
        "scheduling": model.scheduling,
        "served by": model.served_by or "its own server",
    }


def scaling(model: ModelConfig) -> str:
    if model.served_by is not None:
        return f"none of its own (served by `{model.served_by}`)"
    if model.autoscaling is not None:
        bounds = model.autoscaling
        return (
            f"{bounds.min_replicas}{TO}{bounds.max_replicas} replicas "
            f"(one more above {bounds.queue_depth} waiting per replica)"
        )
    return f"{model.replicas} replica{'s' if model.replicas != 1 else ''}"


# --- rendering ----------------------------------------------------------------------------


def _code(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _number(value: float) -> str:
    return f"{value:,.6g}" if value != int(value) else f"{int(value):,}"


def factor(before: float, after: float) -> str:
    """`(x0.5)` with a multiplication sign: how many times `before` the `after` is."""
    if before == 0:
        return "(from 0)"
    return f"({TIMES}{after / before:.3g})"


def _rate(rate: Rate) -> str:
    return f"{_number(rate.limit)} per {rate.window}"


def _rates(rates: Sequence[Rate]) -> str:
    return " and ".join(_rate(r) for r in rates)


def _by_window(rates: Sequence[Rate]) -> list[Rate]:
    return sorted(rates, key=lambda r: window_seconds(r.window))


def rates_change(what: str, a: Sequence[Rate], b: Sequence[Rate]) -> list[str]:
    """Lines for one limit whose windows changed: the same number of windows compares them
    shortest with shortest (a window of another length per second); otherwise windows are
    matched by length, and the others are added or removed."""
    if tuple(a) == tuple(b):
        return []
    if len(a) == len(b):
        return [
            f"- {what}: {_rate(x)} → {_rate(y)} "
            f"{factor(x.limit / window_seconds(x.window), y.limit / window_seconds(y.window))}"
            for x, y in zip(_by_window(a), _by_window(b), strict=True)
            if x != y
        ]
    old = {window_seconds(r.window): r for r in a}
    new = {window_seconds(r.window): r for r in b}
    lines = []
    for seconds in sorted(old.keys() | new.keys()):
        x, y = old.get(seconds), new.get(seconds)
        if x is None and y is not None:
            lines.append(f"- {what}: window {y.window} added, {_rate(y)}")
        elif y is None and x is not None:
            lines.append(f"- {what}: window {x.window} removed (was {_rate(x)})")
        elif x is not None and y is not None and x.limit != y.limit:
            lines.append(f"- {what}: {_rate(x)} → {_rate(y)} {factor(x.limit, y.limit)}")
    return lines


def _ordered(before: Iterable[K], after: Iterable[K]) -> list[K]:
    """Names of both sides, the new side's order first, then what only the old one had."""
    after = list(after)
    return [*after, *(name for name in before if name not in after)]


Compare = Callable[[StackConfig, StackConfig, Sequence[Used] | None], list[str]]


def models_section(before: StackConfig, after: StackConfig, usage: Sequence[Used] | None) -> list[str]:
    old = {m.name: m for m in before.models}
    new = {m.name: m for m in after.models}
    was, now = reachable(before), reachable(after)
    lines = []
    for name in _ordered(old, new):
        if name not in old:
            tiers = _code(t for t in after.tier_names if (t, name) in now)
            lines.append(f"- model `{name}` added, for {tiers}")
        elif name not in new:
            tiers = _code(t for t in before.tier_names if (t, name) in was)
            lines.append(f"- model `{name}` removed (was for {tiers})")
    # Gains and losses, one line for every group of models that changed alike.
    alike: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = defaultdict(list)
    either = _ordered(before.tier_names, after.tier_names)
    for name in new:
        if name in old:
            gained = tuple(t for t in either if (t, name) in now - was)
            lost = tuple(t for t in either if (t, name) in was - now)
            if gained or lost:
                alike[gained, lost].append(name)
    for (gained, lost), names in alike.items():
        changes = [f"{_code(gained)} gain{'s' if len(gained) == 1 else ''} access" if gained else "",
                   f"{_code(lost)} lose{'s' if len(lost) == 1 else ''} access" if lost else ""]  # fmt: skip
        lines.append(f"- {_code(names)}: {'; '.join(c for c in changes if c)}")
    for name in new:
        if name in old:
            was_routed, now_routed = routing(old[name]), routing(new[name])
            lines.extend(
                f"- `{name}` {key}: `{was_routed[key]}` → `{now_routed[key]}`"
                for key in now_routed
                if was_routed[key] != now_routed[key]
            )
    return lines


def users_section(before: StackConfig, after: StackConfig, usage: Sequence[Used] | None) -> list[str]:
    old = {u.name: u.tier for u in before.users}
    new = {u.name: u.tier for u in after.users}
    lines = []
    for name in _ordered(old, new):
        if name not in old:
            lines.append(f"- user `{name}` added, tier `{new[name]}`")
        elif name not in new:
            lines.append(f"- user `{name}` removed (was tier `{old[name]}`)")
        elif old[name] != new[name]:
            lines.append(f"- user `{name}` moved: tier `{old[name]}` → `{new[name]}`")
    return lines


def tiers_section(before: StackConfig, after: StackConfig, usage: Sequence[Used] | None) -> list[str]:
    old = {t.name: t for t in before.tiers}
    new = {t.name: t for t in after.tiers}
    lines = []
    for name in _ordered(old, new):
        if name not in old:
            said = ", ".join(f"{key} {_rates(rates)}" for key, rates in limits(new[name]).items())
            lines.append(f"- tier `{name}` added: {said}")
            continue
        if name not in new:
            lines.append(f"- tier `{name}` removed")
            continue
        was_limits, now_limits = limits(old[name]), limits(new[name])
        for key in now_limits:
            lines.extend(rates_change(f"`{name}` {key}", was_limits[key], now_limits[key]))
        was_caps, now_caps = caps(old[name]), caps(new[name])
        lines.extend(
            f"- `{name}` {key}: {_number(was_caps[key])} → {_number(now_caps[key])} "
            f"{factor(was_caps[key], now_caps[key])}"
            for key in now_caps
            if was_caps[key] != now_caps[key]
        )
    return lines


def quotas_section(before: StackConfig, after: StackConfig, usage: Sequence[Used] | None) -> list[str]:
    """Each model's own quota per tier and limit, before → after; a quota added or removed
    compares with the tier's limit it replaces or falls back to."""
    old_models = {m.name: m for m in before.models}
    old_tiers = {t.name: limits(t) for t in before.tiers}
    new_tiers = {t.name: limits(t) for t in after.tiers}
    lines = []
    for model in after.models:
        was = quotas(old_models[model.name]) if model.name in old_models else {}
        now = quotas(model)
        for tier, kind in _ordered(was, now):
            what = f"`{model.name}` for `{tier}` {kind}"
            if (tier, kind) not in was:
                tiers = old_tiers.get(tier)
                instead = f" (the tier's {_rates(tiers[kind])} before)" if tiers else ""
                lines.append(f"- {what}: a quota of its own, {_rates(now[tier, kind])}{instead}")
            elif (tier, kind) not in now:
                tiers = new_tiers.get(tier)
                back = f"; the tier's {_rates(tiers[kind])} applies" if tiers else ""
                lines.append(f"- {what}: its quota removed (was {_rates(was[tier, kind])}){back}")
            else:
                lines.extend(rates_change(what, was[tier, kind], now[tier, kind]))
    return lines


def _budget(budget: Budget, currency: str) -> str:
    return f"{_number(budget.amount)} {currency} per {budget.window}"


def _cap(config: StackConfig, kind: str, name: str, seconds: float) -> int | None:
    """The request cap (limit per user) the tier policies hold a budget's window to, as the
    program declares it (components/access/tiers.py budget_caps); None: alerts only."""
    for cap in stack_budget_caps(config):
        if cap.user == name if kind == "user" else cap.user is None and cap.tier == name:
            for limit, window in cap.rates:
                if window_seconds(window) == seconds:
                    return limit
    return None


def _held(cap: int | None) -> str:
    return f"a request cap of {_number(cap)} per user" if cap is not None else "alerts only, no cap"


def _cap_change(was: int | None, now: int | None) -> str:
    change = f"{_held(was)} → {_held(now)}"
    return f"{change} {factor(was, now)}" if was is not None and now is not None else change


def budgets_section(before: StackConfig, after: StackConfig, usage: Sequence[Used] | None) -> list[str]:
    """Money budgets of tiers and users, each window before → after, with what holds it: a
    cap where the prices make one exact, else alerts only; and the fractions alerted at."""
    was_currency, currency = before.prices.currency, after.prices.currency
    lines = []
    for kind in ("tier", "user"):
        old = getattr(before.prices.budgets, f"{kind}s")
        new = getattr(after.prices.budgets, f"{kind}s")
        for name in _ordered(old, new):
            a = {window_seconds(b.window): b for b in old.get(name, ())}
            b = {window_seconds(x.window): x for x in new.get(name, ())}
            for seconds in sorted(a.keys() | b.keys()):
                x, y = a.get(seconds), b.get(seconds)
                was, now = _cap(before, kind, name, seconds), _cap(after, kind, name, seconds)
                what = f"- {kind} `{name}` budget"
                if x is None and y is not None:
                    lines.append(f"{what}: {_budget(y, currency)} added, {_held(now)}")
                elif y is None and x is not None:
                    lines.append(f"{what}: {_budget(x, was_currency)} removed, {_held(was)} before")
                elif x is not None and y is not None:
                    changes = []
                    if (x.amount, was_currency) != (y.amount, currency):
                        amounts = f"{_budget(x, was_currency)} → {_budget(y, currency)}"
                        changes.append(f"{amounts} {factor(x.amount, y.amount)}")
                    if was != now:
                        changes.append(_cap_change(was, now))
                    if changes:
                        lines.append(f"{what} per {y.window}: {'; '.join(changes)}")
    alerts = before.prices.budgets.alert_at, after.prices.budgets.alert_at
    if alerts[0] != alerts[1]:
        lines.append(
            f"- alerts at {', '.join(f'{f:g}' for f in alerts[0])} → {', '.join(f'{f:g}' for f in alerts[1])}"
        )
    return lines


def _price_change(a: Price, b: Price, was_currency: str, currency: str) -> str:
    """The parts of a price that change, each before → after with its factor."""
    return ", ".join(
        f"{label} {_number(x)} {was_currency} → {_number(y)} {currency} {factor(x, y)}"
        for label, x, y in (
            ("per request", a.per_request, b.per_request),
            ("per 1k tokens", a.per_thousand_tokens, b.per_thousand_tokens),
        )
        if x != y
    )


def prices_section(before: StackConfig, after: StackConfig, usage: Sequence[Used] | None) -> list[str]:
    """The currency; then each (tier, model) pair reachable on both sides whose price changes,
    grouped by tier and change; with the usage export, what that usage cost at the old price
    and would at the new."""
    was_currency, currency = before.prices.currency, after.prices.currency
    lines = [f"- currency: {was_currency} → {currency}"] if was_currency != currency else []
    both = reachable(before) & reachable(after)
    alike: dict[tuple[str, Price, Price], list[str]] = defaultdict(list)
    for tier in after.tier_names:
        for model in after.models:
            if (tier, model.name) in both:
                a, b = before.prices.price(tier, model.name), after.prices.price(tier, model.name)
                if a != b:
                    alike[tier, a, b].append(model.name)
    for (tier, a, b), models in alike.items():
        line = f"- `{tier}` on {_code(models)}: {_price_change(a, b, was_currency, currency)}"
        if usage is not None:
            used = [u for u in usage if u.tier == tier and u.model in models]
            then = sum(cost(a, u.requests, u.tokens) for u in used)
            now = sum(cost(b, u.requests, u.tokens) for u in used)
            line += (
                f"; the usage export's {_number(sum(u.requests for u in used))} requests and "
                f"{_number(sum(u.tokens for u in used))} tokens: {then:,.2f} {was_currency} → "
                f"{now:,.2f} {currency}"
            )
        lines.append(line)
    return lines


def priority_section(before: StackConfig, after: StackConfig, usage: Sequence[Used] | None) -> list[str]:
    """A tier's place in pooled models' flow control (components/access/tiers.py priorities),
    only where a side has a pooled model."""
    if not before.pooled_models and not after.pooled_models:
        return []
    old, new = priorities(before.tiers), priorities(after.tiers)
    pooled = _code(m.name for m in after.pooled_models) or "none"
    return [
        f"- `{tier}`: {old.get(tier, '—')} → {new.get(tier, '—')} (higher is served first; pooled: {pooled})"
        for tier in _ordered(old, new)
        if old.get(tier) != new.get(tier)
    ]


def scaling_section(before: StackConfig, after: StackConfig, usage: Sequence[Used] | None) -> list[str]:
    old = {m.name: scaling(m) for m in before.models}
    return [
        f"- `{m.name}`: {old[m.name]} → {scaling(m)}"
        for m in after.models
        if m.name in old and old[m.name] != scaling(m)
    ]


# Title and section, in the comment's order; a new kind of change is one more function here.
SECTIONS: tuple[tuple[str, Compare], ...] = (
    ("Models", models_section),
    ("Users", users_section),
    ("Tier limits", tiers_section),
    ("Model quotas", quotas_section),
    ("Prices", prices_section),
    ("Budgets", budgets_section),
    ("Scheduling priority", priority_section),
    ("Scaling", scaling_section),
)


def render(
    stack: str, before: StackConfig | None, after: StackConfig, usage: Sequence[Used] | None = None
) -> str:
    """The comment for `stack`: its marker, a title, then each section with changes."""
    head = [marker(stack), f"### Access diff: stack `{stack}`", ""]
    if before is None:
        return "\n".join([*head, "A new stack: everything in it is new.", ""])
    body = []
    for title, section in SECTIONS:
        lines = section(before, after, usage)
        if lines:
            body.extend([f"**{title}**", "", *lines, ""])
    if not body:
        return "\n".join(
            [*head, "No change to models, users, limits, quotas, prices, budgets, priority or scaling.", ""]
        )
    return "\n".join([*head, *body])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", required=True)
    base = parser.add_mutually_exclusive_group(required=True)
    base.add_argument("--base", metavar="REF", help="the base: a git ref of the head's repository")
    base.add_argument("--base-dir", type=Path, help="the base: a checkout of it")
    parser.add_argument("--head-dir", type=Path, default=PROJECT_DIR, help="the head (default: this tree)")
    parser.add_argument("--usage", type=Path, help="a usage export (python -m commands.usage), CSV or JSON")
    args = parser.parse_args(argv)
    usage = read_usage(args.usage) if args.usage else None
    try:
        after = load_tree(args.head_dir, args.stack)
        if after is None:
            raise LoadError(f"{args.head_dir}: no Pulumi.{args.stack}.yaml")
        if args.base_dir is not None:
            before = load_tree(args.base_dir, args.stack)
        else:
            with tempfile.TemporaryDirectory() as scratch:
                before = load_tree(extract_ref(args.head_dir, args.base, Path(scratch)), args.stack)
    except LoadError as exc:
        print(exc, file=sys.stderr)
        return 1
    sys.stdout.write(render(args.stack, before, after, usage))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
