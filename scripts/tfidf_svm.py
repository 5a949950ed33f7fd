"""The reference every proxy is compared with, outside hdc: TF-IDF (word uni- and bigrams, sublinear
term frequency, n-grams in 2+ documents) + a linear SVM (scikit-learn's LinearSVC, C=1), fitted on a
folder's train split and scored on its test split.

    pip install scikit-learn   # not an hdc dependency
    python scripts/tfidf_svm.py data/proxies/imdb_1k data/proxies/r8 ...
"""

import sys
import time

import pyarrow.parquet as pq

try:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC
except ImportError:
    sys.exit("scripts/tfidf_svm.py needs scikit-learn: pip install scikit-learn")


def score(folder: str) -> float:
    train, test = (pq.read_table(f"{folder}/{split}.parquet").to_pydict() for split in ("train", "test"))
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    model = LinearSVC(C=1.0).fit(vectorizer.fit_transform(train["text"]), train["label"])
    predictions = model.predict(vectorizer.transform(test["text"]))
    return sum(p == y for p, y in zip(predictions, test["label"], strict=True)) / len(predictions)


if __name__ == "__main__":
    for folder in sys.argv[1:]:
        start = time.perf_counter()
        print(f"{folder}: test accuracy {100 * score(folder):.2f}% ({time.perf_counter() - start:.0f} s)")
