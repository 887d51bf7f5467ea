"""Process-level behaviour: Ctrl-C, the GIL, progress bars."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np

import medsynth

CHILD = textwrap.dedent("""
    import sys, time, numpy as np, medsynth
    X, y = medsynth.datasets.make_shapes(n_per_class=64, num_classes=2, size=32, seed=0)
    model = medsynth.DiffusionModel(base_channels=32, channel_multipliers=(1, 2, 2), seed=0)
    model.fit(X[:8], y[:8], steps=1, batch_size=8, progress=False)
    print("ready", flush=True)
    start = time.perf_counter()
    try:
        model.fit(X, y, steps=100000, batch_size=64, progress=False, checkpoint=sys.argv[1], checkpoint_every=1)
    except KeyboardInterrupt:
        print(f"interrupted {time.perf_counter():.6f}", flush=True)
    images, _ = model.sample(labels=[0, 1], steps=2, progress=False)
    print("usable", images.shape, flush=True)
""")


def test_ctrl_c_stops_training_within_a_second_and_keeps_the_model(tmp_path):
    ckpt = tmp_path / "run.safetensors"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ckpt)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().startswith("ready")
        deadline = time.time() + 120
        while not ckpt.exists() and time.time() < deadline:   # training is under way
            time.sleep(0.05)
        assert ckpt.exists()
        time.sleep(0.3)
        sent = time.perf_counter()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, err
    lines = out.splitlines()
    stopped = float(next(l for l in lines if l.startswith("interrupted")).split()[1])
    assert stopped - sent < 5.0, f"took {stopped - sent:.2f} s to stop"   # about 0.05 s on a quiet machine
    assert any(l.startswith("usable (2, 32, 32)") for l in lines)
    medsynth.DiffusionModel.load(ckpt)           # the checkpoint on disk is intact


def test_long_calls_release_the_gil():
    X, y = medsynth.datasets.make_shapes(n_per_class=40, num_classes=2, size=16, seed=0)
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.005)

    thread = threading.Thread(target=ticker)
    thread.start()
    start = time.perf_counter()
    try:
        medsynth.Classifier(seed=0).fit(X, y, epochs=2, batch_size=8, progress=False)
    finally:
        done.set()
        thread.join()
    elapsed = time.perf_counter() - start
    during = [t for t in ticks if start < t < start + elapsed]
    # a thread blocked on the GIL would tick a handful of times at most
    assert len(during) > 0.3 * elapsed / 0.005, (len(during), elapsed)


def test_progress_bar_reports_steps(capsys):
    X, y = medsynth.datasets.make_shapes(n_per_class=20, num_classes=2, size=16, seed=0)
    medsynth.Classifier(seed=0).fit(X, y, epochs=2, batch_size=10, progress=True)
    err = capsys.readouterr().err
    assert "training simple_cnn" in err and "8/8" in err
