"""``genrl export``: ONNX decoder equal to torch within 1e-4 rad, dynamic batch, metadata, and
the onnxruntime-only loader refusing ONNX files of other models."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from genrl_ros import cli
from genrl_ros.export_cmd import export_decoder
from genrl_ros.models import BetaVAE, InfoGAN, save_checkpoint
from genrl_ros.models.checkpoint import model_sha256
from genrl_ros.models.onnx_decoder import OnnxDecoder, OnnxDecoderError

JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
T = 15


def make_model(cls, k, seed=0, **hp):
    torch.manual_seed(seed)
    model = cls(k, T, JOINTS, 0.04, "hockey", **hp)
    rng = np.random.default_rng(seed)
    model.set_normalization(1.0 + 0.3 * rng.normal(size=(50, T, 7)))
    model.train()
    for _ in range(3):  # non-trivial BatchNorm running statistics
        model.decode(torch.randn(32, k) * 2.0)
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A VAE exported through the API; the InfoGAN is exported by the CLI test."""
    root = tmp_path_factory.mktemp("export")
    out = {}
    for name, model in (("vae", make_model(BetaVAE, 3, beta=0.005)),
                        ("gan", make_model(InfoGAN, 2, **{"lambda": 1.5}))):
        ckpt = save_checkpoint(root / f"{name}.pt", model)
        summary = export_decoder(ckpt, root / f"{name}.onnx") if name == "vae" else None
        out[name] = (model, ckpt, root / f"{name}.onnx", summary)
    return out


def check_equal(model, path):
    decoder = OnnxDecoder(path)
    generator = torch.Generator().manual_seed(3)
    for batch in (1, 2, 5, 100):
        alpha = model.sample_prior(batch, generator)
        with torch.no_grad():
            expected = model.decode(alpha).numpy()
        got = decoder.decode(alpha.numpy())
        assert got.shape == (batch, T, 7) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    return decoder


def test_onnx_equals_torch_with_dynamic_batch(exported):
    model, _, path, summary = exported["vae"]
    assert summary["max_abs_error_rad"] <= 1e-4
    decoder = check_equal(model, path)
    single = decoder.decode(np.zeros(model.latent_dim, np.float32))
    assert single.shape == (T, 7)
    # the outputs are radians: the mean trajectory is ~1 rad, not ~0 (normalised units)
    assert abs(float(decoder.sample(200, np.random.default_rng(0)).mean()) - 1.0) < 0.3


def test_onnx_metadata(exported):
    model, ckpt, path, summary = exported["vae"]
    proto = onnx.load(path)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["genrl_ros.format"] == "genrl_ros.decoder_onnx"
    assert meta["task"] == "hockey" and int(meta["horizon"]) == T
    assert json.loads(meta["joint_names"]) == list(JOINTS)
    assert int(meta["latent_dim"]) == 3 and meta["prior"] == "normal" and meta["kind"] == "vae"
    assert meta["model_sha256"] == model_sha256(model) == summary["model_sha256"]
    assert json.loads(meta["hparams"])["beta"] == 0.005
    assert proto.opset_import[0].version == summary["opset"] == 18
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[1].dim_value == 3  # dynamic batch, fixed latent size
    decoder = OnnxDecoder(path, expect_task="hockey", expect_latent_dim=3, expect_horizon=T,
                          expect_joint_names=JOINTS)
    assert (decoder.latent_dim, decoder.horizon, decoder.prior, decoder.control_dt_s) == (3, T, "normal", 0.04)


def test_loader_refuses_other_models(exported, tmp_path):
    path = exported["vae"][2]
    with pytest.raises(OnnxDecoderError, match=r"is another model: task 'hockey', expected 'basketball'; latent_dim 3, expected 6; horizon 15, expected 78"):
        OnnxDecoder(path, expect_task="basketball", expect_latent_dim=6, expect_horizon=78)
    with pytest.raises(OnnxDecoderError, match="joints"):
        OnnxDecoder(path, expect_joint_names=JOINTS[::-1])

    # an ONNX model without genrl_ros metadata (some other network)
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph(
        [node], "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    other = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8), other)
    with pytest.raises(OnnxDecoderError, match="is not a genrl_ros decoder: metadata genrl_ros.format is None"):
        OnnxDecoder(other)

    # our metadata on a graph of another shape
    proto = onnx.load(path)
    for prop in proto.metadata_props:
        if prop.key == "latent_dim":
            prop.value = "5"
    tampered = tmp_path / "tampered.onnx"
    onnx.save(proto, tampered)
    with pytest.raises(OnnxDecoderError, match=r"input 'alpha' has shape \['batch', 3\], expected \[batch, 5\]"):
        OnnxDecoder(tampered)
    proto = onnx.load(path)
    for prop in proto.metadata_props:
        if prop.key == "horizon":
            prop.value = "69"
    onnx.save(proto, tampered)
    with pytest.raises(OnnxDecoderError, match=r"output 'trajectory' has shape .* expected \[batch, 69, 7\]"):
        OnnxDecoder(tampered)
    proto = onnx.load(path)
    kept = [p for p in proto.metadata_props if p.key != "model_sha256"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.save(proto, tampered)
    with pytest.raises(OnnxDecoderError, match=r"metadata lacks \['model_sha256'\]"):
        OnnxDecoder(tampered)

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not an onnx file" * 10)
    with pytest.raises(OnnxDecoderError, match="is not a loadable ONNX model"):
        OnnxDecoder(garbage)
    with pytest.raises(FileNotFoundError):
        OnnxDecoder(tmp_path / "missing.onnx")
    decoder = OnnxDecoder(path)
    with pytest.raises(ValueError, match=r"alpha has shape \(2, 2\), expected \(n, 3\)"):
        decoder.decode(np.zeros((2, 2)))


def test_loader_imports_no_torch(exported):
    path = exported["vae"][2]
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from genrl_ros.models.onnx_decoder import OnnxDecoder\n"
        f"d = OnnxDecoder({str(path)!r}, expect_latent_dim=3)\n"
        "print(d.decode(np.zeros((4, 3), np.float32)).shape, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"(4, {T}, 7) False"


def test_export_refuses_to_overwrite_and_bad_checkpoints(exported, tmp_path):
    _, ckpt, path, _ = exported["vae"]
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        export_decoder(ckpt, path)
    assert path.read_bytes() == before
    truncated = tmp_path / "bad.pt"
    truncated.write_bytes(ckpt.read_bytes()[:500])
    assert cli.main(["export", "--model", str(truncated), "--out", str(tmp_path / "x.onnx")]) == 2
    assert not (tmp_path / "x.onnx").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.pt"]  # no temporary file left


def test_cli_export_json(exported, tmp_path, capsys):
    model, ckpt, _, _ = exported["gan"]
    out = tmp_path / "decoder.onnx"
    assert cli.main(["export", "--model", str(ckpt), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["command"] == "export" and summary["out"] == str(out)
    assert summary["max_abs_error_rad"] <= 1e-4 and summary["checked_batches"] == [1, 7, 64]
    gan = check_equal(model, out)
    assert gan.kind == "infogan" and gan.prior == "uniform" and gan.latent_dim == 2
    u = gan.sample_prior(500, np.random.default_rng(0))
    assert u.min() >= -1 and u.max() <= 1
