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
