"""Where along the label diffusion a DiDiCM network classifies well, and how much it leans on the noisy label.

    python benchmarks/didicm_times.py --model didicm-glyphs-p0 --model runs/didicm-glyphs-mix [--json FILE]

The ideal network's clean-label estimate p0 is the image's posterior whatever the time t and the noisy label c_t
(the marginal's concrete score does not depend on c_t). For each model, on its dataset's test images: the top-1 of
argmax p0 at several times, with c_t the true label and with c_t a random one, and the mean p0 given to c_t.
A network that is good at t = 1 but not at small t fails CP, whose last steps run at small t.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from rich.table import Table

from diffclass.data import load_dataset
from diffclass.didicm.classifier import DiDiCMClassifier
from diffclass.didicm.process import sigma_bar
from diffclass.progress import console

TIMES = (1.0, 0.5, 0.1, 1e-3, 1e-5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="a DiDiCM model (name or folder)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random noisy labels")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    rows = []

    table = Table(title="argmax p0 top-1 (mean p0 at c_t) on the test images")
    table.add_column("model")
    table.add_column("c_t")
    for t in TIMES:
        table.add_column(f"t = {t:g}", justify="right")
    for name in args.model:
        clf = DiDiCMClassifier.load(name)
        if not clf.conditioned:
            raise SystemExit(f"{name} is a plain classifier: it takes no noisy label")
        if clf.free_scores:
            raise SystemExit(f"{name} has the paper's head: free scores, no clean-label estimate p0 to read")
        data = load_dataset(clf.info.dataset, "test", clf.info.image_size, clf.info.channels, clf.class_names)
        k = len(data.class_names)
        noisy = {
            "true": data.labels,
            "random": torch.randint(k, data.labels.shape, generator=torch.Generator().manual_seed(args.seed)),
        }
        for label, c_t in noisy.items():
            cells = []
            for t in TIMES:
                times = torch.full((len(data),), t)
                with torch.no_grad():
                    p0 = torch.softmax(clf.model.network.clean_logits(data.images, c_t, sigma_bar(times)), dim=-1)
                top1 = (p0.argmax(-1) == data.labels).float().mean().item()
                at_label = p0.gather(1, c_t.view(-1, 1)).mean().item()
                cells.append(f"{top1:.1%} ({at_label:.2f})")
                rows.append(dict(model=name, c_t=label, t=t, top1=round(top1, 4), p0_at_c_t=round(at_label, 4)))
            table.add_row(name, label, *cells)
    console.print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(images=len(data), seed=args.seed, rows=rows), indent=1) + "\n")
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
