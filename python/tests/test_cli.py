"""The medsynth command: --help for every subcommand, exit codes for success, bad arguments or
configuration, failures and Ctrl-C."""
import subprocess
import sys

import pytest

import medsynth
from medsynth import cli

COMMANDS = ("run", "report", "generate", "train", "evaluate", "explain", "describe")


def test_help_of_the_command_and_every_subcommand(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for command in COMMANDS:
        assert command in text
    assert "Exit codes" in text
    for command in COMMANDS:
        with pytest.raises(SystemExit) as info:
            cli.main([command, "--help"])
        assert info.value.code == 0
        assert f"usage: medsynth {command}" in capsys.readouterr().out


def test_python_dash_m_medsynth_runs_the_command():
    done = subprocess.run([sys.executable, "-m", "medsynth", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"medsynth {medsynth.__version__}"
    done = subprocess.run([sys.executable, "-m", "medsynth"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "COMMAND" in done.stderr


def test_bad_configuration_exits_2_naming_the_key(tmp_path, capsys):
    assert cli.main(["run", "--out", str(tmp_path), "--set", "classifiers.folds=1", "--quiet"]) == 2
    assert "classifiers.folds: must be >= 2" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[data]\nimage_sise = 32\n")
    assert cli.main(["run", str(bad), "--out", str(tmp_path), "--quiet"]) == 2
    assert "data.image_sise: unknown key" in capsys.readouterr().err
    assert cli.main(["run", str(tmp_path / "missing.toml"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["run", "--set", "folds", "--out", str(tmp_path)]) == 2
    assert cli.main(["report", str(tmp_path / "nowhere")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_failures_exit_1_and_ctrl_c_exits_130(tmp_path, monkeypatch, capsys):
    assert cli.main(["evaluate", str(tmp_path / "none.safetensors"), str(tmp_path)]) == 1
    assert "failed" in capsys.readouterr().err

    import medsynth.experiment as ex

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ex, "run", interrupted)
    assert cli.main(["run", "--out", str(tmp_path), "--quiet"]) == 130
    assert "run the same command again to continue" in capsys.readouterr().err


def test_train_and_evaluate_an_image_folder(tmp_path, capsys):
    X, y = medsynth.datasets.make_shapes(n_per_class=30, num_classes=2, size=16, seed=3)
    medsynth.datasets.save_image_folder(tmp_path / "data", X, y, ["disc", "square"])
    model = tmp_path / "model.safetensors"
    assert cli.main(["train", str(tmp_path / "data"), "--out", str(model), "--epochs", "2"]) == 0
    assert model.is_file()
    assert cli.main(["evaluate", str(model), str(tmp_path / "data"), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "disc" in out and "accuracy" in out and (tmp_path / "r.json").is_file()


def test_describe_prints_a_preset_as_toml(capsys):
    assert cli.main(["describe", "--preset", "paper"]) == 0
    text = capsys.readouterr().out
    assert 'preset = "paper"' in text and "folds = 5" in text
