"""Tests of :mod:`llm_auction_utils.llm.gembench` (notebook 09's data).  No network: fixtures
are small JSON files in tmp_path that mimic the real schema; one test uses the installed
``gembench`` distribution and skips without it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from llm_auction_utils.llm import gembench as gd

MAPPING_FILE = gd.default_mapping_path()

QUERIES = [
    "Where to eat in  New York?\n",          # 0
    "Plan a 3-day trip to Hawaii",           # 1
    "plan a 3-day trip to   hawaii",         # 2: duplicate of 1 after cleaning + casefold
    "Rewrite this dialogue's tone",          # 3: null
    "Best espresso machine?",                # 4: category with one brand
]
PRODUCTS = {
    "Restaurant Reviews & Reservations": {
        "names": ["OpenTable", "Yelp", "opentable", "Zomato"],
        "urls": ["https://o", "https://y", "https://o2", "https://z"],
        "descs": ["A web-based reservation service.", "A platform for local reviews. More text.",
                  "A repeat with another description.", "Another restaurant discovery platform."],
    },
    "Hotels & Accommodations": {
        "names": ["Hilton", "Airbnb", "Marriott"],
        "urls": ["h", "a", "m"],
        "descs": ["A hotel chain.", "Offers homes to rent.", "Marriott is a global hotel chain."],
    },
    "Small Kitchen Appliances": {"names": ["Breville", "BREVILLE"], "urls": ["b", "b"], "descs": ["Espresso.", "Dup."]},
    "Data Management": {},
}


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _mapping_yaml(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "map.yaml"
    p.write_text(body, encoding="utf-8")
    return p


@pytest.fixture()
def data(tmp_path: Path):
    q = _write(tmp_path / "prompts.json", QUERIES)
    p = _write(tmp_path / "products.json", PRODUCTS)
    m = _mapping_yaml(tmp_path, """
weak_fit: [2]
queries:
  0: Restaurant Reviews & Reservations
  1: Hotels & Accommodations
  2: Hotels & Accommodations
  3: null
  4: Small Kitchen Appliances
