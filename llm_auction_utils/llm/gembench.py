"""Real user queries and advertisers from GEM-Bench (notebook 09; theory chapter §6).

The data come from the PyPI package ``gembench`` (GEM-Bench, Hu et al. 2025, Apache-2.0 per
its metadata), installed WITHOUT its dependencies by the set-up script::

    python -m pip install --no-deps gembench==1.0.9

Two JSON files of that distribution are read; the package itself is never imported (its
``__init__`` needs openai, sentence-transformers, ... which are not installed):

* ``GemBench/benchmarking/dataset/LM_Market/prompts.json``: 100 user queries (LM-Market,
  curated by GEM-Bench from LMSYS-Chat-1M), a JSON list of strings;
* ``GemBench/benchmarking/dataset/product/products.json``: 626 product categories, each
  ``{"names": [...], "urls": [...], "descs": [...]}`` (parallel lists; 16 are ``{}``).

A hand-checked mapping, ``data/gembench/query_categories.yaml``, assigns each query id (its
0-based position in ``prompts.json``) one category or ``null``; its header states the rule.
**The advertisers of a query are the first** ``k`` **distinct brands of its category in file
order** (names compared case-insensitively; a repeated brand keeps its first description).

Every agent of a study auction is a prompt over one base model (theory chapter §6).  All of
them share one few-shot block (:data:`STUDY_EXAMPLES`) in which each example is headed by its
query line, ``"Query: <query>"``; some examples are ads (``"Ad for <brand>, <about>:"`` and one
line of copy) and some are plain answers (``"Answer:"`` and one line naming no brand).  After
the block comes the user's query line and the agent's open line: an advertiser's
``"Ad for <name>, <brief>:"`` (:func:`~.scenarios.advertiser_prompt`), or the neutral
**reference** agent's ``"Answer:"`` -- it answers the query with no advertiser.  So every agent
reads the user's query, and all prompts share their first ~100 tokens (prefilled once).

Errors name the file, the query id or the category: :class:`GemBenchNotInstalled` (a
``FileNotFoundError``: package or data file missing, with the install command) and
:class:`GemBenchDataError` (a ``ValueError``: bad schema, unknown query id or category, a
category with too few brands, data that differ from the hand-checked files).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .scenarios import AdExample, Scenario, advertiser_prompt, scenario_from_dict

__all__ = [
    "GEMBENCH_DISTRIBUTION",
    "GEMBENCH_VERSION",
    "INSTALL_COMMAND",
    "JUDGE_EXAMPLES",
    "JUDGE_NAME",
    "PRODUCTS_FILE",
    "PROMPTS_FILE",
    "QUERY_LINE",
    "REFERENCE_NAME",
    "STUDY_EXAMPLES",
    "AnswerExample",
    "Brand",
    "Category",
    "GemBenchDataError",
    "GemBenchFiles",
    "GemBenchNotInstalled",
    "QueryCategoryMap",
    "StudyItem",
    "advertiser_brief",
    "balanced_order",
    "clean_query",
    "default_mapping_path",
    "examples_block",
    "judge_prompt",
    "load_products",
    "load_queries",
    "load_query_categories",
    "load_study",
    "locate_gembench_files",
    "near_duplicates",
    "pick_brands",
    "query_words",
    "reference_prompt",
    "select_study_items",
    "selection_summary",
    "study_advertiser_prompt",
    "study_scenario",
]

GEMBENCH_DISTRIBUTION = "gembench"
GEMBENCH_VERSION = "1.0.9"
INSTALL_COMMAND = f"python -m pip install --no-deps {GEMBENCH_DISTRIBUTION}=={GEMBENCH_VERSION}"
PROMPTS_FILE = "GemBench/benchmarking/dataset/LM_Market/prompts.json"
PRODUCTS_FILE = "GemBench/benchmarking/dataset/product/products.json"
_TOP_LEVEL_PACKAGE = "GemBench"


class GemBenchDataError(ValueError):
    """The GEM-Bench data or the mapping file is malformed, or a request names an unknown
    query id or category, or a category has too few brands; the message says which."""


class GemBenchNotInstalled(FileNotFoundError):
    """The ``gembench`` distribution (or one of its data files) is not installed."""


# --------------------------------------------------------------------------- locating


@dataclass(frozen=True)
class GemBenchFiles:
    """Paths of the two data files of the installed distribution, and its version."""

    prompts: Path
    products: Path
    version: str | None = None


def _not_installed(detail: str) -> GemBenchNotInstalled:
    return GemBenchNotInstalled(
        f"{detail}; the GEM-Bench data come from the PyPI package {GEMBENCH_DISTRIBUTION!r}: "
        f"install it without its dependencies with `{INSTALL_COMMAND}`"
    )


def _package_root_without_import() -> Path | None:
    """Folder holding the top-level ``GemBench`` package, found without executing it.

    ``find_spec`` on a TOP-LEVEL name only searches ``sys.path``; it imports nothing
    (a dotted name would import the parents, running ``GemBench/__init__.py``).
    """
    try:
        spec = importlib.util.find_spec(_TOP_LEVEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).parent


def _files_from_record(dist: Any) -> GemBenchFiles | None:
    """Both data files as listed in the distribution's RECORD, when present on disk."""
    recorded = {str(f).replace("\\", "/"): f for f in (dist.files or [])}
    found: dict[str, Path] = {}
    for rel in (PROMPTS_FILE, PRODUCTS_FILE):
        if rel in recorded:
            candidate = Path(str(dist.locate_file(recorded[rel])))
            if candidate.is_file():
                found[rel] = candidate
    return GemBenchFiles(found[PROMPTS_FILE], found[PRODUCTS_FILE], dist.version) if len(found) == 2 else None


