"""Model bundles and architectures: build, forward, save -> load, validation errors."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from myoscan.errors import ModelError  # noqa: E402
from myoscan.segment import (  # noqa: E402
    ARCHITECTURES,
    build_network,
    bundle_sha256,
    find_bundles,
    load_bundle,
    parse_config,
    read_state_dict,
    resolve_bundle,
    save_bundle,
)

torch.set_num_threads(1)

#: Tiny parameters per architecture (the defaults from the papers are far too big for tests).
TINY = {
    "unet2d": ({"channels": [4, 8, 16], "strides": [2, 2]}, (32, 32)),
    "resunet2d": ({"channels": [4, 8, 16, 32], "strides": [2, 2, 2], "num_res_units": 1}, (32, 32)),
    "unet3d": ({"channels": [4, 8], "strides": [2]}, (16, 16, 16)),
    "unetr": ({"img_size": [32, 32, 16], "feature_size": 4, "hidden_size": 32, "mlp_dim": 64,
               "num_heads": 2}, (32, 32, 16)),
    "vnet": ({}, (16, 16, 16)),
}


def tiny_config(arch: str = "unet2d", contrasts=("water",), n_labels: int = 2, **extra) -> dict:
    params, roi = TINY[arch]
    names = ["soleus_left", "soleus_right", "gastrocnemius_left", "gastrocnemius_right"][:n_labels]
    config = {
        "name": f"tiny-{arch}",
        "architecture": {"name": arch, "params": dict(params)},
        "inputs": {"contrasts": list(contrasts), "modality": "mri"},
        "preprocessing": {"intensity": {"mode": "zscore"}},
        "inference": {"roi_size": list(roi), "overlap": 0.25},
        "labels": {"scheme": "leg", "ids": {str(i + 1): n for i, n in enumerate(names)}},
    }
    config.update(extra)
    return config


def test_every_architecture_is_covered_by_the_tests():
    assert set(TINY) == set(ARCHITECTURES)


@pytest.mark.parametrize("arch", sorted(TINY), ids=str)
def test_architecture_builds_and_runs_forward(arch):
    config = tiny_config(arch, contrasts=("inphase", "outphase"), n_labels=3)
    torch.manual_seed(0)
    net = build_network(config).eval()
    roi = TINY[arch][1]
    with torch.no_grad():
        out = net(torch.randn(1, 2, *roi))
    assert out.shape == (1, 4, *roi)
    assert torch.isfinite(out).all()


def test_seed000_unet_has_the_paper_widths():
    net = build_network({"name": "unet2d"}, in_channels=1, out_channels=11)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    widths = {m.out_channels for m in convs}
    assert {64, 128, 256, 512, 1024} <= widths
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules())
    assert any(isinstance(m, torch.nn.LeakyReLU) for m in net.modules())


def test_seed003_resunet_uses_batch_norm_and_prelu():
    net = build_network({"name": "resunet2d"}, in_channels=1, out_channels=13)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert any(isinstance(m, torch.nn.PReLU) for m in net.modules())
    with pytest.raises(ModelError, match="1-4"):
        build_network({"name": "resunet2d", "params": {"num_res_units": 5}}, in_channels=1, out_channels=2)


def test_save_load_gives_identical_predictions(tmp_path):
    torch.manual_seed(1)
    net = build_network(tiny_config()).eval()
    folder = save_bundle(tmp_path / "m", network=net, config=tiny_config(), model_card="# tiny\n")
    bundle = load_bundle(folder)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), bundle.network(x))
    assert bundle.labels == {1: "soleus_left", 2: "soleus_right"}
    assert bundle.sha256 == bundle_sha256(folder)
    stored = json.loads((folder / "config.json").read_text())
    assert stored["architecture"]["params"]["in_channels"] == 1
    assert stored["architecture"]["params"]["out_channels"] == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_hash_ignores_formatting_but_not_values(tmp_path):
    folder = save_bundle(tmp_path / "m", network=build_network(tiny_config()), config=tiny_config(),
                         model_card="x")
    before = bundle_sha256(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config, indent=7))
    assert bundle_sha256(folder) == before
    config["inference"]["overlap"] = 0.5
    (folder / "config.json").write_text(json.dumps(config))
    assert bundle_sha256(folder) != before


def test_save_refuses_weights_of_another_architecture(tmp_path):
    other = build_network(tiny_config(n_labels=3))
    with pytest.raises(ModelError, match="do not match"):
        save_bundle(tmp_path / "m", network=other, config=tiny_config(n_labels=2), model_card="x")
    assert not (tmp_path / "m").exists()


@pytest.fixture()
def bundle_dir(tmp_path):
    return save_bundle(tmp_path / "m", network=build_network(tiny_config()), config=tiny_config(),
                       model_card="x")


@pytest.mark.parametrize("missing", ["config.json", "weights.safetensors", "MODEL_CARD.md"])
def test_missing_file_is_named(bundle_dir, missing):
    (bundle_dir / missing).unlink()
    with pytest.raises(ModelError, match=missing.replace(".", r"\.")):
        load_bundle(bundle_dir)


def test_unknown_architecture(bundle_dir):
    config = json.loads((bundle_dir / "config.json").read_text())
    config["architecture"]["name"] = "segformer"
    (bundle_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="unknown architecture 'segformer'") as info:
        load_bundle(bundle_dir)
    assert str(info.value).startswith(f"{bundle_dir / 'config.json'}: ")  # the file to fix


def test_invalid_config_names_the_bundle_file(bundle_dir):
    config = json.loads((bundle_dir / "config.json").read_text())
    config["inputs"]["contrasts"] = [*config["inputs"]["contrasts"], "outphase"]
    (bundle_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError) as info:
        load_bundle(bundle_dir)
    assert str(info.value).startswith(f"{bundle_dir / 'config.json'}: architecture.params.in_channels")


def test_weights_not_matching_architecture(bundle_dir):
    config = json.loads((bundle_dir / "config.json").read_text())
    config["architecture"]["params"]["channels"] = [8, 16, 32]
    (bundle_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="weights do not match.*other shapes"):
        load_bundle(bundle_dir)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"inference": {"roi_size": [30, 32]}}, "multiples of 4"),
        ({"inference": {"overlap": 1.5}}, "overlap"),
        ({"preprocessing": {"intensity": {"mode": "window"}}}, "window"),
        ({"preprocessing": {"orientation": "RAX"}}, "orientation"),
        ({"format_version": 2}, "format_version"),
        ({"labels": {"ids": {}}}, "labels.ids"),
    ],
    ids=["roi-multiple", "overlap", "window-missing", "orientation", "version", "no-labels"],
)
def test_invalid_configs(change, match):
    with pytest.raises(ModelError, match=match):
        parse_config({**tiny_config(), **change})


def test_in_channels_contradicting_contrasts():
    config = tiny_config()
    config["architecture"]["params"]["in_channels"] = 2
    with pytest.raises(ModelError, match="in_channels is 2"):
        parse_config(config)


def test_pth_import_only_plain_tensors(tmp_path):
    net = build_network(tiny_config())
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "w.pth")
    state = read_state_dict(tmp_path / "w.pth")
    assert state.keys() == net.state_dict().keys()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"state_dict": {}, "x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(ModelError, match="refused"):
        read_state_dict(tmp_path / "evil.pth")


def test_empty_or_truncated_checkpoint_is_a_model_error(tmp_path):
    # an empty .pth raised EOFError with no message; reading its first line was an IndexError
    from myoscan.segment.bundle import load_torch_checkpoint

    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(ModelError, match=r"empty.pth: cannot read checkpoint \(EOFError\)"):
        load_torch_checkpoint(tmp_path / "empty.pth")
    torch.save({"w": torch.zeros(100)}, tmp_path / "full.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "full.pth").read_bytes()[:200])
    with pytest.raises(ModelError, match="cut.pth: cannot read checkpoint"):
        load_torch_checkpoint(tmp_path / "cut.pth")


def test_models_list_flags_a_bundle_without_weights(bundle_dir, tmp_path, monkeypatch):
    # it was listed as a working unet2d model; loading it then failed
    monkeypatch.setenv("MYOSCAN_MODELS", str(tmp_path))
    (bundle_dir / "weights.safetensors").unlink()
    summary = next(s for s in find_bundles() if s.path == bundle_dir)
    assert summary.error is not None and summary.error.startswith("model folder is missing weights.safetensors")


def test_find_and_resolve_bundles(bundle_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MYOSCAN_MODELS", str(tmp_path))
    names = {s.name: s for s in find_bundles()}
    assert names["tiny-unet2d"].path == bundle_dir
    assert names["tiny-unet2d"].source == "MYOSCAN_MODELS"
    assert resolve_bundle("tiny-unet2d") == bundle_dir
    with pytest.raises(ModelError, match="no such model"):
        resolve_bundle("nope")
