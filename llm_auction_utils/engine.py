"""Token-by-token auction decoding with a real LLM (THEORY.md sections 1, 4, 5).

The auction runs "like one giant LLM": each agent ``i`` is a prompt over a
causal LM; its context is its own prompt followed by the *shared*
continuation ``x``.  At every step

1. one batched forward pass over the ``n`` agent contexts (left padding,
   attention mask, position ids counted from each prompt's first real token,
   KV cache: the prompts are prefilled once, then one token per step) gives
   every agent's next-token distribution ``p_i = softmax(logits_i / T)``
   (float32, normalized accurately: see :func:`next_token_distributions`);
2. the aggregation rule (``"linear"``, ``"log_linear"`` or any callable
   ``rule(dists, bids) -> q`` of :mod:`~llm_auction_utils.aggregation`) turns
   them into ``q = A(p_1..p_n; b)``;
3. every agent's expected critical-bid (second-price) payment is computed with
   :func:`~llm_auction_utils.payments.expected_critical_payments`; a step where
   the rule is not monotone for an agent is *flagged* (``monotone=False``,
   payment 0) instead of being charged;
4. one token is chosen and appended to every context.

Order of operations: **temperature -> aggregation -> top-k -> top-p ->
sample / argmax**.  Temperature acts on each agent's distribution before
aggregation, so the theory applies to the tempered distributions.  Top-k and
top-p truncate the *aggregate* after aggregation; truncated sampling is
outside the theory's guarantees (the realized token no longer follows ``q``, so
the critical-bid payments, computed from the untruncated ``q``, lose their
incentive properties).  ``greedy=True`` takes the argmax of ``q``.

``sampler="stable"`` lets the stable sampler of
:func:`~llm_auction_utils.sampling.stable_step` choose the token for one
``stable_agent``: the token then follows ``q`` exactly and the agent's
*realized* critical-bid payment is recorded (it pays its critical bid only when
its bid switched the token).

Everything per step stays in torch on the model's device: the vocabulary of the
default model has 262,144 tokens, so no Python loop over it and no per-step
copies to the host besides the chosen token id (the stable sampler of the
theory core works in float64 numpy, so ``sampler="stable"`` copies the step's
distributions to the host).
"""

from __future__ import annotations

import inspect
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .aggregation import bid_shares, get_rule, rule_name
from .models import DEFAULT_MODEL, LoadedModel, check_shared_tokenizer, load_model
from .payments import NotMonotoneError, expected_critical_payments, pay_your_bid
from .sampling import sample_token, stable_step

__all__ = [
    "StepInfo",
    "Transcript",
    "aggregate_top_k",
    "aggregate_top_p",
    "next_token_distributions",
    "run_auction",
    "run_scenario",
]

ModelLike = LoadedModel | str


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class StepInfo:
    """What an ``on_step`` callback sees after each decoding step (tensors on the model's device).

    ``dists (n, V)``: agents' next-token distributions (after temperature);
    ``aggregate (V,)``: ``q`` before any top-k/top-p truncation; ``token_id``:
    the chosen token; ``payments (n,)`` / ``monotone (n,)``: expected
    critical-bid payments and flags (``None`` when payments are off).
    The tensors are not reused by the engine; clone them only to modify them.
    """

    step: int
    dists: torch.Tensor
    aggregate: torch.Tensor
    token_id: int
    payments: torch.Tensor | None
    monotone: torch.Tensor | None


