"""Writes the notebooks of this folder from their cell sources (keeps the .ipynb diff-free).

Run ``python notebooks/build_notebooks.py`` after editing a cell list below.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

QUICKSTART = [
    new_markdown_cell(
        "# Quick start: image folders → DCT records → spectra\n\n"
        "A walk through the data path of tfforensics on real photos that ship with "
        "scikit-image: build a tiny three-source folder (real crops, nearest-neighbour and "
        "bilinear up-sampled crops, a stand-in for two GAN up-sampling layers), encode it as "
        "log-DCT TFRecords with `prepare`, read it back with the one reader, and look at the "
        "mean spectra, where up-sampling leaves its marks (Frank et al., 2020)."
    ),
    new_markdown_cell("## Setup"),
    new_code_cell(
        "import tempfile\nfrom pathlib import Path\n\nimport numpy as np\nfrom PIL import Image\n\n"
        "from tfforensics.benchmark.photos import load_photos, random_crops, upsampled\n"
        "from tfforensics.data import Encoding, as_numpy, load_dataset, prepare\n\n"
        "work = Path(tempfile.mkdtemp(prefix='tff-quickstart-'))"
    ),
    new_markdown_cell("## Build a three-source image folder\n\nOne sub-folder per source; labels follow the sorted names."),
    new_code_cell(
        "crops, _ = random_crops(load_photos(), 3 * 40, 32, seed=0)\n"
        "sources = {'a_real': crops[:40], 'b_nearest': upsampled(crops[40:80], 'nearest'),\n"
        "           'c_bilinear': upsampled(crops[80:], 'bilinear')}\n"
        "for name, images in sources.items():\n"
        "    (work / 'src' / name).mkdir(parents=True)\n"
        "    for i, image in enumerate(images):\n"
        "        Image.fromarray(image).save(work / 'src' / name / f'{i:04d}.png')\n"
        "sorted(p.name for p in (work / 'src').iterdir())"
    ),
    new_markdown_cell("## Prepare log-DCT records\n\nThe manifest remembers classes, shape, encoding and counts."),
    new_code_cell(
        "manifest = prepare(work / 'src', work / 'dct', Encoding(log=True, color=True), progress=False)\n"
        "print(manifest.class_names, manifest.image_shape, {s: manifest.count(s) for s in manifest.splits})"
    ),
    new_markdown_cell("## Read it back\n\n`load_dataset` gives a batched, prefetched `tf.data.Dataset`; `as_numpy` gives arrays."),
    new_code_cell(
        "images, labels = next(iter(load_dataset(manifest, 'train', batch_size=8)))\n"
        "print(images.shape, labels.numpy())\n"
        "x, y = as_numpy(manifest, 'train')\n"
        "x.shape, np.bincount(y)"
    ),
    new_markdown_cell(
        "## Mean spectra\n\nNearest-neighbour up-sampling by 2 zeroes the DCT row and column at N/2 and "
        "mirrors energy around it; its mean log spectrum differs most from the real one there."
    ),
    new_code_cell(
        "mean = {name: x[y == label].mean(axis=(0, 3)) for label, name in enumerate(manifest.class_names)}\n"
        "difference = mean['a_real'] - mean['b_nearest']\n"
        "row, col = np.unravel_index(np.abs(difference).argmax(), difference.shape)\n"
        "print('largest real - nearest difference at', (row, col))\n"
        "assert 16 in (row, col), 'expected the N/2 line of nearest-neighbour up-sampling'"
    ),
    new_code_cell(
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n\n"
        "fig, axes = plt.subplots(1, 3, figsize=(9, 3))\n"
        "for ax, (name, spectrum) in zip(axes, mean.items()):\n"
        "    ax.imshow(spectrum, cmap='inferno'); ax.set_title(name); ax.axis('off')\n"
        "fig.savefig(work / 'mean_spectra.png')"
    ),
    new_markdown_cell(
        "From here: `tfforensics stats` for publication plots, `tfforensics baselines` for "
        "kNN / eigenfaces / PRNU on these records."
    ),
]


CLASSIFIERS = [
    new_markdown_cell(
        "# DCT attribution with a Keras classifier\n\n"
        "Train Frank et al.'s ridge model (`log2`) on log-DCT records of real crops and two "
        "up-sampled sources, test it, and classify raw PNGs with the saved model, which carries "
        "its own DCT, log scaling and normalisation. Expect well above the 33 % of chance on the "
        "DCT, and close to chance on pixels."
    ),
    new_markdown_cell("## Setup"),
    new_code_cell(
        "import tempfile\nfrom pathlib import Path\n\nimport numpy as np\nfrom PIL import Image\n\n"
        "from tfforensics.benchmark.photos import load_photos, random_crops, upsampled\n"
        "from tfforensics.data import Encoding, prepare\n"
        "from tfforensics.evaluation.evaluate import evaluate_model\n"
        "from tfforensics.training.fit import train\n\n"
        "work = Path(tempfile.mkdtemp(prefix='tff-classifiers-'))"
    ),
    new_markdown_cell("## Data: three sources, prepared twice"),
    new_code_cell(
        "crops, _ = random_crops(load_photos(), 3 * 100, 32, scales=(0.75, 0.5), seed=1)\n"
        "sources = {'a_real': crops[:100], 'b_nearest': upsampled(crops[100:200], 'nearest'),\n"
        "           'c_bilinear': upsampled(crops[200:], 'bilinear')}\n"
        "for name, images in sources.items():\n"
        "    (work / 'src' / name).mkdir(parents=True)\n"
        "    for i, image in enumerate(images):\n"
        "        Image.fromarray(image).save(work / 'src' / name / f'{i:04d}.png')\n"
        "dct = prepare(work / 'src', work / 'dct', Encoding(log=True, normalize=True), progress=False)\n"
        "pixels = prepare(work / 'src', work / 'pixels', Encoding(transform='raw'), progress=False)"
    ),
    new_markdown_cell("## Train and test `log2` on both"),
    new_code_cell(
        "accuracy = {}\n"
        "for name, dataset in {'dct': dct, 'pixels': pixels}.items():\n"
        "    run = train('log2', dataset, out=work / f'log2_{name}', epochs=30, verbose=0)\n"
        "    accuracy[name] = evaluate_model(run.model_path, dataset, plots=False)['accuracy']\n"
        "print(accuracy)\n"
        "assert accuracy['dct'] > accuracy['pixels']"
    ),
    new_markdown_cell("## Classify raw images with the saved model\n\nNo mean/var files: the preprocessing is inside `model.keras`."),
    new_code_cell(
        "import keras\n\n"
        "model = keras.saving.load_model(work / 'log2_dct' / 'model.keras', safe_mode=True)\n"
        "raw = np.stack([np.asarray(Image.open(p).convert('L'))[..., None]\n"
        "                for p in sorted((work / 'src' / 'b_nearest').glob('*.png'))[:20]])\n"
        "predicted = model.predict(raw.astype('float32'), verbose=0).argmax(axis=1)\n"
        "print('share predicted b_nearest:', np.mean(predicted == 1))"
    ),
]


def main() -> None:
    metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    for name, cells in NOTEBOOKS.items():
        nbformat.write(new_notebook(cells=cells, metadata=metadata), HERE / f"{name}.ipynb")


#: Notebook file stem -> cells.
NOTEBOOKS = {"quickstart": QUICKSTART, "classifiers": CLASSIFIERS}


if __name__ == "__main__":
    main()
