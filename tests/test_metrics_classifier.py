"""Reference classifier and image-quality metrics: the Frechet distance against closed forms, cFID sanity on real
data, the shipped classifier's accuracy on the real Fashion-MNIST test set, sample generation, and a quick run of
bench/quality.py against a tiny checkpoint."""
import importlib.util
import json
import os
import re
import shlex
from pathlib import Path

import pytest
import torch

from explorer.checkpoint import (PRETRAINED_DIR, CheckpointError, DiffusionModel, atomic_save, list_checkpoints,
                                 load_model, read_config)
from explorer.classifier import (
    DEFAULT_PATH,
    FORMAT,
    Classifier,
    ClassifierConfig,
    ClassifierError,
    load_classifier,
    save_classifier,
)
from explorer.data import DEBIAN_FASHION_MNIST_DIR, DataUnavailableError, load_image_tensors, sample_toy_class
from explorer.metrics import (
    balanced_indices,
    cfid,
    class_accuracy,
    classifier_features,
    energy_distance,
    feature_stats,
    frechet_distance,
    generate_samples,
    sliced_wasserstein,
    toy_distances,
    toy_floor,
)
from explorer.samplers import timesteps
from explorer.training import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


# ------------------------------------------------------------------------------ toy distances and their floor


def test_toy_floor_is_what_two_draws_of_the_data_give():
    """toy_floor averages |energy| and sliced W2 over pairs of fresh draws; fresh data scores at about that floor
    with toy_distances, another toy far above it, and the same points always score the same."""
    energy, sliced = toy_floor("two-moons", 500, pairs=2, seed=7)
    pairs = [(sample_toy_class("two-moons", 500, None, 7 + k), sample_toy_class("two-moons", 500, None, 8 + k))
             for k in (1, 3)]
    assert energy == pytest.approx(sum(abs(energy_distance(a, b)) for a, b in pairs) / 2, rel=1e-12)
    assert sliced == pytest.approx(sum(sliced_wasserstein(a, b, 256, torch.Generator().manual_seed(0))
                                       for a, b in pairs) / 2, rel=1e-12)
    assert 0 < energy < 0.01 and 0 < sliced < 0.15
    data = sample_toy_class("two-moons", 500, None, 123)
    same = toy_distances("two-moons", data)
    assert same == toy_distances("two-moons", data) and abs(same[0]) < 4 * energy and same[1] < 3 * sliced
    other = toy_distances("two-moons", sample_toy_class("checkerboard", 500, None, 123))
    assert other[0] > 20 * energy and other[1] > 2 * sliced
    upper = sample_toy_class("two-moons", 500, 0, 123)  # one moon against both, then against its own class
    assert toy_distances("two-moons", upper)[0] > 20 * energy
    assert abs(toy_distances("two-moons", upper, label=0)[0]) < 4 * toy_floor("two-moons", 500, label=0, pairs=2)[0]


# ------------------------------------------------------------------------------------- Frechet distance oracles


def random_psd(d, g, rank=None):
    a = torch.randn(d, rank or d, generator=g, dtype=torch.float64)
    return a @ a.T / (rank or d)