@dataclass(frozen=True)
class Transcript:
    """Result of one auction: the creative and its token-by-token accounting.

    Attributes:
        text: the creative (decoded continuation, cut before the first stop string).
        table: one row per auctioned token -- ``step``, ``token_id``, ``token``
            (its text), ``q`` (aggregate probability of the token, before any
            truncation), per agent ``p_<name>`` (its probability of the token),
            ``share_<name>`` (bid share), ``expected_payment_<name>`` (expected
            critical-bid payment; 0 where flagged), ``pay_your_bid_<name>``,
            ``monotone_<name>``; then ``monotone`` (all agents), ``realized_payment``
            and ``switched`` (the stable sampler's realized critical-bid payment of
            ``stable_agent``; 0 and False with the standard sampler).
        totals: per agent (index) ``bid``, ``share``, ``expected_payment``,
            ``realized_payment``, ``pay_your_bid`` summed over the tokens, and
            ``non_monotone_steps`` (steps flagged, not charged).
        agents, bids, prompts: the auction's input; ``rule`` its rule's name.
        token_ids: the auctioned tokens (the stop token included).
        stop_reason: ``"eos"``, ``"stop_string"`` or ``"max_new_tokens"``.
        sampler, stable_agent, seed, greedy, temperature, top_k, top_p: decoding options.
        timings: per-step seconds (``forward``, ``aggregation_payments``,
            ``auction``) when run with ``profile=True``, else ``None``.
    """

    text: str
    table: pd.DataFrame
    totals: pd.DataFrame
    agents: tuple[str, ...]
    bids: tuple[float, ...]
    prompts: tuple[str, ...]
    rule: str
    token_ids: tuple[int, ...]
    stop_reason: str
    sampler: str = "standard"
    stable_agent: str | None = None
    seed: int | None = None
    greedy: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    timings: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def n_tokens(self) -> int:
        """Number of auctioned tokens."""
        return len(self.token_ids)

    def payment_table(self) -> pd.DataFrame:
        """The per-token payment columns (for printing): step, token, q, payments, flags."""
        cols = ["step", "token", "q"]
        cols += [f"expected_payment_{a}" for a in self.agents if f"expected_payment_{a}" in self.table]
        if self.sampler == "stable":
            cols += ["realized_payment", "switched"]
        if "monotone" in self.table:
            cols.append("monotone")
        return self.table[cols]


# --------------------------------------------------------------------------- distributions


