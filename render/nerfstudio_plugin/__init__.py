"""nerfstudio method plugin `radiant-sdf`: our reconstructor (render/recon) trained by nerfstudio's `ns-train`.

Registered through the `nerfstudio.method_configs` entry point (pyproject). nerfstudio is imported only inside this
package (install the `[nerfstudio]` extra, in its own venv: see `make nerfstudio-check`); the core never imports it.

    ns-train radiant-sdf --data DATA                                  # nerfstudio transforms.json
    ns-train radiant-sdf sdfstudio-data --data DATA --include-mono-prior True   # meta_data.json with priors
    python -m render.nerfstudio_plugin.export --load-config outputs/.../config.yml --out mesh.ply

The model (model.py) wraps ReconModel, render_rays with our occupancy grid and recon_losses (objective.py); the
data manager (datamanager.py) samples pixels with our uncertainty-guided PixelSampler; all in our normalized
space (the unit sphere), mapped from nerfstudio's world by a similarity fitted to the training cameras.
"""