def test_frechet_distance_diagonal_closed_form():
    """Diagonal covariances: FD = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2."""
    g = torch.Generator().manual_seed(0)
    mu1, mu2 = (torch.randn(32, generator=g, dtype=torch.float64) for _ in range(2))
    a, b = (3 * torch.rand(32, generator=g, dtype=torch.float64) for _ in range(2))
    expected = ((mu1 - mu2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum()
    assert frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(float(expected), rel=1e-9)
    # the same Gaussians in a rotated basis (commuting covariances Q diag Q^T): the same distance
    q, _ = torch.linalg.qr(torch.randn(32, 32, generator=g, dtype=torch.float64))
    rotated = frechet_distance(q @ mu1, q @ torch.diag(a) @ q.T, q @ mu2, q @ torch.diag(b) @ q.T)
    assert rotated == pytest.approx(float(expected), rel=1e-9)


def test_frechet_distance_non_commuting_2x2_closed_form():
    """For 2x2 PSD M, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); with M = C1^1/2 C2 C1^1/2, tr M = tr(C1 C2) and
    det M = det C1 det C2, so FD has a closed form even when C1 and C2 do not commute."""
    c1 = torch.tensor([[2.0, 0.7], [0.7, 0.5]], dtype=torch.float64)
    c2 = torch.tensor([[0.3, -0.2], [-0.2, 1.5]], dtype=torch.float64)
    mu1, mu2 = torch.tensor([0.1, -0.4], dtype=torch.float64), torch.tensor([1.0, 2.0], dtype=torch.float64)
    trace_sqrt = torch.sqrt(torch.trace(c1 @ c2) + 2 * torch.sqrt(torch.det(c1) * torch.det(c2)))
    expected = ((mu1 - mu2) ** 2).sum() + c1.trace() + c2.trace() - 2 * trace_sqrt
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(float(expected), rel=1e-12)
    assert frechet_distance(mu2, c2, mu1, c1) == pytest.approx(float(expected), rel=1e-12)  # symmetric


def test_frechet_distance_identical_singular_and_scaled():
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(128, generator=g, dtype=torch.float64)
    low_rank = random_psd(128, g, rank=20)  # like features with dead units, or N < D samples
    assert frechet_distance(mu, low_rank, mu, low_rank) < 1e-9 * low_rank.trace()
    c = random_psd(64, g)  # C2 = k^2 C1: tr sqrt(C1 C2) = k tr C1, FD = (1 - k)^2 tr C1
    assert frechet_distance(mu[:64], c, mu[:64], 4 * c) == pytest.approx(float(c.trace()), rel=1e-9)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="covariances"):
        frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(4), torch.eye(4))


def test_feature_stats_is_mean_and_unbiased_covariance():
    f = torch.randn(500, 7, generator=torch.Generator().manual_seed(2))
    mu, cov = feature_stats(f)
    assert mu.dtype == cov.dtype == torch.float64
    torch.testing.assert_close(mu, f.double().mean(0))
    torch.testing.assert_close(cov, torch.cov(f.double().T))
    with pytest.raises(ValueError):
        feature_stats(torch.zeros(1, 7))


def test_balanced_indices():
    labels = torch.arange(1000) % 10
    idx = balanced_indices(labels, 205, seed=3)
    assert len(idx) == len(idx.unique()) == 205 and torch.equal(idx, idx.sort().values)
    assert labels[idx].bincount().tolist() == [21] * 5 + [20] * 5
    assert torch.equal(idx, balanced_indices(labels, 205, seed=3))
    with pytest.raises(ValueError, match="fewer"):
        balanced_indices(labels, 2000)


# ------------------------------------------------------------------------------------------ classifier file


