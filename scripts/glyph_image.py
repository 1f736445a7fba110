"""Write one glyph test image as a PNG, e.g. to try `diffclass classify` or `diffclass explain` on it.

python scripts/glyph_image.py 0 g0.png     # the first test image of the fixed shuffled order
"""

import sys

from PIL import Image

from diffclass.data import load_dataset

if __name__ == "__main__":
    index, path = int(sys.argv[1]), sys.argv[2]
    test = load_dataset("glyphs", "test")
    pixels = ((test.images[index, 0] + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    Image.fromarray(pixels).save(path)
    print(f"wrote {path}: {test.class_names[int(test.labels[index])]}")
