"""Draw the emoji contact sheet: classes (rows, one per Unicode subgroup shown) by vendor styles (columns).

python scripts/emoji_sheet.py docs/emoji_data.png
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from diffclass.data.emoji import STYLES, TEST_STYLES, emoji_array, emoji_classes

if __name__ == "__main__":
    path = sys.argv[1]
    array, classes = emoji_array(), emoji_classes()
    firsts = {}
    for index, emoji in enumerate(classes):  # the first class of every subgroup, then every 2nd one
        firsts.setdefault(emoji.subgroup, index)
    rows = list(firsts.values())[::2]
    fig, axes = plt.subplots(len(rows), len(STYLES), figsize=(len(STYLES) * 0.75 + 1.6, len(rows) * 0.75 + 0.5))
    for r, c in enumerate(rows):
        for s, style in enumerate(STYLES):
            ax = axes[r, s]
            ax.imshow(array[s, c])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(style + ("\n(test)" if style in TEST_STYLES else "\n(train)"), fontsize=7)
            if s == 0:
                ax.set_ylabel(classes[c].name, rotation=0, ha="right", va="center", fontsize=7)
    fig.subplots_adjust(left=0.17, right=0.99, top=0.95, bottom=0.01, wspace=0.05, hspace=0.05)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}: {len(rows)} classes x {len(STYLES)} styles")
