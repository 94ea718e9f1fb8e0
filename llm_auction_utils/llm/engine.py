"""Token-by-token auction decoding with a real LLM (notebooks/theory.md §1, §4, §5).

The auction runs "like one giant LLM": each agent ``i`` is a prompt over a causal LM; its
context is its own prompt followed by the *shared* continuation.  At every step

1. one batched, KV-cached forward pass over the agents' contexts gives every agent's
   next-token log-probabilities ``log p_i = log_softmax(logits_i / T)`` (float32, normalized
   accurately: :func:`next_token_logprobs`);
2. the aggregation rule turns them into ``q``: the linear rule from the probabilities,
   the log-linear rule in log space (``softmax(sum_i lambda_i log p_i)``, exact even where
   float32 probabilities underflow), any callable ``rule(dists, bids) -> q`` from the
   probabilities;
3. payments: every agent's expected critical-bid payment (a step where the rule is not
   monotone for an agent is *flagged*, not charged) and/or, for the log-linear rule, the
   KL-preference payments of the notebooks/theory.md §4 ([project extension]);
4. one token is chosen and appended to every context of the auction.

Order of operations: **temperature -> aggregation -> top-k -> top-p -> sample / argmax**.
Top-k and top-p truncate the *aggregate*; truncated sampling is
outside the theory's guarantees (payments are computed from the untruncated ``q``).
Samplers: ``"standard"`` (seeded inverse-CDF draw), ``greedy=True`` (argmax), ``"stable"``
(the stable sampler of one ``stable_agent``, whose realized critical-bid payment is
recorded) and ``"joint"`` (two agents, linear rule: one stable coupling that realizes both
agents' critical-bid payments at once, notebooks/theory.md §4).

:func:`run_auctions` runs many independent auctions together (each auction has its own
prompts, bids, rule and decoding options, seed included) and computes each distinct context
once: a model row is keyed by (model, prompt, generated tokens), identical prompts are
prefilled once, the prompts' longest common token prefix (the few-shot examples) once for the
whole sweep, each step runs one forward pass over the distinct live contexts only, and a row
forks when auctions that shared it choose different tokens (:mod:`.contexts`).  Finished
auctions leave the batch; ``max_rows`` bounds the rows per pass (auctions are run in chunks).
:func:`run_auction` is one auction.

The layout of the code: :class:`DecodingOptions` and :class:`AuctionSpec` (validated once,
frozen), :mod:`.contexts` (the model rows, one per distinct context, with their KV cache),
:func:`run_auctions` (the loop) and :mod:`.transcript` (the result).
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..theory.aggregation import get_rule, linear, log_linear_logprobs, rule_name
from ..theory.monotonicity import NotMonotoneError
from ..theory.payments import expected_critical_payments, kl_preference_payments
from ..theory.sampling import joint_stable_step, sample_token, stable_step
from ..theory.validation import check_bid
from .contexts import AgentRow, ChunkContexts, ModelRows, RowStats
from .models import DEFAULT_MODEL, LoadedModel, check_shared_tokenizer, load_model
from .scenarios import Scenario, load_scenario
from .transcript import StepInfo, StepRecord, Transcript, TranscriptBuilder

__all__ = [
    "AuctionSpec",
    "DecodingOptions",
    "StepInfo",
    "Transcript",
    "aggregate_top_k",
    "aggregate_top_p",
    "next_token_distributions",
    "next_token_logprobs",
    "run_auction",
    "run_auctions",
    "run_scenario",
    "run_scenario_sweep",
]

ModelLike = LoadedModel | str
SAMPLERS = ("standard", "stable", "joint")
PAYMENT_MODELS = {True: "critical", False: "none", "critical": "critical", "kl": "kl", "all": "all", "none": "none"}


# --------------------------------------------------------------------------- distributions


def next_token_logprobs(logits: torch.Tensor, temperature: float | torch.Tensor = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p, p)`` with ``p = softmax(logits / temperature)`` over the last axis, in float32.

    The normalizer is summed with ``torch.sum`` (cascade summation): ``torch.softmax``'s CPU
    kernel accumulates a 262,144-token normalizer sequentially in float32, so its rows sum to
    ``1 +- 1.2e-4`` on Gemma 3 logits; here rows sum to 1 within about 1e-6.
    ``temperature``: a number, or a tensor broadcasting against ``logits`` (one per row).
    """
    x = logits.float()
    if not (isinstance(temperature, (int, float)) and temperature == 1.0):
        x = x / temperature
    x = x - x.amax(dim=-1, keepdim=True)
    p = torch.exp(x)
    norm = p.sum(dim=-1, keepdim=True)
    return x - torch.log(norm), p.div_(norm)


