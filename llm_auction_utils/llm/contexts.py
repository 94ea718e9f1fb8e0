"""Each distinct context computed once: the model rows behind a sweep of auctions.

An agent's next-token logits depend on its model, its prompt and the tokens generated so far,
never on the bids (notebooks/theory.md §1: the agents are fixed LLMs; only the aggregation sees
the bids).  When many auctions run together they often share contexts: every auction of a sweep
starts from the same agent prompts, and auctions with nearby bids write the same tokens for a
while before they part.  So a *model row* here is keyed by its context

    (model, prompt, generated tokens),

and every agent of every auction reads the row that holds its context:

* identical prompts are prefilled once (:meth:`ModelRows.prefill`); the prompts' longest common
  token prefix (the few-shot examples) is prefilled once for the whole sweep and its KV cache
  copied into every row;
* after each step, agents whose contexts are still equal keep sharing one row; when auctions that
  shared a row choose different tokens, the row **forks**: its KV cache is copied by index, as
  beam search reorders a cache with repeated indices (:meth:`ModelRows.step`); rows that no live
  auction reads leave the batch.

The result is exact: a row's logits are those of its context whatever else is in the batch (up
to the round-off of the batch composition).  :class:`RowStats` counts what was computed against
what a loop that computes every auction's every agent would compute.

Layout of a row (unchanged by forking): ``[shared prefix][padding][rest of the prompt][generated
tokens]``; padding is masked and position ids count real tokens only, so every row sees exactly
its own prompt.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from .models import LoadedModel

__all__ = ["AgentRow", "ChunkContexts", "ModelRows", "RowStats"]

AgentRow = tuple[int, int]
"""An agent of an auction: ``(auction index, agent index)``."""


@dataclass
class RowStats:
    """What one :func:`~.engine.run_auctions` call computed, against a loop without sharing.

    A loop that computes every auction's every agent (the engine before context keying, or Hugging
    Face ``generate`` over all prompts) runs ``rows_unshared`` rows through the model; this engine
    runs ``rows_computed``, one per distinct context and pass.  Both count the prefill pass (one row
    per prompt) and every decoding pass (one row per context and new token).

    Attributes:
        passes: forward passes (prefill and decoding, every model and chunk).
        rows_computed: rows over all passes (distinct contexts).
        rows_unshared: agent rows over the same passes (what a non-forking loop computes).
        prefill_rows: rows of the prefill passes (distinct prompts).
        prefill_rows_unshared: agent rows at prefill.
        max_rows: the most rows in one pass.
        forks: rows created by a fork (a shared context whose auctions chose different tokens).
    """

    passes: int = 0
    rows_computed: int = 0
    rows_unshared: int = 0
    prefill_rows: int = 0
    prefill_rows_unshared: int = 0
    max_rows: int = 0
    forks: int = 0

    def add_pass(self, rows: int, agent_rows: int, prefill: bool) -> None:
        """Count one forward pass of ``rows`` distinct contexts serving ``agent_rows`` agents."""
        self.passes += 1
        self.rows_computed += rows
        self.rows_unshared += agent_rows
        self.max_rows = max(self.max_rows, rows)
        if prefill:
            self.prefill_rows += rows
            self.prefill_rows_unshared += agent_rows

    @property
    def sharing(self) -> float:
        """``rows_unshared / rows_computed``: how many times fewer rows than a non-forking loop."""
        return self.rows_unshared / self.rows_computed if self.rows_computed else 1.0


class ModelRows:
    """One model's rows over distinct prompts: shared-prefix KV cache, prefill, fork and step.

    ``prompt_ids`` are the sweep's *distinct* prompts of this model, as token lists.  The prefix
    (the longest common token prefix of all of them, at most all but one token of the shortest)
    is prefilled once, at construction, when ``share_prefix``.
    """

    def __init__(self, lm: LoadedModel, prompt_ids: list[list[int]], share_prefix: bool):
        self.lm = lm
        params = inspect.signature(lm.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._keep_kw = "logits_to_keep" if "logits_to_keep" in params else None
        self.prompt_ids = prompt_ids
        self.prefix_len = common_prefix_len(prompt_ids) if share_prefix else 0
        self.prefix_cache: Any = None
        self.cache: Any = None
        if self.prefix_len > 0:
            self._forward(input_ids=torch.tensor([prompt_ids[0][: self.prefix_len]], device=lm.device))
            self.prefix_cache, self.cache = self.cache, None

    def _forward(self, **kw: Any) -> torch.Tensor:
        if self._keep_kw is not None:
            kw[self._keep_kw] = 1
        out = self.lm.model(use_cache=True, **kw)
        self.cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        return out.logits[:, -1, :]

    def prefill(self, prompts: list[int]) -> torch.Tensor:
        """Prefill the prompts ``prompts`` (indices into ``prompt_ids``), one row each; returns
        their next-token logits ``(R, V)``.  Starts a new batch (the previous one is dropped).

        Prompts of very different lengths are prefilled in length buckets (:func:`length_buckets`),
        so that a long prompt does not pad every other row to its length; the buckets' caches are
        then joined into one batch by padding each row's cache after the shared prefix (masked
        positions, as the padding of a single batch).  Falls back to one batch where the cache
        cannot be joined that way (a cache that is not a plain dynamic cache, or a context past a
        sliding window).
        """
        lens = [len(self.prompt_ids[r]) - self.prefix_len for r in prompts]
        buckets = length_buckets(lens)
        if len(buckets) == 1:
            return self._prefill_batch(prompts)
        parts = []
        for bucket in buckets:
            logits = self._prefill_batch([prompts[j] for j in bucket])
            parts.append((bucket, logits, self.cache, self.mask, self.next_pos))
        if not all(_joinable(c) for _, _, c, _, _ in parts):
            return self._prefill_batch(prompts)
        order = torch.tensor([j for bucket in buckets for j in bucket], device=self.lm.device)
        self.cache, self.mask = _join_padded([(c, m) for _, _, c, m, _ in parts], self.prefix_len)
        self.next_pos = torch.cat([pos for *_, pos in parts])
        logits = torch.cat([lg for _, lg, *_ in parts])
        back = torch.empty_like(order)
        back[order] = torch.arange(len(order), device=order.device)
        self.cache.batch_select_indices(back)
        self.mask, self.next_pos = self.mask[back], self.next_pos[back]
        return logits[back]

    def _prefill_batch(self, prompts: list[int]) -> torch.Tensor:
        """Prefill ``prompts`` as one left-padded batch (padding after the shared prefix)."""
        dev, lp = self.lm.device, self.prefix_len
        suffixes = [self.prompt_ids[r][lp:] for r in prompts]
        ls = max(len(s) for s in suffixes)
        input_ids = torch.full((len(prompts), ls), self.lm.tokenizer.pad_token_id, dtype=torch.long)
        suffix_mask = torch.zeros((len(prompts), ls), dtype=torch.long)
        for k, ids in enumerate(suffixes):
            input_ids[k, ls - len(ids):] = torch.tensor(ids, dtype=torch.long)
            suffix_mask[k, ls - len(ids):] = 1
        self.mask = torch.cat([torch.ones((len(prompts), lp), dtype=torch.long), suffix_mask], dim=1).to(dev)
        pos = (lp + suffix_mask.cumsum(-1) - 1).masked_fill(suffix_mask == 0, 0).to(dev)
        kw: dict[str, Any] = {}
        if lp > 0:
            cache = copy.deepcopy(self.prefix_cache)
            cache.batch_repeat_interleave(len(prompts))
            kw[self._cache_kw] = cache
        logits = self._forward(input_ids=input_ids.to(dev), attention_mask=self.mask, position_ids=pos, **kw)
        self.next_pos = pos[:, -1:] + 1
        return logits

    def step(self, parents: list[int], tokens: list[int]) -> torch.Tensor:
        """One decoding pass: new row ``j`` continues current row ``parents[j]`` with ``tokens[j]``.

        A parent listed twice forks (its cache is copied by index); a current row not listed
        leaves the batch.  Returns the new rows' next-token logits ``(len(parents), V)``.
        """
        dev = self.lm.device
        if parents != list(range(self.mask.shape[0])):
            idx = torch.tensor(parents, dtype=torch.long, device=dev)
            # copied by index, repeats allowed (as beam search reorders a cache); advanced indexing,
            # which is several times faster on a CPU than the index_select of Cache.reorder_cache
            self.cache.batch_select_indices(idx)
            self.mask, self.next_pos = self.mask[idx], self.next_pos[idx]
        self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=1)
        ids = torch.tensor(tokens, dtype=torch.long, device=dev).view(-1, 1)
        logits = self._forward(input_ids=ids, attention_mask=self.mask, position_ids=self.next_pos,
                               **{self._cache_kw: self.cache})
        self.next_pos = self.next_pos + 1
        return logits


def length_buckets(lengths: list[int], overhead: int = 64) -> list[list[int]]:
    """Split rows of the given lengths into buckets (lists of indices, by length) that minimize
    ``sum over buckets of (rows x longest length + overhead)``: the padded tokens a bucketed
    prefill computes, plus ``overhead`` token-equivalents per extra forward pass (dynamic
    programming over the sorted lengths)."""
    order = sorted(range(len(lengths)), key=lambda j: lengths[j])
    srt = [lengths[j] for j in order]
    best = [0.0] + [float("inf")] * len(srt)
    cut = [0] * (len(srt) + 1)
    for j in range(1, len(srt) + 1):
        for i in range(j):
            cost = best[i] + (j - i) * srt[j - 1] + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    buckets, j = [], len(srt)
    while j > 0:
        buckets.append(order[cut[j]:j])
        j = cut[j]
    return buckets[::-1]


def _joinable(cache: Any) -> bool:
    """Whether every layer of ``cache`` holds its whole context in ``keys``/``values`` (a plain
    dynamic layer, or a sliding-window layer not yet past its window)."""
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(
        type(layer).__name__ in ("DynamicLayer", "DynamicSlidingWindowLayer") and layer.is_initialized
        and layer.keys.shape[-2] == layer.get_seq_length() for layer in layers)


def _join_padded(parts: list[tuple[Any, torch.Tensor]], prefix_len: int) -> tuple[Any, torch.Tensor]:
    """Join batches ``(cache, mask)`` of different lengths into one: each batch's keys, values and
    mask get masked zeros inserted after the shared prefix, up to the longest length."""
    longest = max(mask.shape[1] for _, mask in parts)
    joined = parts[0][0]
    for k, layer in enumerate(joined.layers):
        for attr in ("keys", "values"):
            pieces = []
            for cache, mask in parts:
                t = getattr(cache.layers[k], attr)
                gap = t.new_zeros(t.shape[:2] + (longest - t.shape[2],) + t.shape[3:])
                pieces.append(torch.cat([t[:, :, :prefix_len], gap, t[:, :, prefix_len:]], dim=2))
            setattr(layer, attr, torch.cat(pieces))
        if hasattr(layer, "cumulative_length"):
            layer.cumulative_length = longest
    masks = [torch.cat([m[:, :prefix_len], m.new_zeros((m.shape[0], longest - m.shape[1])), m[:, prefix_len:]], dim=1)
             for _, m in parts]
    return joined, torch.cat(masks)


def common_prefix_len(prompt_ids: list[list[int]]) -> int:
    """Length of the longest common prefix of the token lists, leaving every list >= 1 token of suffix."""
    first = prompt_ids[0]
    limit = min(len(ids) for ids in prompt_ids) - 1
    k = 0
    while k < limit and all(ids[k] == first[k] for ids in prompt_ids):
        k += 1
    return k


class ChunkContexts:
    """One model's contexts within a chunk of auctions.

    ``agents`` maps every agent row ``(auction, agent)`` of this model in the chunk to its prompt
    (an index into ``rows.prompt_ids``).  After construction (the prefill) and after every
    :meth:`advance`, ``row_of[(k, i)]`` is the row of ``logits`` that holds agent ``i`` of
    auction ``k``'s context.
    """

    def __init__(self, rows: ModelRows, agents: Mapping[AgentRow, int], stats: RowStats):
        self.rows, self.stats = rows, stats
        prompts = list(dict.fromkeys(agents.values()))  # distinct, in order of first use
        where = {p: j for j, p in enumerate(prompts)}
        self.row_of: dict[AgentRow, int] = {a: where[p] for a, p in agents.items()}
        self.logits: torch.Tensor | None = rows.prefill(prompts) if prompts else None
        if prompts:
            stats.add_pass(len(prompts), len(agents), prefill=True)

    def advance(self, tokens: Mapping[int, int]) -> None:
        """Append each live auction's token (``tokens[k]``) to its agents' contexts.

        Agents whose contexts stay equal share one row; a row whose auctions chose different
        tokens forks; agents of auctions not in ``tokens`` (finished) leave, and with them every
        row no live auction reads.
        """
        new_rows: dict[tuple[int, int], int] = {}
        parents: list[int] = []
        feed: list[int] = []
        row_of: dict[AgentRow, int] = {}
        for (k, i), r in self.row_of.items():
            if k not in tokens:
                continue
            j = new_rows.setdefault((r, tokens[k]), len(parents))
            if j == len(parents):
                parents.append(r)
                feed.append(tokens[k])
            row_of[(k, i)] = j
        self.row_of = row_of
        if not parents:
            self.logits = None
            return
        self.stats.forks += len(parents) - len(set(parents))
        self.logits = self.rows.step(parents, feed)
        self.stats.add_pass(len(parents), len(row_of), prefill=False)
