"""The reference every proxy is compared with, outside hdc: TF-IDF (word uni- and bigrams, sublinear
term frequency, n-grams in 2+ documents) + a linear SVM (scikit-learn's LinearSVC, C=1), fitted on a
folder's train split and scored on its test split. A folder whose label column is `labels` (a list per
document: scripts/multilabel_proxies.py) is multi-label: one SVM per label (one-vs-rest), scored by
micro- and macro-F1.

    pip install scikit-learn   # not an hdc dependency
    python scripts/tfidf_svm.py data/proxies/imdb_1k data/proxies/r8 ...
"""

import sys
import time

import pyarrow.parquet as pq

try:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import f1_score
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer
    from sklearn.svm import LinearSVC
except ImportError:
    sys.exit("scripts/tfidf_svm.py needs scikit-learn: pip install scikit-learn")


def score(folder: str) -> str:
    train, test = (pq.read_table(f"{folder}/{split}.parquet").to_pydict() for split in ("train", "test"))
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    features = vectorizer.fit_transform(train["text"])
    if "labels" in train:  # label sets: one-vs-rest
        binarizer = MultiLabelBinarizer().fit(train["labels"])
        model = OneVsRestClassifier(LinearSVC(C=1.0)).fit(features, binarizer.transform(train["labels"]))
        predicted, truth = model.predict(vectorizer.transform(test["text"])), binarizer.transform(test["labels"])
        micro, macro = (100 * f1_score(truth, predicted, average=average) for average in ("micro", "macro"))
        return f"test micro-F1 {micro:.2f}%, macro-F1 {macro:.2f}%"
    model = LinearSVC(C=1.0).fit(features, train["label"])
    predictions = model.predict(vectorizer.transform(test["text"]))
    accuracy = sum(p == y for p, y in zip(predictions, test["label"], strict=True)) / len(predictions)
    return f"test accuracy {100 * accuracy:.2f}%"


if __name__ == "__main__":
    for folder in sys.argv[1:]:
        start = time.perf_counter()
        print(f"{folder}: {score(folder)} ({time.perf_counter() - start:.0f} s)")