def locate_gembench_files(distribution: str = GEMBENCH_DISTRIBUTION) -> GemBenchFiles:
    """Paths of ``prompts.json`` and ``products.json`` of the installed ``gembench``.

    Looks the files up in the distribution's RECORD (``importlib.metadata``), then under the
    distribution's root and the top-level package's folder (``find_spec``, which executes
    nothing).  Nothing of the package is imported.  Raises :class:`GemBenchNotInstalled`
    naming the package, the missing file and the install command.
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    roots: list[Path] = []
    if dist is not None:
        found = _files_from_record(dist)
        if found is not None:
            return found
        roots.append(Path(str(dist.locate_file(""))))
    spec_root = _package_root_without_import()
    if spec_root is not None:
        roots.append(spec_root)
    if dist is None and spec_root is None:
        raise _not_installed(f"the Python package {distribution!r} is not installed")
    version = dist.version if dist is not None else None
    for root in roots:
        if (root / PROMPTS_FILE).is_file() and (root / PRODUCTS_FILE).is_file():
            return GemBenchFiles(root / PROMPTS_FILE, root / PRODUCTS_FILE, version)
    missing = [rel for rel in (PROMPTS_FILE, PRODUCTS_FILE) if not any((r / rel).is_file() for r in roots)]
    raise _not_installed(
        f"{distribution} {version or '(unknown version)'} is installed but lacks {', '.join(missing)} "
        f"(looked in {', '.join(str(r) for r in roots)}); expected version {GEMBENCH_VERSION}"
    )


# --------------------------------------------------------------------------- reading


def _read_json(path: Path, what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise _not_installed(f"the GEM-Bench {what} file {str(path)!r} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GemBenchDataError(f"{path.name}: not valid UTF-8 JSON: {exc}") from None


def load_queries(path: str | Path) -> list[str]:
    """The user queries of ``prompts.json`` (a JSON list of strings), as stored.

    Use :func:`clean_query` before putting one into a prompt.
    """
    data = _read_json(Path(path), "queries")
    name = Path(path).name
    if not isinstance(data, list) or not data:
        raise GemBenchDataError(f"{name}: expected a non-empty JSON list of query strings")
    for i, q in enumerate(data):
        if not isinstance(q, str) or not q.strip():
            raise GemBenchDataError(f"{name}: item {i} must be a non-empty string, got {q!r}")
    return list(data)


_WS = re.compile(r"\s+")


def clean_query(text: str) -> str:
    """One line: whitespace runs (newlines included) collapsed to one space, stripped.

    The auctions stop at the first newline, so a prompt's query must not contain one;
    12 of the 100 queries span several lines and 18 have leading or trailing blanks.
    """
    if not isinstance(text, str):
        raise TypeError(f"query must be a string, got {type(text).__name__}")
    return _WS.sub(" ", text).strip()


def _dedup_key(text: str) -> str:
    return clean_query(text).casefold()


@dataclass(frozen=True)
class Brand:
    """One advertiser of a category: ``name``, the file's ``description``, ``url``."""

    name: str
    description: str
    url: str

    @property
    def brief(self) -> str:
        """The description as the phrase after ``"Ad for <name>, "`` (:func:`advertiser_brief`)."""
        return advertiser_brief(self.name, self.description)