def next_token_distributions(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``p = softmax(logits / temperature)`` in float32, accurately normalized (see :func:`next_token_logprobs`)."""
    return next_token_logprobs(logits, temperature)[1]


def aggregate_top_k(q: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` most probable tokens of ``q (..., V)`` and renormalize; ties at the ``k``-th
    value are broken by index, so exactly ``k`` tokens stay (``transformers``' ``TopKLogitsWarper``
    keeps every tie).  Applied after aggregation: outside the theory's guarantees.
    """
    if k >= q.shape[-1]:
        return q
    idx = torch.topk(q, k, dim=-1).indices
    kept = torch.zeros_like(q).scatter_(-1, idx, q.gather(-1, idx))
    return kept / kept.sum(-1, keepdim=True)


def aggregate_top_p(q: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus truncation of ``q (..., V)``: the smallest set of most probable tokens whose mass
    reaches ``p`` (the top token, the first on ties, always stays), renormalized.  Applied
    after aggregation (and after top-k): outside the theory's guarantees.
    """
    if p >= 1.0:
        return q
    sorted_q, order = torch.sort(q, dim=-1, descending=True, stable=True)
    before = torch.cumsum(sorted_q, dim=-1) - sorted_q  # mass strictly above each token
    keep_sorted = before < p
    keep_sorted[..., 0] = True
    kept = torch.zeros_like(q).scatter_(-1, order, torch.where(keep_sorted, sorted_q, 0.0))
    return kept / kept.sum(-1, keepdim=True)


# --------------------------------------------------------------------------- options


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


@dataclass(frozen=True)
class DecodingOptions:
    """How one auction decodes, validated once (see :meth:`AuctionSpec.create` for the meaning).

    ``stable_agent`` is the resolved agent index (or ``None``); ``payments`` is one of
    ``"critical"``, ``"kl"``, ``"all"``, ``"none"``.
    """

    rule: str | Callable[..., Any] = "linear"
    max_new_tokens: int = 32
    stop_strings: tuple[str, ...] = ()
    temperature: float = 1.0
    greedy: bool = False
    top_k: int | None = None
    top_p: float | None = None
    sampler: str = "standard"
    stable_agent: int | None = None
    seed: int | None = None
    payments: str = "critical"


def _check_sampler(sampler: str, greedy: bool, top_k: Any, top_p: Any, stable_agent: Any, names: list[str],
                   rule: Any) -> int | None:
    """Validate the sampler options; return the stable agent's index."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; use one of {', '.join(map(repr, SAMPLERS))}")
    if sampler == "standard":
        if stable_agent is not None:
            raise ValueError("stable_agent is only used with sampler='stable'")
        return None
    if greedy:
        raise ValueError(f"greedy=True and sampler={sampler!r} exclude each other")
    if top_k is not None or top_p is not None:
        raise ValueError(f"sampler={sampler!r} draws from the exact aggregate; top_k/top_p are not allowed")
    if sampler == "joint":
        if len(names) != 2 or rule_name(get_rule(rule)) != "linear":
            raise ValueError("sampler='joint' realizes every agent's critical-bid payment at once for two agents "
                             "and the linear rule only (for n >= 3 no coupling is stable for every agent in "
                             "general: theory chapter §4.8); use sampler='stable' with one stable_agent")
        if stable_agent is not None:
            raise ValueError("stable_agent is only used with sampler='stable'")
        return None
    if stable_agent is None:
        raise ValueError("sampler='stable' needs stable_agent (the agent whose payment is realized)")
    if isinstance(stable_agent, str):
        if stable_agent not in names:
            raise ValueError(f"stable_agent {stable_agent!r} is not one of {names}")
        return names.index(stable_agent)
    if isinstance(stable_agent, (int, np.integer)) and not isinstance(stable_agent, bool) and 0 <= stable_agent < len(names):
        return int(stable_agent)
    raise ValueError(f"stable_agent must be an agent name or an index in [0, {len(names)}), got {stable_agent!r}")


def _check_prompts(prompts: Sequence[str]) -> tuple[str, ...]:
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise TypeError("prompts must be a sequence of strings, one per agent")
    if len(prompts) == 0:
        raise ValueError("no agents: prompts is empty")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f"prompt of agent {i} must be a string, got {type(p).__name__}")
        if not p.strip():
            raise ValueError(f"prompt of agent {i} is empty")
    return tuple(prompts)


def _check_bids(bids: Sequence[float] | Mapping[str, float], names: list[str]) -> tuple[float, ...]:
    if isinstance(bids, Mapping):
        unknown = set(bids) - set(names)
        if unknown:
            raise ValueError(f"bids name unknown agents {sorted(unknown)}; agents are {names}")
        missing = [a for a in names if a not in bids]
        if missing:
            raise ValueError(f"no bid for agents {missing}")
        bids = [bids[a] for a in names]
    if isinstance(bids, (str, bytes)) or not isinstance(bids, (Sequence, np.ndarray, torch.Tensor)):
        raise TypeError("bids must be a sequence of numbers (one per agent) or a mapping name -> bid")
    values = list(bids)
    if len(values) != len(names):
        raise ValueError(f"{len(values)} bids given for {len(names)} agents")
    checked = tuple(check_bid(b, f"bid of agent {i} ({names[i]})") for i, b in enumerate(values))
    if not any(b > 0 for b in checked):
        raise ValueError("all bids are zero (at least one agent must bid > 0)")
    return checked


@dataclass(frozen=True)
class AuctionSpec:
    """One auction, validated once: the agents' ``prompts``, ``bids`` and ``names``, and its
    :class:`DecodingOptions`.  Build it with :meth:`create`."""

    prompts: tuple[str, ...]
    bids: tuple[float, ...]
    names: tuple[str, ...]
    options: DecodingOptions = field(default_factory=DecodingOptions)

    @classmethod
    def create(
        cls,
        prompts: Sequence[str],
        bids: Sequence[float] | Mapping[str, float],
        *,
        names: Sequence[str] | None = None,
        rule: str | Callable[..., Any] = "linear",
        max_new_tokens: int = 32,
        stop_strings: Sequence[str] | str | None = None,
        temperature: float = 1.0,
        greedy: bool = False,
        top_k: int | None = None,
        top_p: float | None = None,
        sampler: str = "standard",
        stable_agent: int | str | None = None,
        seed: int | None = None,
        payments: bool | str = True,
    ) -> "AuctionSpec":
        """Validate an auction's input and options (no model is touched).

        Args:
            prompts: one prompt per agent (its own context; the continuation is shared).
            bids: one bid per agent (sequence, or mapping name -> bid); finite, >= 0, not all 0.
            names: agents' names (default ``agent0, agent1, ...``), unique.
            rule: ``"linear"``, ``"log_linear"`` or a callable ``rule(dists, bids) -> q``.
            max_new_tokens: at most this many auctioned tokens (>= 1).
            stop_strings: stop once the creative contains one of these (e.g. ``"\\n"``); the
                text is cut before it.  Decoding also stops at the model's EOS token.
            temperature: ``p_i = softmax(logits_i / temperature)``, before aggregation.
            greedy: choose ``argmax q`` instead of sampling.
            top_k, top_p: truncate the aggregate before sampling (outside the theory's guarantees).
            sampler: ``"standard"``, ``"stable"`` (with ``stable_agent``) or ``"joint"``.
            stable_agent: index or name of the agent whose coupling drives the step.
            seed: seeds a ``torch.Generator`` on the model's device (reproducible on the same
                hardware); ``None`` draws a fresh seed, recorded in the transcript.
            payments: ``True``/``"critical"`` (expected critical-bid payments), ``"kl"``
                (KL-preference payments, log-linear rule), ``"all"``, or ``False``/``"none"``.
        """
        prompts = _check_prompts(prompts)
        n = len(prompts)
        names = [f"agent{i}" for i in range(n)] if names is None else [str(a) for a in names]
        if len(names) != n:
            raise ValueError(f"{len(names)} names given for {n} agents")
        if len(set(names)) != n:
            raise ValueError(f"agent names must be unique, got {names}")
        bid_values = _check_bids(bids, names)
        max_new_tokens = _positive_int(max_new_tokens, "max_new_tokens")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and temperature > 0
        ):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
        if top_p is not None and not (isinstance(top_p, (int, float)) and 0.0 < top_p <= 1.0):
            raise ValueError(f"top_p must lie in (0, 1] or be None, got {top_p!r}")
        stops = [stop_strings] if isinstance(stop_strings, str) else list(stop_strings or [])
        if any(not isinstance(s, str) or not s for s in stops):
            raise ValueError(f"stop_strings must be non-empty strings, got {stop_strings!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        get_rule(rule)  # ValueError for an unknown name
        stable_idx = _check_sampler(sampler, greedy, top_k, top_p, stable_agent, names, rule)
        if not isinstance(payments, (bool, str)) or payments not in PAYMENT_MODELS:
            raise ValueError(f"payments must be True, False, 'critical', 'kl', 'all' or 'none', got {payments!r}")
        pay = PAYMENT_MODELS[payments]
        if pay in ("kl", "all") and rule_name(get_rule(rule)) != "log_linear":
            raise ValueError("payments='kl' (KL-preference payments) is defined for the log_linear rule")
        options = DecodingOptions(
            rule=rule, max_new_tokens=max_new_tokens, stop_strings=tuple(stops), temperature=float(temperature),
            greedy=bool(greedy), top_k=None if top_k is None else int(top_k), top_p=top_p, sampler=sampler,
            stable_agent=stable_idx, seed=None if seed is None else int(seed), payments=pay,
        )
        return cls(prompts=prompts, bids=bid_values, names=tuple(names), options=options)


def _as_spec(auction: AuctionSpec | Mapping[str, Any], k: int) -> AuctionSpec:
    """An :class:`AuctionSpec` from a spec or a dict of :meth:`AuctionSpec.create`'s arguments;
    errors name the auction."""
    if isinstance(auction, AuctionSpec):
        return auction
    if not isinstance(auction, Mapping):
        raise TypeError(f"auction {k}: expected an AuctionSpec or a dict, got {type(auction).__name__}")
    try:
        return AuctionSpec.create(**auction)
    except TypeError as exc:
        raise type(exc)(f"auction {k}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"auction {k}: {exc}") from None


def _resolve_models(model: ModelLike | Sequence[ModelLike], n: int) -> list[LoadedModel]:
    """One :class:`LoadedModel` per agent (a single model for all, or one per agent sharing a tokenizer)."""
    def one(m: ModelLike) -> LoadedModel:
        if isinstance(m, LoadedModel):
            return m
        if isinstance(m, str):
            return load_model(m)
        raise TypeError(f"model must be a LoadedModel or a model name, got {type(m).__name__}")

    if isinstance(model, (LoadedModel, str)):
        return [one(model)] * n
    models = list(model)
    if len(models) != n:
        raise ValueError(f"{len(models)} models given for {n} agents (give one model, or one per agent)")
    resolved = [one(m) for m in models]
    distinct = list({id(m): m for m in resolved}.values())
    check_shared_tokenizer(distinct)
    if len({str(m.device) for m in distinct}) > 1:
        raise ValueError(f"agents' models are on different devices {sorted({str(m.device) for m in distinct})}; "
                         "put them on one device")
    return resolved


# --------------------------------------------------------------------------- one auction's step


@dataclass
class _AuctionState:
    """A running auction: its spec, rule, generator, rows and what it has recorded so far."""

    index: int
    spec: AuctionSpec
    rule_fn: Callable[..., Any]
    builtin: str | None
    bids_t: torch.Tensor  # bids / max(bids), float32 on the device: aggregation (needs only the ratios)
    bids64: torch.Tensor  # bids / max(bids), float64 on the device: payments and samplers (every bid matters)
    generator: torch.Generator
    builder: TranscriptBuilder
    generated: list[int] = field(default_factory=list)
    stop_reason: str | None = None

    @property
    def n(self) -> int:
        return len(self.spec.names)


def _aggregate(state: _AuctionState, dists: torch.Tensor, logp: torch.Tensor,
               step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(q, log q)``; ``log q`` only where the rule computes it (log-linear), else ``None``."""
    if state.builtin == "linear":
        return linear(dists, state.bids_t, validate=False), None
    if state.builtin == "log_linear":
        log_q = log_linear_logprobs(logp, state.bids_t)
        return torch.exp(log_q), log_q
    q = state.rule_fn(dists, state.bids_t)
    name = state.builder.rule_label
    if not isinstance(q, torch.Tensor) or tuple(q.shape) != (dists.shape[-1],):
        raise ValueError(f"rule {name!r} must return a tensor of shape ({dists.shape[-1]},)")
    if not bool(torch.isfinite(q).all()) or abs(float(q.sum()) - 1.0) > 1e-3 or bool((q < 0).any()):
        raise ValueError(f"rule {name!r} returned an invalid distribution at step {step}")
    return q, None


def _choose(state: _AuctionState, q: torch.Tensor, dists: torch.Tensor, record: StepRecord) -> int:
    """The step's token; records the sampler's realized payments (bids normalized)."""
    opts = state.spec.options
    if opts.sampler == "stable":
        try:
            draw = stable_step(dists, state.bids64, opts.stable_agent, state.rule_fn, state.generator)
        except NotMonotoneError:  # no coupling on this step: draw from q, charge nothing, flag the agent
            if record.monotone is not None:
                record.monotone = record.monotone.clone()
                record.monotone[opts.stable_agent] = False
            return int(sample_token(q, state.generator))
        record.realized[opts.stable_agent] = float(draw.payment)
        record.switched[opts.stable_agent] = bool(draw.switched)
        return int(draw.token)
    if opts.sampler == "joint":
        return _joint_draw(state, dists, record)
    if opts.greedy:
        return int(torch.argmax(q))
    qs = q
    if opts.top_k is not None:
        qs = aggregate_top_k(qs, opts.top_k)
    if opts.top_p is not None:
        qs = aggregate_top_p(qs, opts.top_p)
    return int(sample_token(qs, state.generator))


def _joint_draw(state: _AuctionState, dists: torch.Tensor, record: StepRecord) -> int:
    """Two agents, linear rule: one draw realizes both agents' critical bids (:func:`joint_stable_step`)."""
    draw = joint_stable_step(dists, state.bids64, state.generator)
    record.realized[:], record.switched[:] = draw.payments, draw.switched
    return draw.token


def _auction_step(state: _AuctionState, dists: torch.Tensor, logp: torch.Tensor, step: int,
                  on_step: Callable[[StepInfo], None] | None, timing: dict[str, float]) -> int:
    """Aggregate, pay and choose one token for one auction; returns the token id."""
    t1 = time.perf_counter()
    opts = state.spec.options
    q, log_q = _aggregate(state, dists, logp, step)
    record = StepRecord(token_id=-1, q=q, p=dists[:, 0], realized=np.zeros(state.n), switched=np.zeros(state.n, bool))
    if opts.payments in ("critical", "all"):
        cp = expected_critical_payments(dists, state.bids64, state.rule_fn, logprobs=logp,
                                        context=f"auction {state.index}, step {step}")
        record.critical, record.monotone = cp.payments, cp.monotone
    if opts.payments in ("kl", "all"):
        kp = kl_preference_payments(dists, state.bids64, logprobs=logp, context=f"auction {state.index}, step {step}")
        record.kl_payment, record.kl_allocation = kp.payments, kp.allocation
    t2 = time.perf_counter()
    token_id = _choose(state, q, dists, record)
    # copies, not views: a view would keep the step's (rows, V) tensors alive until the transcript is built
    record.token_id, record.q, record.p = token_id, q[token_id].clone(), dists[:, token_id].clone()
    state.builder.records.append(record)
    if on_step is not None:
        on_step(StepInfo(step, dists, q, token_id, record.critical, record.monotone, auction=state.index, logprobs=logp,
                         log_aggregate=log_q))
    t3 = time.perf_counter()
    state.builder.timings["forward"].append(timing["forward"])
    state.builder.timings["aggregation_payments"].append(t2 - t1)
    state.builder.timings["auction"].append(t3 - t1)
    return token_id


def _finished(state: _AuctionState, eos: set[int], tokenizer: Any) -> str | None:
    """Why the auction stops after its latest token, or ``None``."""
    opts = state.spec.options
    if state.generated[-1] in eos:
        return "eos"
    if opts.stop_strings:
        text = tokenizer.decode(state.generated, skip_special_tokens=True)
        if any(s in text for s in opts.stop_strings):
            return "stop_string"
    if len(state.generated) >= opts.max_new_tokens:
        return "max_new_tokens"
    return None


# --------------------------------------------------------------------------- the loop


def _chunks(specs: list[AuctionSpec], max_rows: int) -> list[list[int]]:
    """Consecutive auctions grouped so that each group has at most ``max_rows`` rows (an auction is never split)."""
    groups: list[list[int]] = [[]]
    rows = 0
    for k, spec in enumerate(specs):
        n = len(spec.names)
        if groups[-1] and rows + n > max_rows:
            groups.append([])
            rows = 0
        groups[-1].append(k)
        rows += n
    return groups


def _default_max_rows(device: torch.device) -> int:
    return 512 if device.type == "cuda" else 128


def run_auctions(
    auctions: Sequence[AuctionSpec | Mapping[str, Any]],
    *,
    model: ModelLike | Sequence[ModelLike] = DEFAULT_MODEL,
    max_rows: int | None = None,
    share_prefix: bool = True,
    on_step: Callable[[StepInfo], None] | None = None,
    profile: bool = False,
    progress: bool = False,
    stats: RowStats | None = None,
) -> list[Transcript]:
    """Run many independent auctions together and return one :class:`Transcript` each, in order.

    Each distinct context is computed once (:mod:`.contexts`): a model row is keyed by (model,
    prompt, generated tokens), identical prompts are prefilled once, every step runs only the
    distinct live contexts through the model, and a row forks when auctions that shared it choose
    different tokens.

    Args:
        auctions: :class:`AuctionSpec` objects, or dicts of :meth:`AuctionSpec.create`'s
            arguments (``prompts``, ``bids``, ``names``, ``rule``, ``seed``, ...).  Auctions may
            have different numbers of agents.  Every auction is validated before any forward
            pass; an error names the auction at fault (``"auction 3: all bids are zero"``).
        model: one model (a :class:`~.models.LoadedModel` or a name) for every agent, or one
            per agent (then every auction has that many agents; the models share a tokenizer).
        max_rows: at most this many model rows per forward pass: auctions are run in chunks whose
            agents number at most ``max_rows`` (the most distinct contexts a chunk can reach);
            default 128 on the CPU, 512 on a GPU.
        share_prefix: prefill the prompts' longest common token prefix once.
        on_step: callback receiving a :class:`StepInfo` (with its ``auction`` index) after every
            auction's every step.
        profile: record per-step timings (synchronizing the device).
        progress: show a progress bar over decoding steps.
        stats: a :class:`~.contexts.RowStats` to fill with the rows computed (distinct contexts)
            and the rows a loop without sharing would compute.

    Each auction's transcript equals what :func:`run_auction` returns for the same inputs
    (greedy: the same tokens; sampled with the same seed: the same tokens on the same
    hardware; distributions within round-off of the batch composition).
    """
    if isinstance(auctions, (str, bytes, Mapping)) or not isinstance(auctions, Sequence):
        raise TypeError("auctions must be a sequence of AuctionSpec objects or dicts")
    if len(auctions) == 0:
        raise ValueError("no auctions: the list of auctions is empty")
    specs = [_as_spec(a, k) for k, a in enumerate(auctions)]
    if stats is not None and not isinstance(stats, RowStats):
        raise TypeError(f"stats must be a RowStats or None, got {type(stats).__name__}")
    per_agent = not isinstance(model, (LoadedModel, str))
    if per_agent:
        ns = {len(s.names) for s in specs}
        if len(ns) != 1:
            raise ValueError("one model per agent needs every auction to have the same number of agents")
    if max_rows is not None:
        max_rows = _positive_int(max_rows, "max_rows")
    models = _resolve_models(model, len(specs[0].names) if per_agent else 1)
    max_rows = max_rows or _default_max_rows(models[0].device)
    stats = stats if stats is not None else RowStats()
    results: list[Transcript | None] = [None] * len(specs)
    tokenizer = models[0].tokenizer
    row_models = [[models[i] if per_agent else models[0] for i in range(len(s.names))] for s in specs]
    groups = _model_groups(row_models, specs, share_prefix)
    bar = tqdm(total=sum(s.options.max_new_tokens for s in specs), desc="auction tokens", unit="tok",
               disable=not progress, leave=False)
    with torch.inference_mode():
        for chunk in _chunks(specs, max_rows):
            for state in _decode_chunk(chunk, specs, groups, row_models, on_step, profile, bar, stats):
                results[state.index] = state.builder.build(tokenizer, state.stop_reason or "max_new_tokens",
                                                           profile=profile)
    bar.close()
    return [r for r in results if r is not None]


@dataclass
class _Group:
    """One model's agent rows over the whole sweep: each ``(auction, agent)``'s distinct prompt, and the rows."""

    agents: dict[AgentRow, int]
    rows: ModelRows

    def open(self, chunk: set[int], stats: RowStats) -> ChunkContexts:
        """Prefill the distinct prompts of the auctions ``chunk``."""
        return ChunkContexts(self.rows, {a: p for a, p in self.agents.items() if a[0] in chunk}, stats)


def _model_groups(row_models: list[list[LoadedModel]], specs: list[AuctionSpec], share_prefix: bool) -> list[_Group]:
    """Group every agent row of the sweep by model, each with its distinct prompts (tokenized once)."""
    by_model: dict[int, tuple[LoadedModel, dict[AgentRow, int], dict[str, int]]] = {}
    for k, ms in enumerate(row_models):
        for i, m in enumerate(ms):
            _, agents, prompts = by_model.setdefault(id(m), (m, {}, {}))
            agents[(k, i)] = prompts.setdefault(specs[k].prompts[i], len(prompts))
    groups = []
    for lm, agents, prompts in by_model.values():
        ids = [lm.tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
        groups.append(_Group(agents=agents, rows=ModelRows(lm, ids, share_prefix)))
    return groups


_BLOCK_ROWS = 16
"""Distinct rows normalized per block: keeps every per-step tensor small (a few MiB at a 262,144-token
vocabulary), which the memory allocator recycles instead of mapping fresh pages at every step."""


class _StepDistributions:
    """Every live agent's ``(log p, p)`` for one step: each distinct (model row, temperature)
    normalized once (:func:`next_token_logprobs`), in blocks of :data:`_BLOCK_ROWS` rows; agents
    that share a context read the same row."""

    def __init__(self, live: dict[int, "_AuctionState"], contexts: list[ChunkContexts], owner: dict[AgentRow, int]):
        keys: dict[tuple[int, int, float], int] = {}
        self.pick: dict[int, list[int]] = {}
        for k, st in live.items():
            temperature = st.spec.options.temperature
            self.pick[k] = [keys.setdefault((owner[(k, i)], contexts[owner[(k, i)]].row_of[(k, i)], temperature),
                                            len(keys)) for i in range(st.n)]
        order = sorted(keys, key=keys.__getitem__)
        self.blocks = [self._normalize(order[j: j + _BLOCK_ROWS], contexts) for j in range(0, len(order), _BLOCK_ROWS)]

    @staticmethod
    def _normalize(keys: list[tuple[int, int, float]], contexts: list[ChunkContexts]) -> tuple[torch.Tensor, torch.Tensor]:
        device = contexts[keys[0][0]].logits.device
        if all(g == keys[0][0] for g, _, _ in keys):
            rows = torch.tensor([r for _, r, _ in keys], dtype=torch.long, device=device)
            logits = contexts[keys[0][0]].logits[rows]
        else:
            logits = torch.stack([contexts[g].logits[r].float() for g, r, _ in keys])
        temps = torch.tensor([t for _, _, t in keys], device=device)[:, None]
        return next_token_logprobs(logits, temps)

    def of(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log p, p)`` of auction ``k``'s agents, ``(n, V)`` each (a view when they are adjacent)."""
        idx = self.pick[k]
        b, first = divmod(idx[0], _BLOCK_ROWS)
        if idx == list(range(idx[0], idx[0] + len(idx))) and first + len(idx) <= _BLOCK_ROWS:
            logp, p = self.blocks[b]
            return logp[first: first + len(idx)], p[first: first + len(idx)]
        logp = torch.stack([self.blocks[j // _BLOCK_ROWS][0][j % _BLOCK_ROWS] for j in idx])
        p = torch.stack([self.blocks[j // _BLOCK_ROWS][1][j % _BLOCK_ROWS] for j in idx])
        return logp, p


def _decode_chunk(chunk: list[int], specs: list[AuctionSpec], groups: list[_Group],
                  row_models: list[list[LoadedModel]], on_step: Callable[[StepInfo], None] | None,
                  profile: bool, bar: Any, stats: RowStats) -> list[_AuctionState]:
    """Decode the auctions ``chunk`` (indices into ``specs``) together until all have stopped."""
    device = row_models[chunk[0]][0].device
    sync = (lambda: torch.cuda.synchronize(device)) if (profile and device.type == "cuda") else (lambda: None)
    states = [_new_state(k, specs[k], device) for k in chunk]
    eos: set[int] = set().union(*(m.eos_token_ids for k in chunk for m in row_models[k]))
    tokenizer = row_models[chunk[0]][0].tokenizer
    live = {k: st for k, st in zip(chunk, states)}
    t0 = time.perf_counter()
    contexts = [g.open(set(chunk), stats) for g in groups]
    owner = {a: g for g, c in enumerate(contexts) for a in c.row_of}
    while live:
        sync()
        timing = {"forward": time.perf_counter() - t0}
        step_dists = _StepDistributions(live, contexts, owner)
        tokens: dict[int, int] = {}
        for k, st in live.items():
            logp, p = step_dists.of(k)
            tokens[k] = _auction_step(st, p, logp, len(st.generated), on_step, timing)
            st.generated.append(tokens[k])
            st.stop_reason = _finished(st, eos, tokenizer)
        bar.update(len(live))
        live = {k: st for k, st in live.items() if st.stop_reason is None}
        if not live:
            break
        t0 = time.perf_counter()
        for c in contexts:
            c.advance({k: tokens[k] for k in live})
    return states


def _new_state(k: int, spec: AuctionSpec, device: torch.device) -> _AuctionState:
    opts = spec.options
    rule_fn = get_rule(opts.rule)
    builtin = rule_name(rule_fn)
    seed = opts.seed if opts.seed is not None else secrets.randbits(63)
    bids = np.asarray(spec.bids, dtype=np.float64)
    bids_t = torch.tensor(bids / bids.max(), dtype=torch.float32, device=device)
    bids64 = torch.tensor(bids / bids.max(), dtype=torch.float64, device=device)
    label = builtin or getattr(rule_fn, "__name__", "custom")
    return _AuctionState(index=k, spec=spec, rule_fn=rule_fn, builtin=builtin, bids_t=bids_t, bids64=bids64,
                         generator=torch.Generator(device=device).manual_seed(seed),
                         builder=TranscriptBuilder(spec=spec, rule_label=label, seed=seed))


def run_auction(
    prompts: Sequence[str],
    bids: Sequence[float] | Mapping[str, float],
    *,
    model: ModelLike | Sequence[ModelLike] = DEFAULT_MODEL,
    on_step: Callable[[StepInfo], None] | None = None,
    profile: bool = False,
    **options: Any,
) -> Transcript:
    """Run one token auction and return its :class:`Transcript`.

    ``options`` are those of :meth:`AuctionSpec.create` (``names``, ``rule``,
    ``max_new_tokens``, ``stop_strings``, ``temperature``, ``greedy``, ``top_k``, ``top_p``,
    ``sampler``, ``stable_agent``, ``seed``, ``payments``); ``model``, ``on_step`` and
    ``profile`` are those of :func:`run_auctions`.

    Raises:
        ValueError / TypeError: bad prompts, bids, options or rule name;
        :class:`~.models.ModelLoadError` for an unknown model.
    """
    spec = AuctionSpec.create(prompts, bids, **options)
    return run_auctions([spec], model=model, on_step=on_step, profile=profile)[0]


def run_scenario(
    scenario: Any,
    *,
    model: ModelLike | Sequence[ModelLike] | None = None,
    bids: Sequence[float] | Mapping[str, float] | None = None,
    rule: str | Callable[..., Any] | None = None,
    max_new_tokens: int | None = None,
    **options: Any,
) -> Transcript:
    """Run a :class:`~.scenarios.Scenario` (or a scenario name / YAML path).

    ``model``, ``bids``, ``rule`` and ``max_new_tokens`` override the scenario's; other keyword
    options go to :func:`run_auction`.  The scenario's stop strings are used unless
    ``stop_strings`` is given.
    """
    return run_scenario_sweep(scenario, [bids] if bids is not None else [None], model=model, rule=rule,
                              max_new_tokens=max_new_tokens, **options)[0]


def run_scenario_sweep(
    scenario: Any,
    bid_profiles: Sequence[Sequence[float] | Mapping[str, float] | None],
    *,
    model: ModelLike | Sequence[ModelLike] | None = None,
    rule: str | Callable[..., Any] | Sequence[str | Callable[..., Any]] | None = None,
    max_new_tokens: int | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
    profile: bool = False,
    max_rows: int | None = None,
    progress: bool = False,
    **options: Any,
) -> list[Transcript]:
    """One scenario over several bid profiles (and rules), in one batched :func:`run_auctions` call.

    ``bid_profiles``: one profile per auction (``None`` keeps the scenario's bids); ``rule``:
    one rule for all, or one per profile.  The scenario's stop strings are used unless
    ``stop_strings`` is given.  Errors name the auction at fault.
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    profiles = list(bid_profiles)
    if not profiles:
        raise ValueError("no auctions: bid_profiles is empty")
    rules = list(rule) if isinstance(rule, (list, tuple)) else [rule] * len(profiles)
    if len(rules) != len(profiles):
        raise ValueError(f"{len(rules)} rules given for {len(profiles)} bid profiles")
    options.setdefault("stop_strings", list(sc.stop))
    specs = []
    for k, (bids, r) in enumerate(zip(profiles, rules)):
        try:
            s = sc.with_bids(bids) if bids is not None else sc
        except ValueError as exc:
            raise ValueError(f"auction {k}: {exc}") from None
        specs.append(_as_spec(dict(prompts=s.prompts, bids=s.bids, names=s.names, rule=r if r is not None else sc.rule,
                                   max_new_tokens=max_new_tokens if max_new_tokens is not None else sc.max_new_tokens,
                                   **options), k))
    return run_auctions(specs, model=model if model is not None else (sc.model or DEFAULT_MODEL), on_step=on_step,
                        profile=profile, max_rows=max_rows, progress=progress)
