"""Auction scenarios: a query, advertisers with briefs and bids, few-shot prompts.

A scenario is a readable YAML file in ``data/scenarios/`` (notebooks/theory.md §6)::

    name: hawaii
    query: Vacations in Hawaii
    examples:                 # few-shot example ads (optional: defaults below)
      - brand: Trail Runner Shoes
        about: running shoes for hikers
        query: hiking shoes   # only needed with a platform agent or a query line
        ad: Conquer every mountain trail in Trail Runner Shoes.
    advertisers:
      - name: Alpha Airlines
        brief: an airline with direct flights to Hawaii   # or: prompt: <full prompt>
        bid: 1.0
    platform:                 # optional agent for the user's query
      name: Platform
      bid: 1.0
    query_line: "Query: {query}"   # optional: a line above every example and the open line
    rule: linear              # optional (linear | log_linear | highest_bid)
    max_new_tokens: 32        # optional
    stop: ["\n"]             # optional stop strings

Every agent is a prompt over one base model.  The default model is a base (not
instruction-tuned) LLM, so prompts are few-shot: the example ads written as
``"Ad for <brand>, <what it is>:"`` followed by one line of copy, then the agent's own
open line ``"Ad for <name>, <brief>:"``.  The platform agent's open line is
``'Ad for the search "<query>":'`` after the same examples written with their queries:
it prefers copy relevant to the user's query, whoever it names.  A ``query_line`` such as
``"Query: {query}"`` is written above every example (with the example's query) and above
the open line (with the scenario's query): it gives the examples a context.

**Joint examples** (the design of the joint creatives, notebook 06).  Instead of
``examples``, a scenario may give ``joint_examples``: ad *templates* with one slot per
role, e.g. ``"Travel to Rome with {travel} and spend the weekend at {stay}."``, and for
each slot the example brand that fills it (``brand``, ``about``) and a ``generic`` filler.
An advertiser owns one ``slot``; its prompt shows every template with ITS slot filled by
the example brand (and that brand's ``"Ad for <brand>, <about>:"`` head line) and every
other slot filled generically.  So all agents share one sentence template, each names only
its own kind of brand, and each agent's continuation is the natural place for the other's
brand to stop and its own to begin.  A platform agent sees every slot generic::

    query_line: "Query: {query}"
    joint_examples:
      - query: Weekend in Rome
        ad: Travel to Rome with {travel} and spend the weekend at {stay} near the Colosseum.
        slots:
          travel: {brand: Roma Express, about: a rail company with trains to Rome, generic: a fast train}
          stay: {brand: Hotel Roma, about: a hotel in Rome, generic: a charming hotel}
    advertisers:
      - {name: Alpha Airlines, brief: an airline with direct flights to Hawaii, slot: travel, bid: 1.0}
      - {name: Beta Resort, brief: a beach resort in Hawaii, slot: stay, bid: 1.0}

Errors name the file and the field, e.g.
``"hawaii.yaml: advertisers[1].bid: must be a finite non-negative number, got 'abc'"``.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from ..theory.aggregation import RULES
from ..theory.validation import check_bid

__all__ = [
    "names_every_brand",
    "one_generic_phrase",
    "without_query_lines",
    "DEFAULT_EXAMPLES",
    "AdExample",
    "AgentSpec",
    "JointExample",
    "Scenario",
    "ScenarioError",
    "SlotFiller",
    "advertiser_prompt",
    "list_scenarios",
    "load_scenario",
    "platform_prompt",
    "scenario_from_dict",
    "scenarios_dir",
]


class ScenarioError(ValueError):
    """A scenario file or dict is malformed; the message names the file and field."""


@dataclass(frozen=True)
class AdExample:
    """One few-shot example ad: ``brand``, what it is (``about``), the ``ad`` copy, and
    optionally the search ``query`` it answers (used in the platform agent's prompt)."""

    brand: str
    about: str
    ad: str
    query: str | None = None


DEFAULT_EXAMPLES: tuple[AdExample, ...] = (
    AdExample("Trail Runner Shoes", "running shoes for hikers",
              "Conquer every mountain trail in Trail Runner Shoes.", "hiking shoes"),
    AdExample("Luigi's Pizza", "a pizzeria in New York",
              "Grab a hot, cheesy slice at Luigi's Pizza tonight.", "pizza in New York"),
)
"""Built-in few-shot examples used when a scenario gives none."""


@dataclass(frozen=True)
class SlotFiller:
    """What fills one slot of a :class:`JointExample`: the example ``brand`` (with what it is,
    ``about``) in the slot owner's own example, and a ``generic`` phrase in everyone else's."""

    brand: str
    about: str
    generic: str


@dataclass(frozen=True)
class JointExample:
    """One few-shot ad template with a slot per role (see the module docstring)."""

    query: str
    ad: str
    slots: Mapping[str, SlotFiller]

    def render(self, own: str | None) -> str:
        """The ad with slot ``own`` filled by its example brand and every other slot generic."""
        return self.ad.format(**{k: (v.brand if k == own else v.generic) for k, v in self.slots.items()})

    def example_for(self, slot: str) -> AdExample:
        """The few-shot example that the owner of ``slot`` sees."""
        filler = self.slots[slot]
        return AdExample(brand=filler.brand, about=filler.about, ad=self.render(slot), query=self.query)

    def generic_example(self) -> AdExample:
        """The example a platform agent sees: every slot generic."""
        return AdExample(brand="", about="", ad=self.render(None), query=self.query)


@dataclass(frozen=True)
class AgentSpec:
    """One agent of a scenario: its display ``name``, full ``prompt``, ``bid`` and ``role``
    (``"advertiser"`` or ``"platform"``); ``brief`` is the advertiser's description and ``slot``
    the slot of the joint examples it owns."""

    name: str
    prompt: str
    bid: float
    role: str = "advertiser"
    brief: str | None = None
    slot: str | None = None


@dataclass(frozen=True)
class Scenario:
    """A validated auction scenario (see the module docstring for the file format)."""

    name: str
    query: str
    agents: tuple[AgentSpec, ...]
    description: str = ""
    examples: tuple[AdExample, ...] = DEFAULT_EXAMPLES
    joint_examples: tuple[JointExample, ...] = ()
    query_line: str | None = None
    rule: str = "linear"
    max_new_tokens: int = 32
    stop: tuple[str, ...] = ("\n",)
    model: str | None = None
    source: str = field(default="<dict>", compare=False)

    @property
    def names(self) -> list[str]:
        """Agents' names, in auction order."""
        return [a.name for a in self.agents]

    @property
    def prompts(self) -> list[str]:
        """Agents' full few-shot prompts, in auction order."""
        return [a.prompt for a in self.agents]

    @property
    def bids(self) -> list[float]:
        """Agents' bids, in auction order."""
        return [a.bid for a in self.agents]

    def with_bids(self, bids: Sequence[float] | Mapping[str, float]) -> "Scenario":
        """A copy with new bids: a sequence in agent order, or a mapping name -> bid
        (agents not named keep their bid)."""
        if isinstance(bids, Mapping):
            unknown = set(bids) - set(self.names)
            if unknown:
                raise ScenarioError(f"{self.source}: bids name unknown agents {sorted(unknown)}; "
                                    f"agents are {self.names}")
            new = [bids.get(a.name, a.bid) for a in self.agents]
        else:
            new = list(bids)
            if len(new) != len(self.agents):
                raise ScenarioError(f"{self.source}: {len(new)} bids given for {len(self.agents)} agents "
                                    f"{self.names}")
        checked = [_bid(b, self.source, f"bids[{i}]") for i, b in enumerate(new)]
        if not any(b > 0 for b in checked):
            raise ScenarioError(f"{self.source}: bids: all bids are zero")
        return replace(self, agents=tuple(replace(a, bid=b) for a, b in zip(self.agents, checked)))


# --------------------------------------------------------------------------- prompts


def _example_block(examples: Sequence[AdExample], *, by_query: bool, query_line: str | None) -> str:
    lines = []
    for ex in examples:
        context = f"{query_line.format(query=ex.query)}\n" if query_line and ex.query else ""
        head = f'Ad for the search "{ex.query}":' if by_query else f"Ad for {ex.brand}, {ex.about}:"
        lines.append(f"{context}{head}\n{ex.ad}\n\n")
    return "".join(lines)


def advertiser_prompt(name: str, brief: str, examples: Sequence[AdExample] = DEFAULT_EXAMPLES, *,
                      query: str | None = None, query_line: str | None = None) -> str:
    """Few-shot prompt of an advertiser (notebooks/theory.md §6).

    ``"Ad for <brand>, <about>:\n<ad>\n\n"`` for each example, then the open line
    ``"Ad for <name>, <brief>:\n"``; the model continues with one line of copy.  With a
    ``query_line`` (e.g. ``"Query: {query}"``), that line, formatted with the example's query,
    heads every example, and formatted with ``query`` heads the open line.
    """
    if not name.strip() or not brief.strip():
        raise ValueError("advertiser name and brief must be non-empty")
    context = f"{query_line.format(query=query)}\n" if query_line and query else ""
    return (_example_block(examples, by_query=False, query_line=query_line)
            + f"{context}Ad for {name.strip()}, {brief.strip()}:\n")


def platform_prompt(query: str, examples: Sequence[AdExample] = DEFAULT_EXAMPLES, *,
                    query_line: str | None = None) -> str:
    """Few-shot prompt of the platform agent that represents the user's query.

    The examples are written as ``'Ad for the search "<query>":\n<ad>'``, then the open line
    ``'Ad for the search "<query>":\n'``; every example needs a ``query``.
    """
    if not query.strip():
        raise ValueError("query must be non-empty")
    missing = [ex.brand or ex.ad for ex in examples if not ex.query]
    if missing:
        raise ValueError(f"examples {missing} have no 'query', needed for the platform agent's prompt")
    context = f"{query_line.format(query=query.strip())}\n" if query_line else ""
    return (_example_block(examples, by_query=True, query_line=query_line)
            + f'{context}Ad for the search "{query.strip()}":\n')


# --------------------------------------------------------------------------- validation

_TOP_KEYS = {"name", "description", "query", "examples", "joint_examples", "query_line", "advertisers", "platform",
             "rule", "max_new_tokens", "stop", "model"}


def _err(source: str, where: str, msg: str) -> ScenarioError:
    return ScenarioError(f"{source}: {where}: {msg}")


def _text(value: Any, source: str, where: str, *, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise _err(source, where, "is missing")
        return None
    if not isinstance(value, str):
        raise _err(source, where, f"must be a string, got {type(value).__name__} {value!r}")
    if not value.strip():
        raise _err(source, where, "must be a non-empty string")
    return value.strip()


def _bid(value: Any, source: str, where: str) -> float:
    try:
        return check_bid(value, where)
    except (TypeError, ValueError):
        raise _err(source, where, f"must be a finite non-negative number, got {value!r}") from None


def _mapping(value: Any, source: str, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _err(source, where, f"must be a mapping, got {type(value).__name__}")
    unknown = set(value) - allowed
    if unknown:
        raise _err(source, where, f"unknown field(s) {sorted(map(str, unknown))}; allowed: {sorted(allowed)}")
    return value


def _placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def _query_line(d: Mapping[str, Any], source: str) -> str | None:
    line = _text(d.get("query_line"), source, "query_line", required=False)
    if line is not None and _placeholders(line) != ["query"]:
        raise _err(source, "query_line", f"must contain {{query}} once and no other braces, got {line!r}")
    return line


def _examples(d: Mapping[str, Any], source: str) -> tuple[AdExample, ...]:
    if "examples" not in d:
        return DEFAULT_EXAMPLES
    raw = d["examples"]
    if not isinstance(raw, list) or not raw:
        raise _err(source, "examples", "must be a non-empty list of example ads")
    exs = []
    for i, item in enumerate(raw):
        where = f"examples[{i}]"
        m = _mapping(item, source, where, {"brand", "about", "ad", "query"})
        exs.append(AdExample(brand=_text(m.get("brand"), source, f"{where}.brand"),
                             about=_text(m.get("about"), source, f"{where}.about"),
                             ad=_text(m.get("ad"), source, f"{where}.ad"),
                             query=_text(m.get("query"), source, f"{where}.query", required=False)))
    return tuple(exs)


def _joint_examples(d: Mapping[str, Any], source: str) -> tuple[JointExample, ...]:
    raw = d.get("joint_examples")
    if raw is None:
        return ()
    if "examples" in d:
        raise _err(source, "joint_examples", "give either 'examples' or 'joint_examples', not both")
    if not isinstance(raw, list) or not raw:
        raise _err(source, "joint_examples", "must be a non-empty list of ad templates")
    out = []
    for i, item in enumerate(raw):
        where = f"joint_examples[{i}]"
        m = _mapping(item, source, where, {"query", "ad", "slots"})
        ad = _text(m.get("ad"), source, f"{where}.ad")
        slots_raw = _mapping(m.get("slots") or {}, source, f"{where}.slots", set(map(str, m.get("slots") or {})))
        slots = {}
        for slot, filler in slots_raw.items():
            sw = f"{where}.slots.{slot}"
            f = _mapping(filler, source, sw, {"brand", "about", "generic"})
            slots[str(slot)] = SlotFiller(*(_text(f.get(k), source, f"{sw}.{k}") for k in ("brand", "about", "generic")))
        if not slots or sorted(_placeholders(ad)) != sorted(slots):
            raise _err(source, f"{where}.ad", f"its placeholders {sorted(_placeholders(ad))} must be exactly the "
                                              f"slots {sorted(slots)}")
        out.append(JointExample(query=_text(m.get("query"), source, f"{where}.query"), ad=ad, slots=slots))
    return tuple(out)


def _advertiser(item: Any, i: int, sc: Mapping[str, Any], source: str) -> AgentSpec:
    """One advertiser entry (``sc``: the scenario's query, examples, joint examples, query line)."""
    where = f"advertisers[{i}]"
    m = _mapping(item, source, where, {"name", "brief", "prompt", "bid", "slot"})
    a_name = _text(m.get("name"), source, f"{where}.name")
    if "bid" not in m:
        raise _err(source, f"{where}.bid", "is missing")
    bid = _bid(m["bid"], source, f"{where}.bid")
    brief = _text(m.get("brief"), source, f"{where}.brief", required=False)
    slot = _text(m.get("slot"), source, f"{where}.slot", required=False)
    prompt = m.get("prompt")
    if (brief is None) == (prompt is None):
        raise _err(source, where, "give exactly one of 'brief' (few-shot prompt is built) or 'prompt'")
    if prompt is not None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise _err(source, f"{where}.prompt", "must be a non-empty string")
        return AgentSpec(name=a_name, prompt=prompt, bid=bid, brief=None, slot=slot)
    examples = sc["examples"]
    if sc["joint"]:
        known = sorted({k for je in sc["joint"] for k in je.slots})
        if slot not in known:
            raise _err(source, f"{where}.slot", f"must name a slot of the joint examples {known}, got {slot!r}")
        examples = tuple(je.example_for(slot) for je in sc["joint"] if slot in je.slots)
    elif slot is not None:
        raise _err(source, f"{where}.slot", "is only used with 'joint_examples'")
    prompt = advertiser_prompt(a_name, brief, examples, query=sc["query"], query_line=sc["query_line"])
    return AgentSpec(name=a_name, prompt=prompt, bid=bid, brief=brief, slot=slot)


def _platform(raw: Any, sc: Mapping[str, Any], source: str) -> AgentSpec:
    m = _mapping(raw, source, "platform", {"name", "bid", "prompt"})
    p_name = _text(m.get("name", "Platform"), source, "platform.name")
    if "bid" not in m:
        raise _err(source, "platform.bid", "is missing")
    bid = _bid(m["bid"], source, "platform.bid")
    prompt = m.get("prompt")
    if prompt is not None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise _err(source, "platform.prompt", "must be a non-empty string")
        return AgentSpec(name=p_name, prompt=prompt, bid=bid, role="platform")
    examples = tuple(je.generic_example() for je in sc["joint"]) if sc["joint"] else sc["examples"]
    try:
        prompt = platform_prompt(sc["query"], examples, query_line=sc["query_line"])
    except ValueError as exc:
        raise _err(source, "examples", str(exc)) from None
    return AgentSpec(name=p_name, prompt=prompt, bid=bid, role="platform")


def _decoding(d: Mapping[str, Any], source: str) -> tuple[str, int, tuple[str, ...], str | None]:
    """``(rule, max_new_tokens, stop, model)`` of a scenario."""
    rule = _text(d.get("rule", "linear"), source, "rule").lower().replace("-", "_")
    if rule not in RULES:
        raise _err(source, "rule", f"unknown aggregation rule {rule!r}; use one of {sorted(RULES)}")
    max_new = d.get("max_new_tokens", 32)
    if isinstance(max_new, bool) or not isinstance(max_new, int) or max_new <= 0:
        raise _err(source, "max_new_tokens", f"must be a positive integer, got {max_new!r}")
    stop_raw = d.get("stop", ["\n"])
    stop_raw = [] if stop_raw is None else ([stop_raw] if isinstance(stop_raw, str) else stop_raw)
    if not isinstance(stop_raw, list) or not all(isinstance(s, str) and s for s in stop_raw):
        raise _err(source, "stop", f"must be a list of non-empty strings, got {stop_raw!r}")
    return rule, max_new, tuple(stop_raw), _text(d.get("model"), source, "model", required=False)


def scenario_from_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> Scenario:
    """Validate a scenario given as a dict (the YAML file's content) and build its prompts."""
    d = _mapping(data, source, "top level", _TOP_KEYS)
    sc = {"query": _text(d.get("query"), source, "query"), "query_line": _query_line(d, source),
          "joint": _joint_examples(d, source)}
    sc["examples"] = _examples(d, source) if not sc["joint"] else ()
    raw_ads = d.get("advertisers")
    if not isinstance(raw_ads, list) or not raw_ads:
        raise _err(source, "advertisers", "must be a non-empty list of advertisers")
    agents = [_advertiser(item, i, sc, source) for i, item in enumerate(raw_ads)]
    if d.get("platform") is not None:
        agents.append(_platform(d["platform"], sc, source))
    names = [a.name for a in agents]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise _err(source, "advertisers", f"agent names must be unique, repeated: {dup}")
    if not any(a.bid > 0 for a in agents):
        raise _err(source, "advertisers", "all bids are zero (at least one agent must bid > 0)")
    rule, max_new, stop, model = _decoding(d, source)
    return Scenario(
        name=_text(d.get("name"), source, "name"), query=sc["query"], agents=tuple(agents),
        description=_text(d.get("description"), source, "description", required=False) or "",
        examples=sc["examples"] or DEFAULT_EXAMPLES, joint_examples=sc["joint"], query_line=sc["query_line"],
        rule=rule, max_new_tokens=max_new, stop=stop, model=model, source=source,
    )


# --------------------------------------------------------------------------- files


def scenarios_dir() -> Path:
    """The repository's ``data/scenarios`` folder."""
    return Path(__file__).resolve().parents[2] / "data" / "scenarios"


def list_scenarios() -> list[str]:
    """Names of the scenario files in :func:`scenarios_dir` (without ``.yaml``)."""
    folder = scenarios_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_scenario(path_or_name: str | Path) -> Scenario:
    """Load and validate a scenario from a YAML file path or a name in ``data/scenarios``.

    Raises :class:`ScenarioError` (a ``ValueError``) naming the file and field on
    bad content, and ``FileNotFoundError`` listing the known scenarios when the
    file does not exist.
    """
    path = Path(path_or_name).expanduser()
    if not path.is_file():
        candidate = scenarios_dir() / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
        if path.parent == Path(".") and candidate.is_file():
            path = candidate
        else:
            raise FileNotFoundError(
                f"scenario {str(path_or_name)!r} not found (no such file, and not one of "
                f"{list_scenarios()} in {scenarios_dir()})"
            )
    label = path.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{label}: not valid YAML: {exc}") from None
    if data is None:
        raise ScenarioError(f"{label}: the file is empty")
    return scenario_from_dict(data, source=label)


# --------------------------------------------------------------------------- ablations of a prompt design


def without_query_lines(prompts: Sequence[str]) -> list[str]:
    """The prompts with every line that starts with ``"Query:"`` removed (an ablation of the joint
    design of notebook 06: the examples and the open line lose their query)."""
    return ["".join(ln for ln in p.splitlines(keepends=True) if not ln.startswith("Query:")) for p in prompts]


def one_generic_phrase(scenario: Scenario) -> list[str]:
    """The scenario's prompts with every joint example's generic phrase replaced by the first example's
    phrase for the same slot (an ablation of the joint design: the other advertiser's slot is always
    filled the same way).  A scenario without joint examples keeps its prompts."""
    if not scenario.joint_examples:
        return list(scenario.prompts)
    first = {slot: filler.generic for slot, filler in scenario.joint_examples[0].slots.items()}
    swap = {filler.generic: first[slot] for je in scenario.joint_examples for slot, filler in je.slots.items()}
    prompts = list(scenario.prompts)
    for old, new in swap.items():
        prompts = [p.replace(old, new) for p in prompts]
    return prompts


def names_every_brand(text: str, names: Sequence[str]) -> bool:
    """Whether ``text`` contains the first word of every name as a word (``"Alpha"`` for ``"Alpha
    Airlines"``): a joint creative, in notebook 06's sense."""
    return all(re.search(rf"\b{re.escape(n.split()[0])}\b", text) for n in names)