@dataclass(frozen=True)
class Category:
    """A product category: its ``name`` and distinct ``brands`` in file order."""

    name: str
    brands: tuple[Brand, ...]
    entries: int = 0  # rows in the file, repeats included


def _category(file: str, cat: str, entry: Any) -> Category:
    """One category of ``products.json``, its brands deduplicated case-insensitively (first wins)."""
    if not isinstance(entry, dict):
        raise GemBenchDataError(f"{file}: category {cat!r} must be an object, got {type(entry).__name__}")
    if not entry:
        return Category(cat, (), 0)
    missing = [k for k in ("names", "urls", "descs") if k not in entry]
    if missing:
        raise GemBenchDataError(f"{file}: category {cat!r} lacks {missing}")
    names, urls, descs = entry["names"], entry["urls"], entry["descs"]
    if not all(isinstance(x, list) for x in (names, urls, descs)) or not len(names) == len(urls) == len(descs):
        sizes = [len(x) if isinstance(x, list) else "?" for x in (names, urls, descs)]
        raise GemBenchDataError(f"{file}: category {cat!r}: names, urls and descs must be lists of one length "
                                f"(got {', '.join(map(str, sizes))})")
    seen: set[str] = set()
    brands: list[Brand] = []
    for i, (n, u, d) in enumerate(zip(names, urls, descs)):
        if not (isinstance(n, str) and isinstance(u, str) and isinstance(d, str)):
            raise GemBenchDataError(f"{file}: category {cat!r}: entry {i} must hold strings")
        n, d = _WS.sub(" ", n).strip(), _WS.sub(" ", d).strip()
        if not n or not d:
            raise GemBenchDataError(f"{file}: category {cat!r}: entry {i} has an empty name or description")
        if n.casefold() not in seen:
            seen.add(n.casefold())
            brands.append(Brand(n, d, u.strip()))
    return Category(cat, tuple(brands), len(names))


def load_products(path: str | Path) -> dict[str, Category]:
    """Categories of ``products.json``, in file order, each with its DISTINCT brands.

    Checks the schema (``names``, ``urls``, ``descs``: parallel lists of strings; ``{}`` is
    kept as a category with no brands).  Brand names are stripped and deduplicated
    case-insensitively; the first occurrence (and its description) wins.
    """
    data = _read_json(Path(path), "products")
    name = Path(path).name
    if not isinstance(data, dict) or not data:
        raise GemBenchDataError(f"{name}: expected a JSON object mapping category names to brand lists")
    return {cat: _category(name, cat, entry) for cat, entry in data.items()}


# --------------------------------------------------------------------------- briefs

_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z\"'])")
_ABBREVIATIONS = {"dr", "mr", "mrs", "ms", "st", "co", "vs", "jr", "sr", "inc", "ltd", "etc", "no", "mt"}
_VERBS = {
    "offers", "provides", "specializes", "produces", "develops", "sells", "features", "has",
    "manufactures", "designs", "presents", "creates", "delivers", "operates", "aims", "serves",
    "makes", "focuses", "supplies", "distributes", "hosts", "publishes", "builds", "runs", "helps",
    "allows", "connects", "brings", "combines", "uses", "sponsors", "promotes", "organizes",
    "boasts", "checks", "blocks", "stores", "turns", "is",
}
_LOWER_FIRST = {"a", "an", "the", "one", "known", "famous", "located", "formerly", "officially",
                "dedicated", "based", "founded", "owned", "popular", "well-known"}


