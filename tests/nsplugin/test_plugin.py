"""The radiant-sdf nerfstudio plugin. Needs nerfstudio (the [nerfstudio] extra, in its own venv: make
nerfstudio-check creates one); skipped without it, as in CI. Run: NS_VENV/bin/python -m pytest tests/nsplugin."""

import copy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("nerfstudio", reason="nerfstudio not installed (pip install 'radiant[nerfstudio]' in its own venv)")

from nerfstudio.data.dataparsers.sdfstudio_dataparser import SDFStudioDataParserConfig  # noqa: E402
from nerfstudio.engine.callbacks import TrainingCallbackAttributes, TrainingCallbackLocation  # noqa: E402
from nerfstudio.engine.optimizers import Optimizers  # noqa: E402
from nerfstudio.plugins.registry import discover_methods  # noqa: E402

from render.cli import main  # noqa: E402
from render.recon.dataset import load_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    out = tmp_path_factory.mktemp("ns") / "room"
    assert main(["make-dataset", str(ROOT / "scenes/room/room.xml"), "--inside", "--views", "4", "--width", "32",
                 "--height", "24", "--spp", "1", "--priors", "gt", "--out", str(out)]) == 0
    return out


def _config(data: Path):
    methods, _ = discover_methods()
    cfg = copy.deepcopy(methods["radiant-sdf"])
    cfg.pipeline.datamanager.data = data
    cfg.pipeline.datamanager.dataparser = SDFStudioDataParserConfig(data=data, include_mono_prior=True)
    cfg.pipeline.model.recon.rays_per_batch = 256
    cfg.pipeline.model.recon.threads = 1
    return cfg


def test_entry_point_registers_radiant_sdf():
    from render.nerfstudio_plugin.model import RadiantSDFModelConfig

    methods, descriptions = discover_methods()
    assert "radiant-sdf" in methods and "Radiant" in descriptions["radiant-sdf"]
    assert isinstance(methods["radiant-sdf"].pipeline.model, RadiantSDFModelConfig)


