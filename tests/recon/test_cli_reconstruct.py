"""`radiant reconstruct` / `radiant bench recon` bad input: one line naming the problem, exit 2, nothing written."""

from render.cli import main


def _run(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def test_missing_dataset(tmp_path, capsys):
    code, err = _run(["reconstruct", str(tmp_path / "nope"), "--out", str(tmp_path / "run"), "--iters", "1"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "nope" in err
    assert not (tmp_path / "run").exists()


def test_nonempty_out_needs_force_or_resume(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("x")
    code, err = _run(["reconstruct", str(tmp_path), "--out", str(run), "--iters", "1"], capsys)
    assert code == 2 and "--force" in err and "--resume" in err
    assert (run / "keep.txt").read_text() == "x"


def test_resume_without_run(tmp_path, capsys):
    code, err = _run(["reconstruct", str(tmp_path), "--out", str(tmp_path / "run"), "--resume"], capsys)
    assert code == 2 and "no run to resume" in err


def test_bad_config_file(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("rays_per_batch: -3\n")
    code, err = _run(["reconstruct", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(cfg)], capsys)
    assert code == 2 and "'rays_per_batch' expected >= 1" in err


def test_bad_budget(tmp_path, capsys):
    code, err = _run(["reconstruct", str(tmp_path), "--out", str(tmp_path / "run"), "--iters", "0"], capsys)
    assert code == 2 and "'iters' expected >= 1" in err


def test_bench_recon_unknown_variant(tmp_path, capsys):
    code, err = _run(["bench", "recon", "--variants", "full,bogus", "--data", str(tmp_path)], capsys)
    assert code == 2 and "bogus" in err


def test_bench_recon_equal_steps_seeds_and_jobs(tmp_path, capsys):
    """--iters (equal steps), --seeds (every variant once per seed) and --jobs (runs at once): one JSON line per
    run, each with its seed and exactly the steps asked for, evaluated against the dataset's gt mesh."""
    import json
    from pathlib import Path

    from render.recon.make_dataset import Recipe, make_dataset

    scene = Path(__file__).resolve().parents[2] / "scenes" / "object" / "object.xml"
    data = tmp_path / "tiny"
    make_dataset(scene, data, Recipe(scene=str(scene), mode="orbit", views=4, width=32, height=24, spp=1))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("threads: 1\nmesh_resolution: 32\nreport_views: 1\n")
    out = tmp_path / "bench.jsonl"
    code = main(["bench", "recon", "--data", str(data), "--variants", "full", "--iters", "3", "--seeds", "0,1",
                 "--jobs", "2", "--config", str(cfg), "--work", str(tmp_path / "work"), "--out", str(out)])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["seed"] for r in rows) == [0, 1]
    for r in rows:
        assert "error" not in r, r
        assert r["steps"] == 3 and r["iters"] == 3 and r["minutes"] is None and 0 <= r["f_score_5cm"] <= 1
    assert (tmp_path / "work" / "tiny" / "full_s1" / "mesh.ply").is_file()
    code, err = _run(["bench", "recon", "--data", str(data), "--seeds", "0,x"], capsys)
    assert code == 2 and "--seeds" in err
    code, err = _run(["bench", "recon", "--data", str(data), "--jobs", "0"], capsys)
    assert code == 2 and "--jobs" in err
    code, err = _run(["bench", "recon", "--data", str(data), "--seeds", "0,0"], capsys)
    assert code == 2 and "--seeds" in err


def test_resume_keeps_the_behaviour_the_run_started_with(tmp_path):
    """A run written before a key existed (config.yaml without it) resumes with the value that gives its old
    behaviour (LEGACY_DEFAULTS), not with the new default; a run that has the key keeps its own value."""
    import yaml

    from render.recon.config import ReconConfig
    from render.recon.run import prepare_config

    run = tmp_path / "run"
    run.mkdir()
    values = yaml.safe_load(ReconConfig(data=str(tmp_path)).to_yaml())
    del values["prior_importance"], values["prior_conflict"], values["sampling_conflict_weight"]
    (run / "config.yaml").write_text(yaml.safe_dump(values))
    assert ReconConfig().prior_importance is True and ReconConfig().prior_conflict > 0
    old = prepare_config(tmp_path, run, {}, None, True, False)
    assert old.prior_importance is False and old.prior_conflict == 0 and old.sampling_conflict_weight == 0
    values["prior_importance"] = True
    (run / "config.yaml").write_text(yaml.safe_dump(values))
    assert prepare_config(tmp_path, run, {}, None, True, False).prior_importance is True