def _first_sentence(text: str) -> str:
    """``text`` up to its first sentence end (a period, blanks, a capital), ignoring
    initials (``U.S.``) and common abbreviations (``Dr.``, ``Inc.``)."""
    for m in _SENTENCE_END.finditer(text):
        word = text[: m.start()].rsplit(" ", 1)[-1]
        if word[-1:].isupper() or word.lower().strip("(") in _ABBREVIATIONS:
            continue
        return text[: m.start()]
    return text


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _strip_own_name(name: str, text: str) -> str:
    """``"<name or its first words> is/are X"`` -> ``"X"``; ``"<name> offers X"`` -> ``"which offers X"``."""
    name_words = name.split()
    for j in range(len(name_words), 0, -1):  # longest prefix of the name first
        prefix = " ".join(name_words[:j])
        if text.startswith(prefix + " ") and len(text) > len(prefix) + 1:
            head, _, tail = text[len(prefix) + 1:].partition(" ")
            if head in ("is", "are") and tail:
                return tail
            if head.lower() in _VERBS - {"is"} and tail:
                return f"which {head.lower()} {tail}"
    return text


def advertiser_brief(name: str, description: str) -> str:
    """A GEM-Bench description turned into the phrase after ``"Ad for <name>, "``.

    Deterministic rules, in order:

    1. whitespace collapsed; only the first sentence kept; trailing period dropped;
    2. a sentence about the brand itself, ``"<name or its first word> is/are X"``,
       becomes ``"X"``; ``"<name> <verb>s X"`` becomes ``"which <verb>s X"``;
    3. ``"Another X"`` becomes ``"a X"``/``"an X"`` (the file's ``Another`` refers to the
       previous brand, which the prompt lacks); ``"This app allows X"`` becomes
       ``"an app that allows X"``;
    4. a leading 3rd-person verb (``Offers``, ``Provides``, ...) becomes ``"which offers ..."``;
    5. a leading article or participle (``A``, ``The``, ``Known``, ...) is lower-cased;
       anything else (proper nouns, bare noun phrases) is kept as is.

    >>> advertiser_brief("Xbox", "Another popular gaming console maker. It is fun.")
    'a popular gaming console maker'
    """
    text = _first_sentence(_WS.sub(" ", description).strip()).rstrip(" .")
    if not text:
        raise GemBenchDataError(f"brand {name!r}: empty description")
    text = _strip_own_name(name, text)
    if text.startswith("which "):
        return text
    words = text.split(" ")
    first = words[0]
    if first.lower() in ("another", "this") and len(words) > 1:
        if first.lower() == "this":  # "This app allows X" -> "an app that allows X"
            for j in range(2, min(len(words), 6)):
                if words[j].lower() in _VERBS:
                    return f"{_article(words[1])} {' '.join(words[1:j])} that {' '.join(words[j:])}"
        return f"{_article(words[1])} {' '.join(words[1:])}"
    if first.lower() in _VERBS - {"is"} and len(words) > 1:
        return f"which {first.lower()} {' '.join(words[1:])}"
    acronym = len(first) > 1 and first.isupper()
    if first.lower() in _LOWER_FIRST and first[:1].isupper() and not acronym:
        return first[:1].lower() + text[1:]
    return text


# --------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class QueryCategoryMap:
    """The parsed mapping file: query id -> category name or ``None``."""

    categories: Mapping[int, str | None]
    weak_fit: frozenset[int] = frozenset()
    source: Mapping[str, Any] = field(default_factory=dict)
    path: str = "<dict>"

    @property
    def mapped_ids(self) -> list[int]:
        """Ids with a category, ascending."""
        return sorted(i for i, c in self.categories.items() if c is not None)


def default_mapping_path() -> Path:
    """The repository's hand-checked mapping, ``data/gembench/query_categories.yaml``."""
    return Path(__file__).resolve().parents[2] / "data" / "gembench" / "query_categories.yaml"


