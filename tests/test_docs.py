"""The README's one results table copies numbers whose home is a results file: it must agree with them."""

import json
import re

from tests.conftest import ROOT

# README column -> (results file, the words that name its row there); the SVM's rows are named by dataset.
COLUMNS = {
    "default recipe": {"PROXIES.md": "default recipe", "RESULTS.md": "HAN + wide term"},
    "its HAN part alone": {"PROXIES.md": "default recipe", "RESULTS.md": "seed 42 again: with its HAN part alone"},
    "`model=fasttext`": {"PROXIES.md": "fastText baseline", "RESULTS.md": "fastText baseline"},
    "`recipe=paper`": {"PROXIES.md": "the paper's recipe"},
    "`experiment=imdb_w2v`": {"RESULTS.md": "word2vec initialisation (train + unlabelled), 4 epochs"},
}


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
        words = COLUMNS[column].get(source)
        found = [r for r in results[source][1:] if words and words in r[0]
                 and r[1] == (dataset if source == "PROXIES.md" else "IMDB binary")]  # fmt: skip
        cell, header = 2, results[source][0]
        if column == "its HAN part alone":  # the default recipe's row, its test/acc_net column (if it has one)
            cell = header.index("the HAN part alone %") if "the HAN part alone %" in header else None
        return accuracy(found[0][cell]) if found and cell is not None else "-"

    assert readme_cells_agree("| data (training documents)", expected) >= 27  # the table was read


# The multi-label table's columns -> the words that name its row in results/MULTILABEL.md.
MULTILABEL_COLUMNS = {"default recipe": "default recipe (HAN + wide term)", "`model=fasttext`": "fastText baseline",
                      "`model.wide=null`": "the HAN alone (shared attention",
                      "`model/net=han_label_attention`": "default recipe, label attention",
                      "`model.wide=null model/net=han_label_attention`": "the HAN alone, label attention"}  # fmt: skip


def test_the_readme_multi_label_table_agrees_with_the_results_files():
    """Each cell is "micro-F1 / macro-F1" of its row in results/MULTILABEL.md (or the SVM's in tfidf_svm.md)."""
    results = table((ROOT / "results" / "MULTILABEL.md").read_text(), "| experiment")[1:]
    svm_rows = table((ROOT / "results" / "tfidf_svm.md").read_text(), "| multi-label proxy")[1:]
    svm = {r[0]: f"{r[1]} / {r[2]}" for r in svm_rows}

    def expected(dataset: str, column: str) -> str:
        if column == "one-vs-rest TF-IDF + linear SVM":
            return svm.get(dataset, "-")
        found = [r for r in results if MULTILABEL_COLUMNS[column] in r[0] and r[1] == dataset]
        return f"{accuracy(found[0][2])} / {accuracy(found[0][3])}" if found else "-"

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