""")
    return gd.load_queries(q), gd.load_products(p), gd.load_query_categories(m)


# --------------------------------------------------------------------------- locating


def _fake_distribution(site: Path, files: dict[str, str], *, record: list[str] | None = None,
                       init_body: str = "raise RuntimeError('executed the package __init__')\n") -> None:
    """A minimal installed distribution 'gembench' under ``site`` (dist-info + RECORD)."""
    pkg_files = {"GemBench/__init__.py": init_body, **files}
    for rel, text in pkg_files.items():
        target = site / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    info = site / "gembench-1.0.9.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gembench\nVersion: 1.0.9\n", encoding="utf-8")
    rows = record if record is not None else list(pkg_files)
    (info / "RECORD").write_text("".join(f"{r},,\n" for r in rows + ["gembench-1.0.9.dist-info/RECORD"]),
                                 encoding="utf-8")


def test_locate_finds_both_files_without_importing_the_package(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _fake_distribution(site, {gd.PROMPTS_FILE: json.dumps(QUERIES), gd.PRODUCTS_FILE: json.dumps(PRODUCTS)})
    monkeypatch.syspath_prepend(str(site))
    found = gd.locate_gembench_files()
    assert found.prompts == site / gd.PROMPTS_FILE
    assert found.products == site / gd.PRODUCTS_FILE
    assert found.version == "1.0.9"
    import sys
    assert "GemBench" not in sys.modules  # its __init__ (which raises) never ran


def test_locate_falls_back_to_the_package_folder_when_record_lacks_the_files(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _fake_distribution(site, {gd.PROMPTS_FILE: "[]", gd.PRODUCTS_FILE: "{}"}, record=["GemBench/__init__.py"])
    monkeypatch.syspath_prepend(str(site))
    assert gd.locate_gembench_files().products == site / gd.PRODUCTS_FILE


def test_locate_names_package_and_install_command_when_not_installed(monkeypatch):
    monkeypatch.setattr(gd, "_package_root_without_import", lambda: None)
    with pytest.raises(gd.GemBenchNotInstalled) as err:
        gd.locate_gembench_files("gembench-not-installed-xyz")
    msg = str(err.value)
    assert "'gembench-not-installed-xyz' is not installed" in msg
    assert "pip install --no-deps gembench==1.0.9" in msg


def test_locate_names_the_missing_file(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _fake_distribution(site, {gd.PROMPTS_FILE: "[]"})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(gd.GemBenchNotInstalled, match="lacks GemBench/benchmarking/dataset/product/products.json"):
        gd.locate_gembench_files()


# --------------------------------------------------------------------------- reading


def test_load_queries_checks_schema(tmp_path):
    with pytest.raises(gd.GemBenchDataError, match="item 1 must be a non-empty string"):
        gd.load_queries(_write(tmp_path / "prompts.json", ["ok", ""]))
    with pytest.raises(gd.GemBenchDataError, match="expected a non-empty JSON list"):
        gd.load_queries(_write(tmp_path / "prompts.json", {"a": 1}))
    bad = tmp_path / "broken.json"
    bad.write_text("[1,", encoding="utf-8")
    with pytest.raises(gd.GemBenchDataError, match="broken.json: not valid UTF-8 JSON"):
        gd.load_queries(bad)


def test_missing_data_file_is_a_clear_error(tmp_path):
    with pytest.raises(gd.GemBenchNotInstalled, match="products file .*nope.json.* does not exist.*--no-deps gembench"):
        gd.load_products(tmp_path / "nope.json")


def test_load_products_dedups_case_insensitively_first_wins(tmp_path):
    cats = gd.load_products(_write(tmp_path / "products.json", PRODUCTS))
    rr = cats["Restaurant Reviews & Reservations"]
    assert [b.name for b in rr.brands] == ["OpenTable", "Yelp", "Zomato"]
    assert rr.brands[0].description == "A web-based reservation service."
    assert rr.entries == 4
    assert cats["Data Management"].brands == ()
    assert [b.name for b in cats["Small Kitchen Appliances"].brands] == ["Breville"]


def test_load_products_rejects_ragged_lists(tmp_path):
    bad = {"X": {"names": ["a", "b"], "urls": ["u"], "descs": ["d", "e"]}}
    with pytest.raises(gd.GemBenchDataError, match="category 'X': names, urls and descs must be lists of one length"):
        gd.load_products(_write(tmp_path / "products.json", bad))
    with pytest.raises(gd.GemBenchDataError, match=r"category 'Y' lacks \['urls', 'descs'\]"):
        gd.load_products(_write(tmp_path / "products.json", {"Y": {"names": []}}))


def test_clean_query_makes_one_line():
    assert gd.clean_query("  a\n\nb\t c  ") == "a b c"


@pytest.mark.parametrize("name, desc, brief", [
    ("Hilton", "A hotel chain. It has rooms.", "a hotel chain"),
    ("Xbox", "Another popular console maker.", "a popular console maker"),
    ("Foo", "Another online shop.", "an online shop"),
    ("Bliss Spa", "Offers massages and facials.", "which offers massages and facials"),
    ("Marriott", "Marriott is a global hotel chain.", "a global hotel chain"),
    ("New York City Tourism", "New York City is a bustling metropolis. More.", "a bustling metropolis"),
    ("Cannondale", "Cannondale produces road bikes.", "which produces road bikes"),
    ("Ariat", "This brand offers boots.", "a brand that offers boots"),
    ("Pocket", "This app allows you to save articles.", "an app that allows you to save articles"),
    ("Ninja", "Known for its blenders.", "known for its blenders"),
    ("GEICO", "One of the largest insurers.", "one of the largest insurers"),
    ("AAA", "AAA is a club.", "a club"),
    ("Avis", "Global car rental company.", "Global car rental company"),
    ("Gov", "The U.S. Citizenship agency of the U.S. Government. Second.", "the U.S. Citizenship agency of the U.S. Government"),
    ("Doc", "A shop by Dr. Martens. Second.", "a shop by Dr. Martens"),
])
def test_advertiser_brief_rules(name, desc, brief):
    assert gd.advertiser_brief(name, desc) == brief


# --------------------------------------------------------------------------- mapping and selection


def test_select_is_deterministic_dedups_and_skips_null(data):
    queries, products, mapping = data
    items = gd.select_study_items(queries, products, mapping, ids=[0, 1, 2])
    assert [(i.query_id, i.category, [b.name for b in i.brands]) for i in items] == [
        (0, "Restaurant Reviews & Reservations", ["OpenTable", "Yelp"]),
        (1, "Hotels & Accommodations", ["Hilton", "Airbnb"]),
    ]
    assert items[0].query == "Where to eat in New York?"
    with_dups = gd.select_study_items(queries, products, mapping, ids=[0, 1, 2], drop_duplicates=False, k=3)
    assert [i.query_id for i in with_dups] == [0, 1, 2]
    assert with_dups[2].weak_fit and [b.name for b in with_dups[2].brands] == ["Hilton", "Airbnb", "Marriott"]
    assert gd.select_study_items(queries, products, mapping, ids=[0, 1, 2], limit=1)[0].query_id == 0


def test_category_with_too_few_brands_is_named(data):
    queries, products, mapping = data
    with pytest.raises(gd.GemBenchDataError,
                       match=r"queries\.4: category 'Small Kitchen Appliances' has 1 distinct brand\(s\); 2 are needed"):
        gd.select_study_items(queries, products, mapping)
    with pytest.raises(gd.GemBenchDataError, match="has 0 distinct brand"):
        gd.pick_brands(products["Data Management"])
    with pytest.raises(gd.GemBenchDataError, match="k .* must be an integer >= 2"):
        gd.pick_brands(products["Hotels & Accommodations"], 1)


def test_unknown_or_null_ids_are_errors(data):
    queries, products, mapping = data
    with pytest.raises(gd.GemBenchDataError, match=r"unknown query id 99 \(5 queries: ids 0..4\)"):
        gd.select_study_items(queries, products, mapping, ids=[99])
    with pytest.raises(gd.GemBenchDataError, match="query id 3 maps to null"):
        gd.select_study_items(queries, products, mapping, ids=[3])


def test_unknown_category_is_named(tmp_path):
    m = gd.load_query_categories(_mapping_yaml(tmp_path, "queries:\n  0: Restaurants & Bars\n"))
    with pytest.raises(gd.GemBenchDataError, match=r"map.yaml: queries.0: unknown category 'Restaurants & Bars'"):
        gd.select_study_items(QUERIES, gd.load_products(_write(tmp_path / "p.json", PRODUCTS)), m)


def test_mapping_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="mapping file .* does not exist"):
        gd.load_query_categories(tmp_path / "missing.yaml")
    for body, pattern in [
        ("queries: [1, 2]\n", "non-empty 'queries' mapping"),
        ("queries:\n  a: Maps\n", "key 'a' must be a query id"),
        ("queries:\n  0: 5\n", r"queries.0: must be a category name or null"),
        ("queries:\n  0: Maps\nweak_fit: [7]\n", "weak_fit must list query ids"),
        ("queries:\n  0: Maps\nextra: 1\n", r"unknown field\(s\) \['extra'\]"),
        ("queries: {0: [\n", "not valid YAML"),
        ("source: {prompts_sha256: 123}\nqueries:\n  0: Maps\n", "source.prompts_sha256 must be a quoted 64-digit hex"),
    ]:
        with pytest.raises(gd.GemBenchDataError, match=pattern):
            gd.load_query_categories(_mapping_yaml(tmp_path, body))
    m = gd.load_query_categories(_mapping_yaml(tmp_path, "queries:\n  0: Maps\n  9: Maps\n"))
    with pytest.raises(gd.GemBenchDataError, match=r"query id\(s\) \[9\] do not exist"):
        gd.select_study_items(QUERIES, {}, m)


def test_load_study_verifies_the_hand_checked_files(tmp_path):
    q = _write(tmp_path / "prompts.json", QUERIES)
    p = _write(tmp_path / "products.json", PRODUCTS)
    files = gd.GemBenchFiles(q, p, "1.0.9")
    good = hashlib.sha256(q.read_bytes()).hexdigest()
    ok = _mapping_yaml(tmp_path, f"source: {{prompts_sha256: {good}}}\nqueries:\n  0: Hotels & Accommodations\n")
    assert [i.query_id for i in gd.load_study(ok, files=files)] == [0]
    bad = _mapping_yaml(tmp_path, "source: {prompts_sha256: '" + "0" * 64 + "'}\nqueries:\n  0: Hotels & Accommodations\n")
    with pytest.raises(gd.GemBenchDataError, match="prompts.json of the installed gembench 1.0.9 differs"):
        gd.load_study(bad, files=files)
    assert len(gd.load_study(bad, files=files, verify=False)) == 1


# --------------------------------------------------------------------------- prompts


def test_reference_prompt_is_brand_free_few_shot():
    text = gd.reference_prompt("Where to eat\nin NYC? ")
    assert text.startswith(gd.examples_block())
    assert text.endswith("\n\nQuery: Where to eat in NYC?\nAnswer:\n")
    assert "Answer:\nTrail mix" in text
    assert text.count("Query:") == len(gd.STUDY_EXAMPLES) + 1
    # every example ad opens with its brand's name (the design that makes an advertiser's agent name it)
    assert all(ex.ad.startswith(ex.brand) for ex in gd.STUDY_EXAMPLES if isinstance(ex, gd.AdExample))
    with pytest.raises(ValueError, match="query must be non-empty"):
        gd.reference_prompt(" \n ")


def test_advertiser_prompt_layout():
    text = gd.study_advertiser_prompt("hawaii  trip", "Hilton", "a hotel chain")
    assert text.startswith("Query: Which shoes are good for hiking?\nAd for Trail Runner Shoes, running shoes for hikers:\n")
    assert text.endswith("\n\nQuery: hawaii trip\nAd for Hilton, a hotel chain:\n")
    # every agent shares the few-shot block: one prefix for the whole auction
    assert text[: len(gd.examples_block())] == gd.reference_prompt("x")[: len(gd.examples_block())]
    with pytest.raises(TypeError, match="AdExample .with a query. or AnswerExample"):
        gd.examples_block([gd.AdExample("A", "b", "c")])


def test_study_scenario_fields(data):
    queries, products, mapping = data
    item = gd.select_study_items(queries, products, mapping, ids=[1])[0]
    sc = gd.study_scenario(item, bids=[2, 1], reference_bid=0.5)
    assert sc.names == ["Hilton", "Airbnb", gd.REFERENCE_NAME]
    assert list(sc.bids) == [2.0, 1.0, 0.5]
    assert sc.prompts[0].endswith("Query: Plan a 3-day trip to Hawaii\nAd for Hilton, a hotel chain:\n")
    assert sc.prompts[1].endswith("Ad for Airbnb, which offers homes to rent:\n")
    assert sc.prompts[2] == gd.reference_prompt(item.query)
    with pytest.raises(ValueError, match="3 bids for 2 advertisers"):
        gd.study_scenario(item, bids=[1, 1, 1])


def test_judge_prompt_is_read_by_no_other_agent():
    judge = gd.judge_prompt("Where to eat\nin NYC? ")
    assert judge.endswith("Question: Where to eat in NYC?\nReply:\n")
    others = [gd.reference_prompt("x"), gd.study_advertiser_prompt("x", "Hilton", "a hotel chain")]
    assert all(ex.answer not in o for ex in gd.JUDGE_EXAMPLES for o in others)  # its own examples
    assert all(ex.answer in judge for ex in gd.JUDGE_EXAMPLES) and "Query:" not in judge
    with pytest.raises(ValueError, match="query must be non-empty"):
        gd.judge_prompt("  ")


def test_near_duplicates_by_word_overlap():
    assert gd.near_duplicates("Give me a 3-day travel plan to Hawaii", "Give me a 3-day travel plan to Hawaii.")
    assert gd.near_duplicates("Give me a 3-day travel plan to Hawaii", "Give me a 5-day travel plan for hawaii")
    assert gd.near_duplicates("What are the top 5 luxury hotels in Monaco", "what are the top 5 luxury hotels in monaco ?")
    assert not gd.near_duplicates("Where to eat in NYC?", "What can I visit on a trip to Hawaii?")
    assert gd.query_words("A 3-day trip, to Rome!") == frozenset({"a", "3", "day", "trip", "to", "rome"})


def test_balanced_order_round_robins_categories_and_moves_duplicates_last():
    brands = (gd.Brand("A", "a", "u"), gd.Brand("B", "b", "u"))
    queries = [(0, "Hotels", "Plan a 3 day trip to Paris"), (1, "Hotels", "Plan a 3 day trip to Paris please"),
               (2, "Hotels", "Best hotel near Times Square"), (3, "Food", "Where to eat in Rome"),
               (4, "Maps", "How do I get to the station"), (5, "Food", "Good pizza in Naples")]
    items = [gd.StudyItem(i, q, c, brands) for i, c, q in queries]
    order = [it.query_id for it in gd.balanced_order(items)]
    assert order == [0, 3, 4, 2, 5, 1]  # one per category in turn; the near-duplicate 1 at the end
    assert sorted(order) == list(range(6))


# --------------------------------------------------------------------------- the real package


def test_real_gembench_package_and_mapping():
    try:
        files = gd.locate_gembench_files()
    except gd.GemBenchNotInstalled:
        pytest.skip(f"gembench is not installed ({gd.INSTALL_COMMAND})")
    queries = gd.load_queries(files.prompts)
    products = gd.load_products(files.products)
    assert len(queries) == 100 and len(products) == 626
    assert sum(not c.brands for c in products.values()) == 16
    mapping = gd.load_query_categories(MAPPING_FILE)
    assert sorted(mapping.categories) == list(range(100))  # the file covers every query
    assert len(mapping.mapped_ids) == 93
    items = gd.load_study(MAPPING_FILE, files=files, k=3)  # verifies the sha256 of both files
    assert len(items) == 86 and len(set(i.query for i in items)) == 86
    assert len(gd.load_study(MAPPING_FILE, files=files, include_weak=False)) == 79
    assert all("\n" not in i.query for i in items)
    balanced = gd.balanced_order(gd.load_study(MAPPING_FILE, files=files, include_weak=False))
    first = balanced[:30]  # notebook 09's default: 30 queries, 30 categories, no near-duplicates
    assert len({i.category for i in first}) >= 8
    assert max(sum(i.category == c for i in first) for c in {i.category for i in first}) <= 30 // 4
    assert not any(gd.near_duplicates(a.query, b.query) for j, a in enumerate(first) for b in first[:j])
    q6 = next(i for i in items if i.query_id == 6)
    assert q6.query == "What can I visit on a trip to Hawaii?" and q6.category == "Specialty Travel"