def _mapping_entries(raw: Mapping[Any, Any], label: str) -> dict[int, str | None]:
    cats: dict[int, str | None] = {}
    for key, value in raw.items():
        if isinstance(key, bool) or not isinstance(key, int) or key < 0:
            raise GemBenchDataError(f"{label}: queries: key {key!r} must be a query id (integer >= 0)")
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise GemBenchDataError(f"{label}: queries.{key}: must be a category name or null, got {value!r}")
        cats[key] = value.strip() if isinstance(value, str) else None
    return cats


def _mapping_source(raw: Any, label: str) -> dict[str, Any]:
    source = raw or {}
    if not isinstance(source, dict):
        raise GemBenchDataError(f"{label}: source must be a mapping")
    for key in ("prompts_sha256", "products_sha256"):
        value = source.get(key)
        if value is not None and not (isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value)):
            raise GemBenchDataError(f"{label}: source.{key} must be a quoted 64-digit hex sha256, got {value!r}")
    return source


def load_query_categories(path: str | Path | None = None) -> QueryCategoryMap:
    """Read the hand-checked mapping file (YAML; default :func:`default_mapping_path`).

    Fields: ``queries`` (id -> category or null), optional ``weak_fit`` (ids whose category
    fits only loosely) and ``source`` (the package version and the sha256 of both data files).
    """
    import yaml

    path = Path(path) if path is not None else default_mapping_path()
    label = path.name
    if not path.is_file():
        raise FileNotFoundError(f"query-category mapping file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise GemBenchDataError(f"{label}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("queries"), dict) or not raw["queries"]:
        raise GemBenchDataError(f"{label}: expected a mapping with a non-empty 'queries' mapping (id -> category or null)")
    unknown = sorted(set(raw) - {"source", "weak_fit", "queries"})
    if unknown:
        raise GemBenchDataError(f"{label}: unknown field(s) {unknown}; allowed: queries, source, weak_fit")
    cats = _mapping_entries(raw["queries"], label)
    weak = raw.get("weak_fit") or []
    if not isinstance(weak, list) or not all(isinstance(i, int) and i in cats for i in weak):
        raise GemBenchDataError(f"{label}: weak_fit must list query ids that appear under 'queries'")
    return QueryCategoryMap(cats, frozenset(weak), _mapping_source(raw.get("source"), label), label)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _verify_source(mapping: QueryCategoryMap, files: GemBenchFiles) -> None:
    for key, p in (("prompts_sha256", files.prompts), ("products_sha256", files.products)):
        expected = mapping.source.get(key)
        if expected and _sha256(p) != expected:
            raise GemBenchDataError(
                f"{mapping.path}: {p.name} of the installed gembench {files.version or ''} differs from the file "
                f"the mapping was hand-checked against ({key} {expected[:12]}...); install "
                f"gembench=={mapping.source.get('version', GEMBENCH_VERSION)} or re-check the mapping"
            )


# --------------------------------------------------------------------------- selection


def pick_brands(category: Category, k: int = 2) -> tuple[Brand, ...]:
    """The first ``k`` distinct brands of ``category`` in file order (the study's advertisers).

    Raises :class:`GemBenchDataError` naming the category when it has fewer than ``k``
    distinct brands; ``k`` must be an integer >= 2 (a token auction needs two advertisers).
    """
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k (advertisers per query) must be an integer, got {type(k).__name__}")
    if k < 2:
        raise GemBenchDataError(f"k (advertisers per query) must be an integer >= 2, got {k!r}")
    if len(category.brands) < k:
        raise GemBenchDataError(f"category {category.name!r} has {len(category.brands)} distinct brand(s); {k} are needed")
    return category.brands[:k]


@dataclass(frozen=True)
class StudyItem:
    """One query of the study with its category and advertisers."""

    query_id: int
    query: str  # cleaned, one line
    category: str
    brands: tuple[Brand, ...]
    weak_fit: bool = False


