"""Which memorised clip is each overfit sample? (RESULTS.md, "Overfit proof").

The GPU overfit run kept only each sample's index (predicted digit and probability from the 16-bit
classifier), not its audio. A sample that is an exact copy of one of the 10 memorised training
clips gets that clip's (digit, probability) signature from the same classifier. This script
computes the 10 signatures on the clips' 8-bit min-max mu-law round trip (what the model learned),
matches each sample's index row to them, and scores the matched clips with the mu-law classifier.

    python results/sc09-overfit-signature-match.py SC09_DIR OLD_CLASSIFIER NEW_CLASSIFIER INDEX.json [...]

OLD_CLASSIFIER is the 16-bit-trained classifier of the run (git show 9b24d9e:eval/weights/sc09-fsdd-classifier.pt).
"""

from __future__ import annotations

import collections
import json
import sys

import torch
from audiomamba.eval.classifier import load_classifier
from audiomamba.eval.metrics import inception_score

from audiomamba.data import build_dataset
from audiomamba.tokenizer import mu_law_decode


def main(root: str, old_path: str, new_path: str, indexes: list[str]) -> None:
    old, new = load_classifier(old_path), load_classifier(new_path)
    clips = build_dataset("sc09", root, "train", 16000, "minmax", 16, 1)  # sc09-overfit's 10 clips
    waves = mu_law_decode(torch.stack([clips[i][1] for i in range(len(clips))]))
    signature = [(int(d), float(p)) for p, d in zip(*old.probs(waves).max(-1), strict=True)]
    new_probs = new.probs(waves)
    print("16-bit classifier on the clips:", [(d, round(p, 4)) for d, p in signature])
    print("mu-law classifier on the clips:", [(int(d), round(float(p), 3)) for p, d in zip(*new_probs.max(-1), strict=True)])
    for index in indexes:
        rows = json.loads(open(index).read())
        match = []
        for r in rows:
            hits = [i for i, (d, p) in enumerate(signature) if d == r["digit"] and abs(p - r["digit_prob"]) < 2e-3]
            match.append(hits[0] if len(hits) == 1 else None)
        matched = [m for m in match if m is not None]
        recognised = sum(float(new_probs[m].max()) >= 0.9 for m in matched) / len(rows)
        counts = collections.Counter(matched)
        print(f"{index}: {len(matched)}/{len(rows)} samples match one clip, per clip {[counts[i] for i in range(len(clips))]}; "
              f"mu-law classifier: {100 * recognised:.1f} % recognised (unmatched counted as not), "
              f"IS of the matched {inception_score(new_probs[matched]):.2f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