def fashion_classes():
    return ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def test_classifier_round_trip_and_foreign_files(tmp_path):
    torch.manual_seed(0)
    net = Classifier(ClassifierConfig(class_names=fashion_classes(), training={"note": "untrained"})).eval()
    path = tmp_path / "clf.safetensors"
    save_classifier(path, net)
    loaded = load_classifier(path)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    torch.testing.assert_close(loaded(x), net(x))
    assert loaded.features(x).shape == (4, 128) and not loaded.training
    assert loaded.config.training == {"note": "untrained"}
    with pytest.raises(CheckpointError):  # never taken for a diffusion model ...
        read_config(path)
    assert list_checkpoints(tmp_path) == []
    other = ClassifierConfig(class_names=fashion_classes(), feature_dim=64)
    atomic_save(net.state_dict(), {"format": FORMAT, "config": other.to_json()}, tmp_path / "mismatch.safetensors")
    with pytest.raises(ClassifierError, match="weights invalid"):
        load_classifier(tmp_path / "mismatch.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ClassifierError, match="not a safetensors"):
        load_classifier(tmp_path / "junk.safetensors")
    with pytest.raises(ClassifierError, match="no such"):
        load_classifier(tmp_path / "missing.safetensors")


def test_shipped_classifier_file():
    assert DEFAULT_PATH.is_file() and DEFAULT_PATH.stat().st_size < 2 * 1024 ** 2
    clf = load_classifier()
    assert clf.config.class_names == fashion_classes() and clf.config.training["test_accuracy"] >= 0.91
    assert DEFAULT_PATH not in [path for path, _ in list_checkpoints(PRETRAINED_DIR)]
    with pytest.raises(CheckpointError, match="not a diffusion-explorer checkpoint"):
        read_config(DEFAULT_PATH)
    for path, _ in list_checkpoints(PRETRAINED_DIR)[:1]:  # ... and a diffusion model is no classifier
        with pytest.raises(ClassifierError, match=FORMAT):
            load_classifier(path)


# ------------------------------------------------------------------------------------------- real-data checks


@pytest.fixture(scope="module")
def fashion():
    """(x_train, y_train, x_test, y_test); the Debian files must exist in CI (a failure there, a skip elsewhere)."""
    source = Path(os.environ.get("FASHION_MNIST_DIR") or DEBIAN_FASHION_MNIST_DIR)
    missing = [f for f in FASHION_FILES if not (source / f).is_file()]
    if missing and os.environ.get("CI") == "true":
        pytest.fail(f"Fashion-MNIST files {missing} missing under {source} (apt-get install dataset-fashion-mnist)")
    try:
        x_train, y_train, _ = load_image_tensors("fashion-mnist", train=True)
        x_test, y_test, _ = load_image_tensors("fashion-mnist", train=False)
    except DataUnavailableError as err:
        pytest.skip(str(err))
    return x_train, y_train, x_test, y_test


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def test_classifier_test_accuracy(fashion, classifier):
    _, _, x_test, y_test = fashion
    assert len(y_test) == 10000
    assert class_accuracy(classifier, x_test, y_test) >= 0.91


def test_cfid_of_a_set_with_itself_is_zero_and_noise_is_far(fashion, classifier):
    x_train, y_train, x_test, y_test = fashion
    real = x_test[balanced_indices(y_test, 2000)]
    assert cfid(classifier, real[:500], real[:500]) < 1e-6
    real_features = classifier_features(classifier, real)
    assert real_features.shape == (2000, classifier.config.feature_dim) and real_features.dtype == torch.float64
    real_stats = feature_stats(real_features)
    train_stats = feature_stats(classifier_features(classifier, x_train[balanced_indices(y_train, 2000)]))
    floor = frechet_distance(*train_stats, *real_stats)
    noise = torch.randn(real.shape, generator=torch.Generator().manual_seed(0))
    noised = (0.5 ** 0.5 * real + 0.5 ** 0.5 * noise).clamp(-1, 1)  # x_t at alpha_bar = 1/2
    noised_stats = feature_stats(classifier_features(classifier, noised))
    assert 0 < floor and frechet_distance(*noised_stats, *real_stats) > 20 * floor


# -------------------------------------------------------------------------------- sampling and the benchmark


@pytest.fixture(scope="module")
def tiny_checkpoint(fashion, tmp_path_factory):
    """A conditional tiny UNet trained 2 steps on Fashion-MNIST (T = 50)."""
    d = tmp_path_factory.mktemp("tiny")
    out = d / "fashion_tiny.safetensors"
    Trainer(TrainConfig(dataset="fashion-mnist", model="tiny", steps=2, T=50, compile="off", batch_size=16,
                        sample_every=0, out=str(out), run_dir=str(d / "run"))).fit(progress=False)
    return out


def test_generate_samples(tiny_checkpoint):
    model = load_model(tiny_checkpoint)
    options = {"method": "ddim", "steps": 5, "eta": 1.0, "guidance": 3.0}
    images, labels = generate_samples(model, 25, options, batch_size=10, seed=4)
    assert images.shape == (25, 1, 28, 28) and images.dtype == torch.float32
    assert torch.equal(labels, torch.arange(25) % 10)
    pixels = (images + 1) * 127.5
    assert images.min() >= -1 and images.max() <= 1 and torch.allclose(pixels, pixels.round(), atol=1e-4)
    again, _ = generate_samples(model, 25, options, batch_size=10, seed=4)
    assert torch.equal(images, again)
    with pytest.raises(ValueError, match="x_T"):
        generate_samples(model, 5, {"x_T": torch.zeros(5, 1, 28, 28)})
    with pytest.raises(ValueError, match="sampler"):  # validated by explorer.samplers.sample
        generate_samples(model, 5, {"method": "euler"})


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_quality", ROOT / "bench" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quality_benchmark_quick(tiny_checkpoint, tmp_path, monkeypatch):
    bench = load_bench()
    argv = ["--quick", "--checkpoints", str(tiny_checkpoint), str(DEFAULT_PATH), "--out-dir", str(tmp_path)]
    md = bench.main(argv)
    text = md.read_text()
    assert "Real-vs-real floor (train vs test, N = 20)" in text and "torch " in text
    for row in ("| ddpm-50-beta_tilde | 50 |", "| ddim-10-eta0 | 10 |", "| dpm-solver++-10 | 10 |", "| 3 |",
                "bits/dim"):
        assert row in text
    # the real test images head every sampler table; the targets are numbers (DDIM-50 is not run in quick mode)
    real = float(re.search(r"Real test images: class accuracy ([\d.]+)", text).group(1))
    assert re.search(rf"^\| real test images \(the reference: train vs test images\) \| - \| 20 \| [\d.]+ \| 1.00 "
                     rf"\| {real:.3f} \| - \|$", text, re.M)
    dpm = re.search(r"^\| dpm-solver\+\+-10 \| 10 \| 20 \| [\d.]+ \| ([\d.]+) \| ([\d.]+) \|", text, re.M)
    ratio, accuracy = float(dpm.group(1)), float(dpm.group(2))
    assert f"| dpm-solver++-10: cFID / floor | fashion_tiny | {ratio:.2f} | <= 2.0 | {'yes' if ratio <= 2 else 'no'} |" \
        in text
    gap = 100 * (accuracy - real)
    assert re.search(rf"\| dpm-solver\+\+-10: class accuracy - real test images' \(points\) \| fashion_tiny \| "
                     rf"{gap:+.1f} \| within \+-3.0 \| (yes|no) \|", text)
    assert "| ddim-50-eta1: cFID / floor | fashion_tiny | n/a | <= 1.5 | not measured |" in text
    assert "not a diffusion-explorer checkpoint" in text  # the classifier file, skipped
    rows = (tmp_path / "elbo_fashion_tiny.csv").read_text().splitlines()
    assert rows[0] == "t,span,term_bpd" and len(rows) == 1 + 1 + 5  # L_0 and one t per span of 10
    cached = json.loads((tmp_path / "quality.json").read_text())
    assert len(cached) == 7  # 3 samplers + guidance 0 and 3 (w = 1 is ddim-10-eta0) + the ELBO + the floor
    # what bench/speed.py reads back: a row with the floor of its N, as the report shows them
    row = bench.measured(tiny_checkpoint, {"method": "dpm-solver++", "steps": 10, "guidance": 1.0, "clip_x0": True},
                         20, tmp_path)
    floor = float(re.search(r"floor \(train vs test, N = 20\)\: ([\d.]+)", text).group(1))
    assert round(row["floor"], 3) == floor and f"| dpm-solver++-10 | 10 | 20 | {row['cfid']:.3f} |" in text
    assert f"| {row['accuracy']:.3f} |" in text
    assert bench.measured(tiny_checkpoint, {"method": "dpm-solver++", "steps": 5, "guidance": 1.0, "clip_x0": True},
                          20, tmp_path) is None  # not measured
    assert bench.measured(tiny_checkpoint, {"method": "dpm-solver++", "steps": 10, "guidance": 1.0, "clip_x0": True},
                          2000, tmp_path) is None  # not at that N

    def no_new_measurements(*args, **kwargs):
        raise AssertionError("a cached row was measured again")

    monkeypatch.setattr(bench, "measure_sampler", no_new_measurements)
    monkeypatch.setattr(bench, "measure_elbo", no_new_measurements)
    assert bench.main(argv).read_text() == text


def test_quality_benchmark_fewer_samples_for_full_t_ddpm(tiny_checkpoint, tmp_path):
    """--ddpm-n: the full-T DDPM rows, DPM-Solver++-10 beside them and the floor, all at the smaller N."""
    bench = load_bench()
    text = bench.main(["--quick", "--ddpm-n", "10", "--checkpoints", str(tiny_checkpoint),
                       "--out-dir", str(tmp_path)]).read_text()
    assert "Real-vs-real floor (train vs test, N = 10)" in text and "(train vs test, N = 20)" in text
    assert "| ddpm-50-beta_tilde | 50 | 10 |" in text and "| dpm-solver++-10@N=10 | 10 | 10 |" in text
    assert "| dpm-solver++-10 | 10 | 20 |" in text and "| ddim-10-eta0 | 10 | 20 |" in text
    assert "| ddim-10-eta0@N=10 | 10 | 10 |" in text  # the reference sampler beside DDPM at DDPM's N
    cached = json.loads((tmp_path / "quality.json").read_text())
    assert sum("|n=10|" in key for key in cached) == 3 + 1  # DDPM, DPM-Solver++-10, DDIM-10 and the floor


def test_quality_benchmark_only_adds_up(tiny_checkpoint, tmp_path, monkeypatch):
    """--only measures just the named configs; rows measured by an earlier run stay in the report."""
    bench = load_bench()
    argv = ["--quick", "--checkpoints", str(tiny_checkpoint), "--out-dir", str(tmp_path), "--only"]
    first = bench.main([*argv, "dpm-solver++-10"]).read_text()
    assert "| dpm-solver++-10 | 10 |" in first and "| ddim-10-eta0 |" not in first
    measured = []
    real = bench.measure_sampler
    monkeypatch.setattr(bench, "measure_sampler", lambda model, c, options, *a: measured.append(options) or real(
        model, c, options, *a))
    second = bench.main([*argv, "ddim-10-eta0"]).read_text()
    assert [o["method"] for o in measured] == ["ddim"]  # dpm-solver++-10 came from the cache
    assert "| dpm-solver++-10 | 10 |" in second and "| ddim-10-eta0 | 10 |" in second


def test_quality_report_says_how_to_reproduce_rows_of_several_runs(tiny_checkpoint, tmp_path):
    """The report's command for each checkpoint, run from scratch, measures the same rows the runs that added up
    measured (same cFID and accuracy; only the times differ)."""
    bench = load_bench()
    argv = ["--quick", "--ddpm-n", "10", "--checkpoints", str(tiny_checkpoint), "--out-dir", str(tmp_path / "a")]
    bench.main([*argv, "--only", "dpm-solver++-10"])
    text = bench.main([*argv, "--only", "ddim-10-eta0-g3"]).read_text()
    commands = [line for line in text.split("## Reproducing every row")[1].splitlines()
                if line.startswith("python -m bench.quality")]
    assert len(commands) == 1 and commands[0].endswith("--only ddim-10-eta0-g3,dpm-solver++-10")
    assert "--n 20 --ddpm-n 10" in commands[0]
    again = bench.main([*shlex.split(commands[0])[3:], "--out-dir", str(tmp_path / "b")]).read_text()

    def rows(report):  # the table rows without their last column (seconds)
        return [line.rsplit("|", 2)[0] for line in report.split("## Targets")[1].splitlines() if line.startswith("| ")]

    assert rows(again) == rows(text) and len(rows(text)) > 6


def test_quality_targets_are_issue_15s():
    bench = load_bench()
    row = lambda cfid, acc: {"cfid": cfid, "accuracy": acc}  # noqa: E731
    report = {"name": "m", "rows": {"ddim-50-eta1": row(1.4, 0.915), "dpm-solver++-10": row(2.2, 0.95)}}
    rows = bench.target_rows([report], {500: 1.0}, 0.926, 500)
    assert rows == [["ddim-50-eta1: cFID / floor", "m", "1.40", "<= 1.5", "yes"],
                    ["ddim-50-eta1: class accuracy - real test images' (points)", "m", "-1.1", "within +-1.5", "yes"],
                    ["dpm-solver++-10: cFID / floor", "m", "2.20", "<= 2.0", "no"],
                    ["dpm-solver++-10: class accuracy - real test images' (points)", "m", "+2.4", "within +-3.0", "yes"]]
    assert bench.target_rows([{"name": "m", "rows": {}}], {500: 1.0}, 0.926, 500)[0][2:] == ["n/a", "<= 1.5",
                                                                                          "not measured"]


def test_quality_classifier_guidance_rows_are_named_keyed_and_reproduced():
    """--classifier-scales adds the reference sampler at w = 1 with classifier guidance s (s = 0: the reference row
    itself), labelled -cgS; the flags that reproduce a report carry the scales."""
    bench = load_bench()
    args = bench.parse_args(["--quick", "--classifier-scales", "0,3"])
    _, sweep = bench.sampler_configs(1000, quick=True)
    guided = bench.guided_configs(sweep, args.classifier_scales)
    assert [bench.label(o) for o in guided] == ["ddim-10-eta0", "ddim-10-eta0-cg3"]
    assert guided[0] == sweep[0] | {"guidance": 1.0} and guided[1] == guided[0] | {"classifier_scale": 3.0}
    assert bench.settings_flags(args)[-2:] == ["--classifier-scales", "0,3"]
    for bad in ("-1", "three"):
        with pytest.raises(SystemExit):
            bench.parse_args(["--classifier-scales", bad])


def test_quality_benchmark_elbo_n_0_measures_no_elbo(tiny_checkpoint, tmp_path):
    bench = load_bench()
    md = bench.main(["--quick", "--elbo-n", "0", "--only", "dpm-solver++-10", "--checkpoints", str(tiny_checkpoint),
                     "--out-dir", str(tmp_path)])
    assert "Not measured in this run (`--elbo-n 0`)." in md.read_text() and "bits/dim" not in md.read_text()
    assert not list(tmp_path.glob("elbo_*.csv"))
    assert not [key for key in json.loads((tmp_path / "quality.json").read_text()) if "|elbo|" in key]


def test_quality_bf16_rows_are_the_same_samplers_with_the_network_in_bf16(tiny_checkpoint, tmp_path, monkeypatch):
    """--precisions fp32,bf16 adds each guidance-1 sampler row again with the network under bf16 autocast: its own
    label and cache key (fp32 keys unchanged), read back by `measured`, reproduced by the report's command."""
    bench = load_bench()
    seen, precisions = [], set()
    real = bench.measure_sampler
    monkeypatch.setattr(bench, "measure_sampler", lambda model, c, options, *a: seen.append(options) or real(
        model, c, options, *a))
    forward = DiffusionModel.forward
    monkeypatch.setattr(DiffusionModel, "forward", lambda self, *a: precisions.add((len(seen), self.precision))
                        or forward(self, *a))
    text = bench.main(["--quick", "--elbo-n", "0", "--precisions", "fp32,bf16", "--only",
                       "dpm-solver++-10,dpm-solver++-10-bf16", "--checkpoints", str(tiny_checkpoint),
                       "--out-dir", str(tmp_path)]).read_text()
    dpm = {"method": "dpm-solver++", "steps": 10, "guidance": 1.0, "clip_x0": True}
    assert seen == [dpm, dpm | {"precision": "bf16"}] and precisions == {(1, "fp32"), (2, "bf16")}
    assert "| dpm-solver++-10 | 10 | 20 |" in text and "| dpm-solver++-10-bf16 | 10 | 20 |" in text
    exact, fast = (bench.measured(tiny_checkpoint, o, 20, tmp_path) for o in seen)
    assert exact is not None and fast is not None
    assert abs(fast["cfid"] - exact["cfid"]) < 0.1 * exact["cfid"]  # rounding moves the samples a little
    assert len(json.loads((tmp_path / "quality.json").read_text())) == 3  # the two rows and the floor
    command = [line for line in text.splitlines() if line.startswith("python -m bench.quality")][0]
    assert "--precisions fp32,bf16" in command and command.endswith("--only dpm-solver++-10,dpm-solver++-10-bf16")
    for bad in ("bf16", "fp32,fp16"):  # fp32 rows are the targets' and the reference
        with pytest.raises(SystemExit):
            bench.parse_args(["--precisions", bad])


def test_quality_linspace_rows_run_dpm_solver_with_its_last_call_at_t_1(tiny_checkpoint, tmp_path, monkeypatch):
    """The full report adds DPM-Solver++ with the linspace spacing (last model call at t = 1, not T / N), labelled
    -linspace under its own cache key; the sampler is called at exactly timesteps(T, N, "linspace")."""
    bench = load_bench()
    samplers, _ = bench.sampler_configs(1000, quick=False)
    linspace = [bench.label(o) for o in samplers if o.get("spacing") == "linspace"]
    assert linspace == ["dpm-solver++-5-linspace", "dpm-solver++-10-linspace", "dpm-solver++-20-linspace"]
    called, ts = [], {}
    real = bench.generate_samples
    monkeypatch.setattr(bench, "generate_samples", lambda model, n, options, *a: called.append(options) or real(
        model, n, options, *a))
    forward = DiffusionModel.forward
    monkeypatch.setattr(DiffusionModel, "forward", lambda self, x, t, *a: ts.setdefault(len(called), set()).update(
        t.unique().tolist()) or forward(self, x, t, *a))
    text = bench.main(["--n", "20", "--elbo-n", "0", "--only", "dpm-solver++-10,dpm-solver++-10-linspace",
                       "--checkpoints", str(tiny_checkpoint), "--out-dir", str(tmp_path)]).read_text()
    assert [o.get("spacing", "trailing") for o in called] == ["trailing", "linspace"]
    assert sorted(ts[1], reverse=True) == timesteps(50, 10, "trailing") and min(ts[1]) == 5  # T = 50
    assert sorted(ts[2], reverse=True) == timesteps(50, 10, "linspace") and min(ts[2]) == 1
    assert "| dpm-solver++-10 | 10 | 20 |" in text and "| dpm-solver++-10-linspace | 10 | 20 |" in text
    assert len(json.loads((tmp_path / "quality.json").read_text())) == 3  # the two rows and the floor