def _chosen_ids(ids: Iterable[int] | None, n: int, mapping: QueryCategoryMap) -> list[int]:
    """The requested ids, ascending, each known and mapped to a category (all mapped ids for ``None``)."""
    out_of_range = sorted(i for i in mapping.categories if i >= n)
    if out_of_range:
        raise GemBenchDataError(f"{mapping.path}: query id(s) {out_of_range} do not exist ({n} queries: ids 0..{n - 1})")
    if ids is None:
        return mapping.mapped_ids
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise TypeError(f"ids must be a list of query ids, got {type(ids).__name__}")
    chosen = list(ids)
    for i in chosen:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"query ids must be integers, got {i!r}")
        if not 0 <= i < n:
            raise GemBenchDataError(f"unknown query id {i!r} ({n} queries: ids 0..{n - 1})")
        if i not in mapping.categories:
            raise GemBenchDataError(f"query id {i} is not in the mapping file {mapping.path}")
        if mapping.categories[i] is None:
            raise GemBenchDataError(f"query id {i} maps to null in {mapping.path} (no fitting category)")
    return sorted(set(chosen))


def select_study_items(
    queries: Sequence[str],
    products: Mapping[str, Category],
    mapping: QueryCategoryMap,
    *,
    ids: Iterable[int] | None = None,
    limit: int | None = None,
    k: int = 2,
    drop_duplicates: bool = True,
    include_weak: bool = True,
) -> list[StudyItem]:
    """The study's queries, ascending by id, each with its ``k`` advertisers (:func:`pick_brands`).

    ``ids=None`` takes every mapped query (null entries are skipped); explicit ``ids`` must all
    be known and mapped to a category (else :class:`GemBenchDataError`).  ``drop_duplicates``
    keeps only the first id of queries equal after :func:`clean_query` and case folding;
    ``include_weak=False`` leaves out the mapping's ``weak_fit`` ids; ``limit`` keeps the first
    ``limit`` items.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    n = len(queries)
    chosen = _chosen_ids(ids, n, mapping)
    first_of: dict[str, int] = {}
    for i in range(n):
        first_of.setdefault(_dedup_key(queries[i]), i)
    items: list[StudyItem] = []
    for i in chosen:
        if (drop_duplicates and first_of[_dedup_key(queries[i])] != i) or (not include_weak and i in mapping.weak_fit):
            continue
        cat_name = str(mapping.categories[i])
        if cat_name not in products:
            raise GemBenchDataError(f"{mapping.path}: queries.{i}: unknown category {cat_name!r} (not in products.json)")
        try:
            brands = pick_brands(products[cat_name], k)
        except GemBenchDataError as exc:
            raise GemBenchDataError(f"{mapping.path}: queries.{i}: {exc}") from None
        items.append(StudyItem(i, clean_query(queries[i]), cat_name, brands, i in mapping.weak_fit))
        if limit is not None and len(items) >= limit:
            break
    return items


def load_study(
    mapping_path: str | Path | None = None,
    *,
    files: GemBenchFiles | None = None,
    verify: bool = True,
    **select: Any,
) -> list[StudyItem]:
    """Locate the installed data, read the mapping, check that the data are the hand-checked
    ones (``verify``: sha256 of both files) and return :func:`select_study_items` (keyword
    arguments pass on: ``ids``, ``limit``, ``k``, ``drop_duplicates``, ``include_weak``)."""
    files = files or locate_gembench_files()
    mapping = load_query_categories(mapping_path)
    if verify:
        _verify_source(mapping, files)
    return select_study_items(load_queries(files.prompts), load_products(files.products), mapping, **select)


# --------------------------------------------------------------------------- prompts

QUERY_LINE = "Query: {query}"
"""The line above every example and above every agent's open line."""

REFERENCE_NAME = "Reference"
"""Display name of the neutral reference agent."""


@dataclass(frozen=True)
class AnswerExample:
    """A few-shot example of a plain answer: the ``query`` and one ``answer`` line naming no brand."""

    query: str
    answer: str


