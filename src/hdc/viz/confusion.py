"""A confusion matrix as a PNG (matplotlib, no display needed)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def confusion_matrix_png(matrix: list[list[int]], label_names: list[str], path: Path) -> None:
    """Rows are true labels, columns predicted; each cell shows its count and its share of the row."""
    size = 1.2 + 0.6 * len(label_names)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    totals = [max(sum(row), 1) for row in matrix]
    shares = [[count / total for count in row] for row, total in zip(matrix, totals, strict=True)]
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            colour = "white" if shares[i][j] > 0.5 else "black"
            axes.text(j, i, f"{count}\n{shares[i][j]:.1%}", ha="center", va="center", color=colour, fontsize=8)
    ticks = range(len(label_names))
    axes.set_xticks(ticks, label_names, rotation=45, ha="right")
    axes.set_yticks(ticks, label_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.colorbar(image, ax=axes, label="share of the true class")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