def test_rays_match_our_reader_and_one_training_step(room):
    cfg = _config(room)
    pipe = cfg.pipeline.setup(device="cpu", test_mode="val", world_size=1, local_rank=0)
    # nerfstudio's rays through pixel centres, mapped into our normalized space, are our reader's rays
    ours = load_dataset(room)
    idx = torch.tensor([[0, 3, 5], [2, 20, 30], [3, 11, 17]])
    o, d, _ = pipe.model.to_normalized(pipe.datamanager.train_ray_generator(idx))
    o2, d2 = ours.rays(idx[:, 0], idx[:, [2, 1]].float() + 0.5)
    torch.testing.assert_close(o, o2, atol=1e-4, rtol=0)
    torch.testing.assert_close(d, d2, atol=1e-4, rtol=0)
    # one step through nerfstudio's optimizers and our callbacks: every loss term, finite, moves the field
    opt = Optimizers(cfg.optimizers, pipe.get_param_groups())
    trainer = SimpleNamespace(config=SimpleNamespace(max_num_iterations=10))
    callbacks = pipe.get_training_callbacks(TrainingCallbackAttributes(opt, None, pipe, trainer))
    before = pipe.model.field.sdf_net.grid.table.detach().clone()
    for step in range(2):  # (the geometric init's zero feature weights leave the table's first gradient at 0)
        for cb in callbacks:
            cb.run_callback_at_location(step, TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
        _, losses, metrics = pipe.get_train_loss_dict(step)
        assert {"rgb", "eikonal", "depth", "normal", "smooth", "uncertainty_fit"} <= set(losses)
        assert all(torch.isfinite(v) for v in losses.values()) and torch.isfinite(metrics["psnr"])
        opt.zero_grad_all()
        sum(losses.values()).backward()
        opt.optimizer_step_all()
    assert not torch.equal(before, pipe.model.field.sdf_net.grid.table.detach())
    assert pipe.datamanager.sampler.seen.any()  # the rendered uncertainty reached our pixel sampler
    assert pipe.datamanager.sampler.train.tolist() == [1, 2, 3]  # our split (view 0 held out), as the Trainer
    # ns-train's periodic evaluations: a batch of held-out rays and a whole image
    pipe.eval()
    _, eval_losses, _ = pipe.get_eval_loss_dict(2)
    metrics, images = pipe.get_eval_image_metrics_and_images(2)
    assert torch.isfinite(eval_losses["rgb"]) and np.isfinite(metrics["psnr"])
    assert images["img"].shape[-1] == 3 and images["depth"].shape[:2] == (24, 32)


def test_nerfstudio_data_rays_and_frames_match_our_reader(room):
    """`ns-train radiant-sdf --data DATA` (transforms.json): nerfstudio's parser re-orients and rescales the poses;
    mapped back through its transform, the rays and the normalization are our reader's."""
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    cfg = _config(room)
    cfg.pipeline.datamanager.dataparser = NerfstudioDataParserConfig(data=room)
    pipe = cfg.pipeline.setup(device="cpu", test_mode="val", world_size=1, local_rank=0)
    ours = load_dataset(room / "transforms.json")
    model = pipe.model
    names = [Path(f).stem for f in pipe.datamanager.train_dataparser_outputs.image_filenames]
    # the export's chain: nerfstudio's camera centres back in the files' world are the files' centres
    c_ns = pipe.datamanager.train_dataset.cameras.camera_to_worlds[:, :3, 3].double()
    c_world = c_ns @ model.ns_to_world[:3, :3].T + model.ns_to_world[:3, 3]
    mine_c2w = ours.cam_to_world[[ours.names.index(n) for n in names]].double()
    torch.testing.assert_close(c_world, ours.to_world(mine_c2w[:, :3, 3]), atol=1e-5, rtol=0)
    idx = torch.tensor([[i, 7 + i, 3 + 5 * i] for i in range(len(names))])
    o, d, _ = model.to_normalized(pipe.datamanager.train_ray_generator(idx))
    mine = torch.tensor([ours.names.index(n) for n in names])
    o2, d2 = ours.rays(mine, idx[:, [2, 1]].float() + 0.5)
    torch.testing.assert_close(o, o2, atol=1e-4, rtol=0)
    torch.testing.assert_close(d, d2, atol=1e-4, rtol=0)


def test_ns_train_then_export_mesh_in_world_units(room, tmp_path):
    ns_train = Path(sys.executable).parent / "ns-train"
    run = subprocess.run([str(ns_train), "radiant-sdf", "--machine.device-type", "cpu", "--vis", "tensorboard",
                          "--max-num-iterations", "3", "--output-dir", str(tmp_path), "--experiment-name", "room",
                          "--timestamp", "t", "--pipeline.model.recon.rays-per-batch", "128",
                          "--pipeline.model.recon.threads", "1",
                          "sdfstudio-data", "--data", str(room), "--include-mono-prior", "True"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    config = tmp_path / "room" / "radiant-sdf" / "t" / "config.yml"
    assert config.is_file()
    from render.nerfstudio_plugin.export import main as export_main

    mesh = tmp_path / "mesh.ply"
    assert export_main(["--load-config", str(config), "--out", str(mesh), "--resolution", "48"]) == 0
    assert export_main(["--load-config", str(config), "--out", str(mesh)]) == 2  # exists, no --force
    import trimesh

    m = trimesh.load(mesh, process=False)
    assert len(m.faces) > 0
    # 3 steps leave the initial inside-out sphere (radius 0.9, normalized): in world units it is centred on the
    # dataset's normalization, radius 0.9 * scale, which fails if a frame in the chain were wrong
    ds = load_dataset(room)
    r = np.linalg.norm(np.asarray(m.vertices) - ds.normalization[:3, 3].numpy(), axis=1) / ds.scale
    assert abs(np.median(r) - 0.9) < 0.05, np.median(r)