STUDY_EXAMPLES: tuple[AdExample | AnswerExample, ...] = (
    AdExample("Trail Runner Shoes", "running shoes for hikers",
              "Trail Runner Shoes grip every rock, so you can conquer the mountain trail in comfort.",
              "Which shoes are good for hiking?"),
    AnswerExample("What is a good snack for a long hike?",
                  "Trail mix with nuts and dried fruit gives lasting energy and packs light."),
    AdExample("Luigi's Pizza", "a pizzeria in New York",
              "Luigi's Pizza serves hot, cheesy slices baked fresh in a wood-fired oven every night.",
              "Where can I get good pizza in New York?"),
    AdExample("StrumSchool", "an online guitar course",
              "StrumSchool teaches you your first songs in a week with short video lessons.",
              "How do I learn to play the guitar?"),
    AnswerExample("How can I keep my coffee hot on the way to work?",
                  "Preheat an insulated travel mug with hot water before you fill it."),
    AdExample("Harbor Inn", "a hotel in Lisbon",
              "Harbor Inn puts you steps from the river, with breakfast on the terrace every morning.",
              "Plan a weekend in Lisbon"),
)
"""The few-shot block every agent of the study reads: four one-line ads, each opening with its
brand's name, and two plain answers that name no brand."""


JUDGE_EXAMPLES: tuple[AnswerExample, ...] = (
    AnswerExample("How do I get a coffee stain out of a white shirt?",
                  "Blot it with cold water, rub in a drop of dish soap, then wash it as usual."),
    AnswerExample("Which app shows the bus times in Tel Aviv?",
                  "Moovit shows live bus and train times for the city, and the municipal website lists the night lines."),
    AnswerExample("Which plants are easy to keep in a dark flat?",
                  "Snake plants, pothos and ZZ plants all cope well with little light."),
)
"""The judge's examples: other questions, each with a reply that answers it directly; one names a
product where the product is the answer (a brand the study's catalogue does not hold), so that the
judge does not learn that a good reply never names a brand."""

JUDGE_NAME = "Judge"
"""Display name of the judge agent (scores texts; never bids)."""


def examples_block(examples: Sequence[AdExample | AnswerExample] = STUDY_EXAMPLES) -> str:
    """The shared few-shot text: per example its query line, then ``"Ad for <brand>, <about>:"``
    and the ad (written by :func:`~.scenarios.advertiser_prompt`), or ``"Answer:"`` and the answer."""
    parts = []
    for ex in examples:
        if isinstance(ex, AnswerExample):
            parts.append(f"{QUERY_LINE.format(query=ex.query)}\nAnswer:\n{ex.answer}\n\n")
        elif isinstance(ex, AdExample) and ex.query:
            parts.append(advertiser_prompt(ex.brand, ex.about, (), query=ex.query, query_line=QUERY_LINE) + f"{ex.ad}\n\n")
        else:
            raise TypeError(f"examples must be AdExample (with a query) or AnswerExample, got {ex!r}")
    return "".join(parts)


def study_advertiser_prompt(query: str, name: str, brief: str) -> str:
    """An advertiser's prompt: :func:`examples_block`, the user's query line, ``"Ad for <name>, <brief>:"``."""
    return examples_block() + advertiser_prompt(name, brief, (), query=clean_query(query), query_line=QUERY_LINE)


def reference_prompt(query: str) -> str:
    """The neutral reference agent's prompt: :func:`examples_block`, the query line, ``"Answer:"``.

    It answers the user's query with no advertiser (the example answers name no brand); like
    the advertisers' open lines it ends with a newline, so the continuation is one line.
    """
    q = clean_query(query)
    if not q:
        raise ValueError("query must be non-empty")
    return examples_block() + f"{QUERY_LINE.format(query=q)}\nAnswer:\n"


def judge_prompt(query: str) -> str:
    """The judge's prompt: a header asking for direct, helpful replies, :data:`JUDGE_EXAMPLES` as
    ``Question:`` / ``Reply:`` pairs, the user's query, ``"Reply:"``.

    No bidding or reference agent reads this text (its examples, its labels and its header are its
    own), so its log-probability of a text is a second opinion on how well the text answers the
    query: the study's proxy for the user's loss (notebook 09).  It is the same small model, not a
    human rater.
    """
    q = clean_query(query)
    if not q:
        raise ValueError("query must be non-empty")
    head = "Questions from users, each with a direct, helpful reply.\n\n"
    pairs = "".join(f"Question: {ex.query}\nReply:\n{ex.answer}\n\n" for ex in JUDGE_EXAMPLES)
    return head + pairs + f"Question: {q}\nReply:\n"


