"""The README's one results table copies numbers whose home is a results file: it must agree with them."""

import json
import re

from tests.conftest import ROOT

# README column -> {results file: (the words that name its row there, the column of that file it copies)};
# the SVM's rows are named by dataset.
ACCURACY = "test accuracy % (mean ± sd over seeds)"
COLUMNS = {
    "default recipe": {"PROXIES.md": ("default recipe", ACCURACY), "RESULTS.md": ("HAN + wide term", ACCURACY)},
    "its HAN part": {"PROXIES.md": ("default recipe", "the HAN part alone %"),
                     "RESULTS.md": ("HAN + wide term", "the HAN part alone %")},
    "its wide term": {"PROXIES.md": ("default recipe", "the wide term alone %"),
                      "RESULTS.md": ("HAN + wide term", "the wide term alone %")},
    "HAN's share %": {"PROXIES.md": ("default recipe", "the HAN's share of the answer %"),
                      "RESULTS.md": ("HAN + wide term", "the HAN's share of the answer %")},
    "`model.wide=null`": {"PROXIES.md": ("the HAN alone", ACCURACY)},
    "`model=fasttext`": {"PROXIES.md": ("fastText baseline", ACCURACY), "RESULTS.md": ("fastText baseline", ACCURACY)},
    "`recipe=paper`": {"PROXIES.md": ("the paper's recipe", ACCURACY)},
    "`experiment=imdb_w2v`": {"RESULTS.md": ("word2vec initialisation (train + unlabelled), 4 epochs", ACCURACY)},
}  # fmt: skip


def table(text: str, header_start: str) -> list[list[str]]:
    """The rows (cells stripped) of the markdown table whose header line starts with header_start."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return [rows[0], *rows[2:]]  # without the |---| line


def accuracy(cell: str) -> str:
    """'79.46 (1 of 1 seeds)' -> '79.46'; 'pending' stays."""
    return cell.split(" ")[0]


def readme_cells_agree(header_start: str, expected) -> int:
    """Every cell of the README table whose header starts with header_start equals expected(dataset,
    column) (a row's dataset is its first cell's `code`); the number of cells that hold a figure."""
    header, *rows = table((ROOT / "README.md").read_text(), header_start)
    checked = 0
    for row in rows:
        dataset = re.match(r"`([^`]+)`", row[0]).group(1)
        for column, cell in zip(header[1:], row[1:], strict=True):
            want = expected(dataset, column)
            assert cell == want, f"README {dataset} / {column}: {cell}, its results file says {want}"
            checked += cell != "-"
    return checked


def test_the_readme_results_table_agrees_with_the_results_files():
    results = {
        name: table((ROOT / "results" / name).read_text(), "| experiment") for name in ("PROXIES.md", "RESULTS.md")
    }
    svm = dict(table((ROOT / "results" / "tfidf_svm.md").read_text(), "| proxy")[1:])

    def expected(dataset: str, column: str) -> str:
        if column == "TF-IDF + linear SVM":
            return svm.get(dataset, "-")
        source = "RESULTS.md" if dataset == "imdb" else "PROXIES.md"
        words, copied = COLUMNS[column].get(source, (None, None))
        header, *rows = results[source]
        found = [r for r in rows if words and words in r[0]
                 and r[1] == (dataset if source == "PROXIES.md" else "IMDB binary")]  # fmt: skip
        return accuracy(found[0][header.index(copied)]) if found and copied in header else "-"

    assert readme_cells_agree("| data (training documents)", expected) >= 27  # the table was read


# The multi-label table's columns -> (the words that name its row in results/MULTILABEL.md, the columns it
# copies: "micro / macro", or one figure).
MICRO, MACRO = "test micro-F1 %", "test macro-F1 %"
MULTILABEL_COLUMNS = {
    "default recipe": ("default recipe (HAN + wide term)", (MICRO, MACRO)),
    "its HAN part": ("default recipe (HAN + wide term)", ("the HAN part alone, micro-F1 %",)),
    "its wide term": ("default recipe (HAN + wide term)", ("the wide term alone, micro-F1 %",)),
    "HAN's share %": ("default recipe (HAN + wide term)", ("the HAN's share of the answer %",)),
    "`model=fasttext`": ("fastText baseline", (MICRO, MACRO)),
    "`model.wide=null`": ("the HAN alone (shared attention", (MICRO, MACRO)),
    "`model/net=han_label_attention`": ("default recipe, label attention", (MICRO, MACRO)),
    "`model.wide=null model/net=han_label_attention`": ("the HAN alone, label attention", (MICRO, MACRO)),
}


def test_the_readme_multi_label_table_agrees_with_the_results_files():
    """Each cell is "micro-F1 / macro-F1", or one figure, of its row in results/MULTILABEL.md (or the SVM's
    in tfidf_svm.md)."""
    header, *results = table((ROOT / "results" / "MULTILABEL.md").read_text(), "| experiment")
    svm_rows = table((ROOT / "results" / "tfidf_svm.md").read_text(), "| multi-label proxy")[1:]
    svm = {r[0]: f"{r[1]} / {r[2]}" for r in svm_rows}

    def expected(dataset: str, column: str) -> str:
        if column == "one-vs-rest TF-IDF + linear SVM":
            return svm.get(dataset, "-")
        words, copied = MULTILABEL_COLUMNS[column]
        found = [r for r in results if words in r[0] and r[1] == dataset]
        if not found or any(c not in header for c in copied):
            return "-"
        cells = [accuracy(found[0][header.index(c)]) for c in copied]
        return "-" if cells == ["-"] * len(cells) else " / ".join(cells)

    assert readme_cells_agree("| multi-label data", expected) >= 6  # the table was read


def test_every_relative_link_of_the_docs_leads_somewhere():
    """README.md, docs/ and results/: each relative link's file exists, and its #anchor is a heading there."""

    def anchors(path):
        headings = re.findall(r"^#+ (.+)$", path.read_text(), flags=re.MULTILINE)
        return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}

    pages = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "results").glob("*.md")]
    broken, seen = [], 0
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            seen += 1
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists() or (anchor and path.suffix == ".md" and anchor not in anchors(path)):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == [] and seen > 20


def test_the_faithfulness_table_is_what_its_reports_give():
    """results/FAITHFULNESS.md's table is scripts/faithfulness.py --table of the reports beside it, in their order."""
    from scripts.faithfulness import table as faithfulness_table

    text = (ROOT / "results" / "FAITHFULNESS.md").read_text()
    reports = list(dict.fromkeys(re.findall(r"results/(faithfulness_\w+\.json)", text.split("| model |")[0])))
    assert reports, "the page names the reports its table comes from"
    expected = faithfulness_table([json.loads((ROOT / "results" / name).read_text()) for name in reports])
    assert expected in text
