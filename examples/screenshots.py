"""Regenerate the README screenshots from a real run of the plugin on the sample phantom.

    xvfb-run -a python examples/screenshots.py examples/screenshots [--samples 4 --steps 10]

Opens napari, loads the 2 mm phantom, runs EnTrust through its dock widget, and saves three PNGs:
the mask with the TrustMap overlay, the conflict feature F_cf, and the review widget with the
uncertain regions listed and the most uncertain one selected.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from napari_entrust.outputs.catalog import BY_KEY


def wait(predicate, timeout: float = 600.0) -> None:
    app = QApplication.instance()
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("the run did not finish in time")
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 900)
    viewer.open_sample("napari-entrust", "phantom_2mm")
    _, run = viewer.window.add_plugin_dock_widget("napari-entrust", "EnTrust")
    _, review = viewer.window.add_plugin_dock_widget("napari-entrust", "Review uncertainty", tabify=True)
    run._samples.setValue(args.samples)
    run._steps.setValue(args.steps)
    run.run()
    wait(lambda: run._status.text().startswith(("done:", "EnTrust")))
    if not run._status.text().startswith("done:"):
        raise SystemExit(run._status.text())
    for name in ("labels", "conflict (truth)"):
        viewer.layers[name].visible = False
    viewer.layers["mask"].contour = 1

    regions = review.regions.find_regions()
    review.regions.select(0)  # moves to the most uncertain region
    viewer.layers["review region"].visible = False
    run.parentWidget().raise_()  # the EnTrust widget, with the case summary and the label legend
    QApplication.instance().processEvents()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    napari.utils.io.imsave(str(args.out_dir / "trustmap.png"), shot)

    viewer.layers["TrustMap"].visible = False
    viewer.layers[BY_KEY["conflict"].layer_name()].visible = True
    napari.utils.io.imsave(str(args.out_dir / "conflict.png"), viewer.screenshot(canvas_only=False, flash=False))

    viewer.layers[BY_KEY["conflict"].layer_name()].visible = False
    viewer.layers["TrustMap"].visible = True
    viewer.layers["review region"].visible = True
    review.parentWidget().raise_()
    QApplication.instance().processEvents()
    napari.utils.io.imsave(str(args.out_dir / "review.png"), viewer.screenshot(canvas_only=False, flash=False))
    print(f"{len(regions)} uncertain regions; screenshots in {args.out_dir}")
    viewer.close()


if __name__ == "__main__":
    main()