_WORD = re.compile(r"[0-9a-z]+")


def query_words(query: str) -> frozenset[str]:
    """The set of lower-case words (letters and digits) of a query, for near-duplicate checks."""
    return frozenset(_WORD.findall(clean_query(query).casefold()))


def near_duplicates(a: str, b: str, threshold: float = 0.6) -> bool:
    """Whether two queries are near-duplicates: the Jaccard similarity of their word sets
    (:func:`query_words`) is at least ``threshold`` (0.6 joins "Give me a 3-day travel plan to
    Hawaii" with "Give me a 5-day travel plan for hawaii", and the two Monaco hotel queries)."""
    wa, wb = query_words(a), query_words(b)
    return bool(wa | wb) and len(wa & wb) / len(wa | wb) >= threshold


def balanced_order(items: Sequence[StudyItem], threshold: float = 0.6) -> list[StudyItem]:
    """The study's queries in a balanced order: round robin over the categories (each category in
    order of its first query id, its queries by id), with every near-duplicate of an earlier
    query (:func:`near_duplicates`) moved to the end, in id order.

    So the first ``n`` items spread over as many categories as possible, with at most
    ``ceil(n / categories)`` from any one, and hold no near-duplicate pair as long as ``n`` is at
    most the number of queries that are no near-duplicate of another (notebook 09 checks both).
    """
    kept: list[StudyItem] = []
    dupes: list[StudyItem] = []
    for it in sorted(items, key=lambda it: it.query_id):
        (dupes if any(near_duplicates(it.query, k.query, threshold) for k in kept) else kept).append(it)
    queues: dict[str, list[StudyItem]] = {}
    for it in kept:
        queues.setdefault(it.category, []).append(it)
    order: list[StudyItem] = []
    while any(queues.values()):
        for queue in queues.values():
            if queue:
                order.append(queue.pop(0))
    return order + dupes


def selection_summary(items: Sequence[StudyItem], threshold: float = 0.6) -> dict[str, Any]:
    """What the balance requirements of a study look at: ``queries``, ``categories`` (distinct),
    ``largest_category`` and its ``largest_share`` of the queries, and ``near_duplicate_pairs``
    (query-id pairs, :func:`near_duplicates`)."""
    counts: dict[str, int] = {}
    for it in items:
        counts[it.category] = counts.get(it.category, 0) + 1
    largest = max(counts, key=lambda c: counts[c]) if counts else ""
    pairs = [(b.query_id, a.query_id) for j, a in enumerate(items) for b in items[:j]
             if near_duplicates(a.query, b.query, threshold)]
    return {"queries": len(items), "categories": len(counts), "largest_category": largest,
            "largest_share": counts.get(largest, 0) / max(len(items), 1), "near_duplicate_pairs": pairs}


def study_scenario(item: StudyItem, *, bids: Sequence[float] | None = None, reference_bid: float = 0.0,
                   max_new_tokens: int = 24) -> Scenario:
    """The auction scenario of one study query: its advertisers (bids ``bids``, default 1 each)
    and the reference agent as the platform (bid ``reference_bid``), built and validated by
    :func:`~.scenarios.scenario_from_dict` (theory chapter §6)."""
    bids = [1.0] * len(item.brands) if bids is None else list(bids)
    if len(bids) != len(item.brands):
        raise ValueError(f"{len(bids)} bids for {len(item.brands)} advertisers {[b.name for b in item.brands]}")
    names = ", ".join(b.name for b in item.brands)
    return scenario_from_dict({
        "name": f"gembench-q{item.query_id:03d}",
        "description": f"GEM-Bench LM-Market query {item.query_id}; {names} from the category {item.category!r}.",
        "query": item.query,
        "advertisers": [{"name": b.name, "bid": float(x), "prompt": study_advertiser_prompt(item.query, b.name, b.brief)}
                        for b, x in zip(item.brands, bids)],
        "platform": {"name": REFERENCE_NAME, "bid": float(reference_bid), "prompt": reference_prompt(item.query)},
        "max_new_tokens": max_new_tokens, "stop": ["\n"],
    }, source=f"gembench query {item.query_id}")