def next_token_distributions(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``p = softmax(logits / temperature)`` over the last axis, in float32, accurately normalized.

    Computed as ``exp(x - max) / sum`` with ``torch.sum`` (cascade / tree
    summation).  ``torch.softmax``'s CPU kernel accumulates the normalizer of a
    262,144-token vocabulary in float32 sequentially: its rows sum to
    ``1 +- 1.2e-4`` on Gemma 3 logits, beyond the theory core's tolerance (1e-4);
    here rows sum to 1 within ~1e-6.
    """
    x = logits.float()
    if temperature != 1.0:
        x = x / temperature
    x = x - x.amax(dim=-1, keepdim=True)
    x.exp_()
    return x.div_(x.sum(dim=-1, keepdim=True))


# --------------------------------------------------------------------------- truncation


def aggregate_top_k(q: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` most probable tokens of ``q (..., V)`` and renormalize (ties broken by index).

    Applied after aggregation: outside the theory's guarantees.
    """
    if k >= q.shape[-1]:
        return q
    idx = torch.topk(q, k, dim=-1).indices
    kept = torch.zeros_like(q).scatter_(-1, idx, q.gather(-1, idx))
    return kept / kept.sum(-1, keepdim=True)


def aggregate_top_p(q: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus truncation of ``q (..., V)``: keep the smallest set of most probable tokens
    whose mass reaches ``p`` (the top token always stays), renormalized.

    Applied after aggregation (and after top-k): outside the theory's guarantees.
    """
    if p >= 1.0:
        return q
    sorted_q, order = torch.sort(q, dim=-1, descending=True)
    before = torch.cumsum(sorted_q, dim=-1) - sorted_q  # mass strictly above each token
    keep_sorted = before < p
    keep_sorted[..., 0] = True
    kept = torch.zeros_like(q).scatter_(-1, order, torch.where(keep_sorted, sorted_q, 0.0))
    return kept / kept.sum(-1, keepdim=True)


# --------------------------------------------------------------------------- batched model


class _AgentBatch:
    """The agents of one model: left-padded prompts, KV cache, one forward per step."""

    def __init__(self, lm: LoadedModel, agent_idx: list[int], prompt_ids: list[list[int]], max_new_tokens: int):
        self.lm = lm
        self.agent_idx = agent_idx
        model = lm.model
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._keep_kw = "logits_to_keep" if "logits_to_keep" in params else None
        dev = lm.device
        k = len(prompt_ids)
        lens = [len(ids) for ids in prompt_ids]
        L = max(lens)
        pad = lm.tokenizer.pad_token_id
        input_ids = torch.full((k, L), pad, dtype=torch.long)
        mask = torch.zeros((k, L + max_new_tokens), dtype=torch.long)
        for r, ids in enumerate(prompt_ids):
            input_ids[r, L - len(ids):] = torch.tensor(ids, dtype=torch.long)
            mask[r, L - len(ids):] = 1  # generated positions are real for everyone
        mask[:, L:] = 1
        self.input_ids = input_ids.to(dev)
        self.mask = mask.to(dev)
        self.prompt_len = L
        pos = self.mask[:, :L].cumsum(-1) - 1
        self.position_ids = pos.masked_fill(self.mask[:, :L] == 0, 0)
        self.next_pos = self.position_ids[:, -1:] + 1
        self.n_seen = 0
        self.cache: Any = None

    def _forward(self, **kw: Any) -> torch.Tensor:
        if self._keep_kw is not None:
            kw[self._keep_kw] = 1
        out = self.lm.model(use_cache=True, **kw)
        self.cache = getattr(out, "cache", None)
        if self.cache is None:
            self.cache = getattr(out, "past_key_values", None)
        return out.logits[:, -1, :]

    def prefill(self) -> torch.Tensor:
        """Forward pass over the padded prompts; returns the last-position logits ``(k, V)``."""
        self.n_seen = self.prompt_len
        return self._forward(input_ids=self.input_ids, attention_mask=self.mask[:, : self.n_seen],
                             position_ids=self.position_ids)

    def step(self, token: torch.Tensor) -> torch.Tensor:
        """Feed one token (0-d long tensor) to every context; returns next logits ``(k, V)``."""
        k = len(self.agent_idx)
        self.n_seen += 1
        logits = self._forward(
            input_ids=token.view(1, 1).expand(k, 1),
            attention_mask=self.mask[:, : self.n_seen],
            position_ids=self.next_pos,
            **{self._cache_kw: self.cache},
        )
        self.next_pos = self.next_pos + 1
        return logits


# --------------------------------------------------------------------------- validation


def _check_prompts(prompts: Sequence[str]) -> list[str]:
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise TypeError("prompts must be a sequence of strings, one per agent")
    if len(prompts) == 0:
        raise ValueError("no agents: prompts is empty")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f"prompt of agent {i} must be a string, got {type(p).__name__}")
        if not p.strip():
            raise ValueError(f"prompt of agent {i} is empty")
    return list(prompts)


def _check_bids(bids: Sequence[float] | Mapping[str, float], names: list[str]) -> list[float]:
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
    values = []
    for i, b in enumerate(list(bids)):
        if isinstance(b, torch.Tensor):
            b = b.item()
        if isinstance(b, bool) or not isinstance(b, (int, float, np.integer, np.floating)):
            raise ValueError(f"bid of agent {i} ({names[i] if i < len(names) else '?'}) is not a number: {b!r}")
        values.append(float(b))
    if len(values) != len(names):
        raise ValueError(f"{len(values)} bids given for {len(names)} agents")
    for i, b in enumerate(values):
        if math.isnan(b):
            raise ValueError(f"bid of agent {i} ({names[i]}) is NaN")
        if math.isinf(b):
            raise ValueError(f"bid of agent {i} ({names[i]}) is infinite")
        if b < 0:
            raise ValueError(f"bid of agent {i} ({names[i]}) is negative ({b})")
    if not any(b > 0 for b in values):
        raise ValueError("all bids are zero (at least one agent must bid > 0)")
    return values


def _resolve_models(model: ModelLike | Sequence[ModelLike], n: int) -> list[LoadedModel]:
    def one(m: ModelLike) -> LoadedModel:
        if isinstance(m, LoadedModel):
            return m
        if isinstance(m, str):
            return load_model(m)
        raise TypeError(f"model must be a LoadedModel or a model name, got {type(m).__name__}")

    if isinstance(model, (LoadedModel, str)):
        lm = one(model)
        return [lm] * n
    models = list(model)
    if len(models) != n:
        raise ValueError(f"{len(models)} models given for {n} agents (give one model, or one per agent)")
    resolved = [one(m) for m in models]
    distinct = list({id(m): m for m in resolved}.values())
    check_shared_tokenizer(distinct)
    devices = {str(m.device) for m in distinct}
    if len(devices) > 1:
        raise ValueError(f"agents' models are on different devices {sorted(devices)}; put them on one device")
    return resolved


# --------------------------------------------------------------------------- decoding


def run_auction(
    prompts: Sequence[str],
    bids: Sequence[float] | Mapping[str, float],
    *,
    model: ModelLike | Sequence[ModelLike] = DEFAULT_MODEL,
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
    payments: bool = True,
    on_step: Callable[[StepInfo], None] | None = None,
    profile: bool = False,
) -> Transcript:
    """Run one token auction and return its :class:`Transcript`.

    Args:
        prompts: one prompt per agent (its own context; the continuation is shared).
        bids: one bid per agent (sequence, or mapping name -> bid); finite, >= 0, not all 0.
        model: a :class:`~llm_auction_utils.models.LoadedModel` or model name for all
            agents, or one per agent (models must share one tokenizer).
        names: agents' names (default ``agent0, agent1, ...``), unique.
        rule: ``"linear"``, ``"log_linear"`` or a callable ``rule(dists, bids) -> q``.
        max_new_tokens: at most this many auctioned tokens (>= 1).
        stop_strings: stop once the creative contains one of these (e.g. ``"\\n"``); the
            text is cut before it.  Decoding also stops at the model's EOS token.
        temperature: ``p_i = softmax(logits_i / temperature)``, before aggregation.
        greedy: choose ``argmax q`` instead of sampling.
        top_k, top_p: truncate the aggregate before sampling (after aggregation:
            outside the theory's guarantees).  Order: temperature -> aggregation ->
            top-k -> top-p -> sample / argmax.
        sampler: ``"standard"`` (inverse-CDF draw from the truncated ``q``) or
            ``"stable"`` (stable sampling for ``stable_agent``; the token follows ``q``
            exactly and the agent's realized critical-bid payment is recorded).
        stable_agent: index or name of the agent whose coupling drives the step.
        seed: seeds a ``torch.Generator`` on the model's device (reproducible on the
            same hardware); ``None`` draws a fresh seed, recorded in the transcript.
        payments: compute expected critical-bid payments (off: faster sweeps).
        on_step: callback receiving a :class:`StepInfo` after every step.
        profile: record per-step timings (synchronizing the device).

    Raises:
        ValueError / TypeError: bad prompts, bids, options or rule name;
        :class:`~llm_auction_utils.models.ModelLoadError` for an unknown model.
    """
    prompts = _check_prompts(prompts)
    n = len(prompts)
    names = [f"agent{i}" for i in range(n)] if names is None else [str(a) for a in names]
    if len(names) != n:
        raise ValueError(f"{len(names)} names given for {n} agents")
    if len(set(names)) != n:
        raise ValueError(f"agent names must be unique, got {names}")
    bid_list = _check_bids(bids, names)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)):
        raise TypeError(f"max_new_tokens must be an integer, got {type(max_new_tokens).__name__}")
    if max_new_tokens <= 0:
        raise ValueError(f"max_new_tokens must be positive, got {max_new_tokens}")
    max_new_tokens = int(max_new_tokens)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
        math.isfinite(temperature) and temperature > 0
    ):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    if top_p is not None and not (isinstance(top_p, (int, float)) and 0.0 < top_p <= 1.0):
        raise ValueError(f"top_p must lie in (0, 1] or be None, got {top_p!r}")
    if sampler not in ("standard", "stable"):
        raise ValueError(f"unknown sampler {sampler!r}; use 'standard' or 'stable'")
    stable_idx: int | None = None
    if sampler == "stable":
        if greedy:
            raise ValueError("greedy=True and sampler='stable' exclude each other")
        if top_k is not None or top_p is not None:
            raise ValueError("the stable sampler draws from the exact aggregate; top_k/top_p are not allowed")
        if stable_agent is None:
            raise ValueError("sampler='stable' needs stable_agent (the agent whose payment is realized)")
        if isinstance(stable_agent, str):
            if stable_agent not in names:
                raise ValueError(f"stable_agent {stable_agent!r} is not one of {names}")
            stable_idx = names.index(stable_agent)
        elif isinstance(stable_agent, (int, np.integer)) and not isinstance(stable_agent, bool) and 0 <= stable_agent < n:
            stable_idx = int(stable_agent)
        else:
            raise ValueError(f"stable_agent must be an agent name or an index in [0, {n}), got {stable_agent!r}")
    elif stable_agent is not None:
        raise ValueError("stable_agent is only used with sampler='stable'")
    if isinstance(stop_strings, str):
        stop_strings = [stop_strings]
    stops = [s for s in (stop_strings or [])]
    if any(not isinstance(s, str) or not s for s in stops):
        raise ValueError(f"stop_strings must be non-empty strings, got {stop_strings!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    rule_fn = get_rule(rule)  # ValueError for an unknown name
    builtin = rule_name(rule_fn)
    rname = builtin or getattr(rule_fn, "__name__", "custom")

    models = _resolve_models(model, n)
    lead = models[0]
    tok = lead.tokenizer
    device = lead.device
    seed = int(seed) if seed is not None else secrets.randbits(63)
    gen = torch.Generator(device=device).manual_seed(seed)
    eos_set: set[int] = set().union(*(m.eos_token_ids for m in models))

    prompt_ids = [tok(p, add_special_tokens=True)["input_ids"] for p in prompts]
    groups: dict[int, list[int]] = {}
    for i, m in enumerate(models):
        groups.setdefault(id(m), []).append(i)
    batches = [
        _AgentBatch(models[idx[0]], idx, [prompt_ids[i] for i in idx], max_new_tokens) for idx in groups.values()
    ]
    single = len(batches) == 1
    bids_t = torch.tensor(bid_list, dtype=torch.float32, device=device)
    shares = bid_shares(bids_t)
    pyb = pay_your_bid(bids_t)
    sync = (lambda: torch.cuda.synchronize(device)) if (profile and device.type == "cuda") else (lambda: None)

    def distributions(logits_per_batch: list[torch.Tensor]) -> torch.Tensor:
        if single:
            logits = logits_per_batch[0]
        else:
            logits = torch.empty((n, logits_per_batch[0].shape[-1]), dtype=logits_per_batch[0].dtype, device=device)
            for b, lg in zip(batches, logits_per_batch):
                logits[b.agent_idx] = lg
        return next_token_distributions(logits, temperature)

    rec_tok: list[torch.Tensor] = []
    rec_q: list[torch.Tensor] = []
    rec_p: list[torch.Tensor] = []
    rec_pay: list[torch.Tensor] = []
    rec_mono: list[torch.Tensor] = []
    rec_real: list[float] = []
    rec_switch: list[bool] = []
    t_fwd: list[float] = []
    t_aggpay: list[float] = []
    t_auction: list[float] = []
    generated: list[int] = []
    stop_reason = "max_new_tokens"
    text = ""

    with torch.inference_mode():
        t0 = time.perf_counter()
        logits_list = [b.prefill() for b in batches]
        for step in range(max_new_tokens):
            sync()
            t1 = time.perf_counter()
            if step > 0:
                t_fwd.append(t1 - t0)
            dists = distributions(logits_list)
            q = rule_fn(dists, bids_t)
            if builtin is None:  # a user rule: check its output once per step
                if not isinstance(q, torch.Tensor) or tuple(q.shape) != (dists.shape[-1],):
                    raise ValueError(f"rule {rname!r} must return a tensor of shape ({dists.shape[-1]},)")
                if not bool(torch.isfinite(q).all()) or abs(float(q.sum()) - 1.0) > 1e-3 or bool((q < 0).any()):
                    raise ValueError(f"rule {rname!r} returned an invalid distribution at step {step}")
            if payments:
                cp = expected_critical_payments(dists, bids_t, rule_fn)
                pay_t, mono_t = cp.payments, cp.monotone
            else:
                pay_t = mono_t = None
            sync()
            t2 = time.perf_counter()
            realized, switched = 0.0, False
            if sampler == "stable":
                try:
                    draw = stable_step(dists, bids_t, stable_idx, rule_fn, gen)
                    token_id = int(draw.token)
                    realized, switched = float(draw.payment), bool(draw.switched)
                except NotMonotoneError:
                    # no coupling on this step: draw from q, charge nothing, flag the agent
                    token_id = int(sample_token(q, gen))
                    if mono_t is not None:
                        mono_t = mono_t.clone()
                        mono_t[stable_idx] = False
                token = torch.tensor(token_id, device=device)
            else:
                if greedy:
                    token = torch.argmax(q)
                else:
                    qs = q
                    if top_k is not None:
                        qs = aggregate_top_k(qs, int(top_k))
                    if top_p is not None:
                        qs = aggregate_top_p(qs, float(top_p))
                    token = torch.as_tensor(sample_token(qs, gen), device=device)
                token_id = int(token)
            rec_tok.append(token)
            rec_q.append(q[token])
            rec_p.append(dists[:, token])
            if pay_t is not None:
                rec_pay.append(pay_t)
                rec_mono.append(mono_t)
            rec_real.append(realized)
            rec_switch.append(switched)
            generated.append(token_id)
            if on_step is not None:
                on_step(StepInfo(step, dists, q, token_id, pay_t, mono_t))
            t3 = time.perf_counter()
            t_aggpay.append(t2 - t1)
            t_auction.append(t3 - t1)

            if token_id in eos_set:
                stop_reason = "eos"
                break
            if stops:
                text = tok.decode(generated, skip_special_tokens=True)
                if any(s in text for s in stops):
                    stop_reason = "stop_string"
                    break
            if step + 1 == max_new_tokens:
                break
            t0 = time.perf_counter()
            logits_list = [b.step(token) for b in batches]

    # ---------------------------------------------------------------- transcript
    full = tok.decode(generated, skip_special_tokens=True)
    cut = min([full.find(s) for s in stops if s in full], default=-1)
    text = full if cut < 0 else full[:cut]
    pieces = _token_texts(tok, generated)
    T = len(generated)
    q_np = torch.stack(rec_q).double().cpu().numpy()
    p_np = torch.stack(rec_p).double().cpu().numpy()  # (T, n)
    share_np = shares.double().cpu().numpy()
    pyb_np = pyb.double().cpu().numpy()
    cols: dict[str, Any] = {
        "step": np.arange(T),
        "token_id": np.asarray(generated, dtype=np.int64),
        "token": pieces,
        "q": q_np,
    }
    for i, a in enumerate(names):
        cols[f"p_{a}"] = p_np[:, i]
    for i, a in enumerate(names):
        cols[f"share_{a}"] = np.full(T, share_np[i])
    if payments:
        pay_np = torch.stack(rec_pay).double().cpu().numpy()
        mono_np = torch.stack(rec_mono).cpu().numpy().astype(bool)
        for i, a in enumerate(names):
            cols[f"expected_payment_{a}"] = pay_np[:, i]
    for i, a in enumerate(names):
        cols[f"pay_your_bid_{a}"] = np.full(T, pyb_np[i])
    if payments:
        for i, a in enumerate(names):
            cols[f"monotone_{a}"] = mono_np[:, i]
        cols["monotone"] = mono_np.all(axis=1)
    cols["realized_payment"] = np.asarray(rec_real, dtype=np.float64)
    cols["switched"] = np.asarray(rec_switch, dtype=bool)
    table = pd.DataFrame(cols)
    numeric = table.select_dtypes(include=[np.number])
    if numeric.isna().to_numpy().any():
        bad = numeric.columns[numeric.isna().any()].tolist()
        raise FloatingPointError(f"NaN in the transcript (columns {bad}); the model produced invalid logits")

    realized_tot = np.zeros(n)
    if stable_idx is not None:
        realized_tot[stable_idx] = float(np.sum(rec_real))
    totals = pd.DataFrame(
        {
            "bid": np.asarray(bid_list),
            "share": share_np,
            "expected_payment": pay_np.sum(axis=0) if payments else np.zeros(n),
            "realized_payment": realized_tot,
            "pay_your_bid": pyb_np * T,
            "non_monotone_steps": (~mono_np).sum(axis=0) if payments else np.zeros(n, dtype=int),
        },
        index=pd.Index(names, name="agent"),
    )
    timings = None
    if profile:
        timings = {
            "forward": np.asarray(t_fwd),
            "aggregation_payments": np.asarray(t_aggpay),
            "auction": np.asarray(t_auction),
        }
    return Transcript(
        text=text, table=table, totals=totals, agents=tuple(names), bids=tuple(bid_list),
        prompts=tuple(prompts), rule=rname, token_ids=tuple(generated), stop_reason=stop_reason,
        sampler=sampler, stable_agent=names[stable_idx] if stable_idx is not None else None, seed=seed,
        greedy=bool(greedy), temperature=float(temperature), top_k=top_k, top_p=top_p, timings=timings,
    )


def _token_texts(tok: Any, ids: list[int]) -> list[str]:
    """Each token's text as it appears in the decoded creative (incremental decoding)."""
    out, prev = [], ""
    for k in range(1, len(ids) + 1):
        cur = tok.decode(ids[:k], skip_special_tokens=False)
        out.append(cur[len(prev):] if cur.startswith(prev) else tok.decode([ids[k - 1]]))
        prev = cur
    return out


def run_scenario(
    scenario: Any,
    *,
    model: ModelLike | Sequence[ModelLike] | None = None,
    bids: Sequence[float] | Mapping[str, float] | None = None,
    rule: str | Callable[..., Any] | None = None,
    max_new_tokens: int | None = None,
    **options: Any,
) -> Transcript:
    """Run a :class:`~llm_auction_utils.scenarios.Scenario` (or a scenario name / YAML path).

    ``model``, ``bids``, ``rule`` and ``max_new_tokens`` override the scenario's;
    other keyword options go to :func:`run_auction` (e.g. ``greedy``, ``seed``).
    The scenario's stop strings are used unless ``stop_strings`` is given.
    """
    from .scenarios import Scenario, load_scenario

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if bids is not None:
        sc = sc.with_bids(bids)
    options.setdefault("stop_strings", list(sc.stop))
    return run_auction(
        sc.prompts,
        sc.bids,
        model=model if model is not None else (sc.model or DEFAULT_MODEL),
        names=sc.names,
        rule=rule if rule is not None else sc.rule,
        max_new_tokens=max_new_tokens if max_new_tokens is not None else sc.max_new_tokens,
        **options,
    )
