"""SavedModel export: both signatures served by bare TensorFlow + tensorflow-text, atomic writes, the CLI."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

import convbert_tf
from convbert_tf import ConvBertConfig, ConvBertEncoder, export
from convbert_tf.checkpoints import original_variable_map
from convbert_tf.data.tokenization import BertTokenizer, VocabError
from repo_paths import ROOT
from test_text_inputs import ALLOWED_TF_TEXT_OPS, reference_pack
ATOL = 1e-5
MAX_SEQ_LENGTH = 16
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "a", "an", "and", "is", "it", "of", "to", "in", "on", "that", "quick", "brown", "fox", "jump",
         "over", "lazy", "dog", "cat", "sat", "mat", "hello", "world", "good", "bad", "day", "night", "new",
         "york", "city", "big", "small", "red", "blue", "green", "sun", "moon", "star", "tree", "house", "cafe",
         "naive", "un", "run", "walk", "talk", ",", ".", "!", "?", "'", "##s", "##ed", "##ing", "##er", "##ly",
         "##believ", "##able", "##x", "x"]
VOCAB = SPECIALS + WORDS
CONFIG = ConvBertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, embedding_size=16, max_position_embeddings=64, conv_kernel_size=3)
TEXTS = ["The quick brown fox jumped over the lazy dog.", "", "Hello, World!", "Café naïve unbelievable zzz",
         " ".join(["the cat sat on the mat"] * 6), "   ", "It's a new day in New York City"]
BATCH = {
    "input_ids": np.array([[2, 7, 9, 11, 3, 0, 0, 0], [2, 25, 26, 3, 12, 13, 40, 3]], np.int32),
    "input_mask": np.array([[1, 1, 1, 1, 1, 0, 0, 0], [1] * 8], np.int32),
    "segment_ids": np.array([[0] * 8, [0, 0, 0, 0, 1, 1, 1, 1]], np.int32),
}

# Run in a fresh interpreter that imports only tensorflow and tensorflow_text: what a serving
# client has. Before tensorflow_text is imported it lists the graph's ops that bare TF lacks.
SERVE_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

export_dir, inputs_path, outputs_path = sys.argv[1:]
proto = saved_model_pb2.SavedModel()
with open(export_dir + "/saved_model.pb", "rb") as f:
    proto.ParseFromString(f.read())
graph = proto.meta_graphs[0].graph_def
ops = {n.op for n in graph.node} | {n.op for fn in graph.library.function for n in fn.node_def}
not_in_bare_tf = sorted(op for op in ops if op_def_registry.get(op) is None)
xla_must_compile = sorted(fn.signature.name for fn in graph.library.function
                          if fn.attr["_XlaMustCompile"].b)

import tensorflow_text  # registers the tokenizer's ops

loaded = tf.saved_model.load(export_dir)
inputs = dict(np.load(inputs_path))
texts = json.loads(str(inputs.pop("texts_json")))
results = {}
for key, value in loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()}).items():
    results["ids/" + key] = value.numpy()
for key, value in loaded.signatures["serve_text"](text=tf.constant(texts)).items():
    results["text/" + key] = value.numpy()
np.savez(outputs_path, **results)

def specs(structure):
    return {k: [v.dtype.name, v.shape.as_list()] for k, v in structure.items()}

print(json.dumps({
    "signatures": {name: {"inputs": specs(fn.structured_input_signature[1]),
                          "outputs": specs(fn.structured_outputs)}
                   for name, fn in loaded.signatures.items()},
    "not_in_bare_tf": not_in_bare_tf,
    "xla_must_compile": xla_must_compile,
    "asset_path": loaded.vocab_file.asset_path.numpy().decode(),
    "imported": sorted(m for m in ("convbert_tf", "tests") if m in sys.modules),
}))
"""


def subprocess_env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)


def encoder_outputs(encoder, inputs):
    outputs = encoder({k: tf.constant(v) for k, v in inputs.items()}, training=False)
    return {k: outputs[k].numpy() for k in ("sequence_output", "pooled_output")}


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def encoder():
    keras.utils.set_random_seed(3)
    return ConvBertEncoder(CONFIG)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, encoder, vocab_file):
    path = tmp_path_factory.mktemp("export") / "convbert"
    assert export.export_encoder(encoder, path, vocab_file=vocab_file, max_seq_length=MAX_SEQ_LENGTH) == str(path)
    return str(path)


@pytest.fixture(scope="module")
def served(tmp_path_factory, export_dir):
    """Both signatures run by a fresh tensorflow + tensorflow_text process: (outputs, report)."""
    work = tmp_path_factory.mktemp("served")
    np.savez(work / "inputs.npz", texts_json=json.dumps(TEXTS), **BATCH)
    run = subprocess.run([sys.executable, "-c", SERVE_SCRIPT, export_dir, str(work / "inputs.npz"),
                          str(work / "outputs.npz")], capture_output=True, text=True, env=subprocess_env(),
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    return dict(np.load(work / "outputs.npz")), report


# ----- what a serving client sees ----------------------------------------------------------------

def test_serving_default_matches_the_encoder(served, encoder):
    outputs, _ = served
    expected = encoder_outputs(encoder, BATCH)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(outputs["ids/" + key], expected[key], atol=ATOL, err_msg=key)


def test_serve_text_ids_are_tokenizer_plus_packing(served, vocab_file):
    outputs, _ = served
    tokenizer = BertTokenizer.from_vocab_file(vocab_file)
    rows = [reference_pack(ids, None, MAX_SEQ_LENGTH) for ids in tokenizer.tokenize(TEXTS)]
    np.testing.assert_array_equal(outputs["text/input_ids"], [row[0] for row in rows])
    np.testing.assert_array_equal(outputs["text/input_mask"], [row[1] for row in rows])
    assert max(row[3] for row in rows) > 0  # the long text was truncated
    assert (outputs["text/input_ids"] == tokenizer.special_token_ids.unk).any()  # "zzz"


def test_serve_text_outputs_match_the_encoder_on_its_ids(served, encoder):
    outputs, _ = served
    inputs = {"input_ids": outputs["text/input_ids"], "input_mask": outputs["text/input_mask"],
              "segment_ids": np.zeros_like(outputs["text/input_ids"])}
    expected = encoder_outputs(encoder, inputs)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(outputs["text/" + key], expected[key], atol=ATOL, err_msg=key)


def test_signature_names_keys_and_dtypes(served):
    _, report = served
    hidden = CONFIG.hidden_size
    assert report["signatures"] == {
        "serving_default": {
            "inputs": {key: ["int32", [None, None]] for key in ("input_ids", "input_mask", "segment_ids")},
            "outputs": {"sequence_output": ["float32", [None, None, hidden]],
                        "pooled_output": ["float32", [None, hidden]]},
        },
        "serve_text": {
            "inputs": {"text": ["string", [None]]},
            "outputs": {"sequence_output": ["float32", [None, MAX_SEQ_LENGTH, hidden]],
                        "pooled_output": ["float32", [None, hidden]],
                        "input_ids": ["int32", [None, MAX_SEQ_LENGTH]],
                        "input_mask": ["int32", [None, MAX_SEQ_LENGTH]]},
        },
    }
    assert report["imported"] == []  # the client needed nothing from this repository


def test_graph_needs_only_the_tokenizer_tf_text_ops(served):
    _, report = served
    assert set(report["not_in_bare_tf"]) == ALLOWED_TF_TEXT_OPS


def test_exported_graph_needs_no_xla(served, encoder):
    """TF Serving runs graphs without XLA by default: exports trace 'shifted_xla' as 'shifted'."""
    assert encoder.config.conv_implementation == "shifted_xla"
    spec = {k: tf.TensorSpec([None, None], tf.int32) for k in BATCH}
    graph = tf.function(lambda inputs: encoder(inputs, training=False)).get_concrete_function(spec).graph
    in_process = [fn.signature.name for fn in graph.as_graph_def().library.function if fn.attr["_XlaMustCompile"].b]
    assert in_process  # the model itself compiles its window sums with XLA ...
    _, report = served
    assert report["xla_must_compile"] == []  # ... its export does not


def test_vocab_file_is_copied_into_assets(served, export_dir, vocab_file):
    _, report = served
    asset = os.path.join(export_dir, "assets", "vocab.txt")
    assert os.path.realpath(report["asset_path"]) == os.path.realpath(asset)
    with open(asset, "rb") as copied, open(vocab_file, "rb") as original:
        assert copied.read() == original.read()


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_mixed_precision_and_cased_export(tmp_path, vocab_file):
    """A mixed_bfloat16 encoder still serves float32; do_lower_case=False reaches the graph's tokenizer."""
    keras.utils.set_random_seed(3)
    encoder = ConvBertEncoder(CONFIG, dtype="mixed_bfloat16")
    expected = encoder_outputs(encoder, BATCH)
    assert expected["sequence_output"].dtype != np.float32  # the cast in the export is needed
    path = export.export_encoder(encoder, tmp_path / "mixed", vocab_file=vocab_file, max_seq_length=8,
                                 do_lower_case=False)
    loaded = tf.saved_model.load(path)
    for name in ("serving_default", "serve_text"):
        for key, spec in loaded.signatures[name].structured_outputs.items():
            if key.endswith("_output"):
                assert spec.dtype == tf.float32, (name, key)
    served = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in BATCH.items()})
    np.testing.assert_allclose(served["sequence_output"], expected["sequence_output"].astype(np.float32),
                               atol=1e-6)
    served = loaded.signatures["serve_text"](text=tf.constant(["Hello hello"]))
    hello, unk = VOCAB.index("hello"), VOCAB.index("[UNK]")
    np.testing.assert_array_equal(served["input_ids"], [[2, unk, hello, 3, 0, 0, 0, 0]])


# ----- argument checks and atomic writes ---------------------------------------------------------

def test_export_argument_errors(tmp_path, encoder, vocab_file):
    with pytest.raises(VocabError, match="missing.txt does not exist"):
        export.export_encoder(encoder, tmp_path / "a", vocab_file=str(tmp_path / "missing.txt"))
    big_vocab = tmp_path / "big.txt"
    big_vocab.write_text("\n".join(VOCAB + ["extra"]) + "\n")
    with pytest.raises(export.ExportError, match=f"66 tokens but the model's vocab_size is {len(VOCAB)}"):
        export.export_encoder(encoder, tmp_path / "a", vocab_file=str(big_vocab))
    with pytest.raises(export.ExportError, match=r"max_position_embeddings = 64\], got 65"):
        export.export_encoder(encoder, tmp_path / "a", vocab_file=vocab_file, max_seq_length=65)
    assert os.listdir(tmp_path) == ["big.txt"]


@pytest.fixture
def fake_save(monkeypatch):
    """Replaces the (slow) SavedModel writing by one that writes `new_export` and can fail midway."""
    state = {"fail": False, "calls": 0}

    def save(module, path, signatures=None):
        state["calls"] += 1
        os.makedirs(path)
        with open(os.path.join(path, "new_export"), "w") as f:
            f.write("partial" if state["fail"] else "complete")
        if state["fail"]:
            raise RuntimeError("disk full")

    monkeypatch.setattr(export, "_build_serving_module", lambda *args: (None, {}))
    monkeypatch.setattr(export.tf.saved_model, "save", save)
    return state


def previous_export(tmp_path):
    path = tmp_path / "export"
    path.mkdir()
    (path / "previous_export").write_text("old")
    return path


def test_existing_export_dir_is_refused(tmp_path, encoder, vocab_file, fake_save):
    path = previous_export(tmp_path)
    with pytest.raises(FileExistsError, match=f"{path} exists; pass overwrite=True"):
        export.export_encoder(encoder, path, vocab_file=vocab_file)
    assert fake_save["calls"] == 0
    assert os.listdir(path) == ["previous_export"]


def test_overwrite_replaces_the_export_and_leaves_no_temporaries(tmp_path, encoder, vocab_file, fake_save):
    path = previous_export(tmp_path)
    export.export_encoder(encoder, path, vocab_file=vocab_file, max_seq_length=MAX_SEQ_LENGTH,
                              overwrite=True)
    assert os.listdir(path) == ["new_export"]
    assert sorted(os.listdir(tmp_path)) == ["export"]


def test_failed_export_keeps_the_previous_one(tmp_path, encoder, vocab_file, fake_save):
    path = previous_export(tmp_path)
    fake_save["fail"] = True
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_encoder(encoder, path, vocab_file=vocab_file, max_seq_length=MAX_SEQ_LENGTH,
                              overwrite=True)
    assert os.listdir(path) == ["previous_export"]
    assert sorted(os.listdir(tmp_path)) == ["export"]
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_encoder(encoder, tmp_path / "fresh", vocab_file=vocab_file, max_seq_length=MAX_SEQ_LENGTH)
    assert sorted(os.listdir(tmp_path)) == ["export"]  # no half-written export_dir


def test_failed_rename_restores_the_previous_export(tmp_path, encoder, vocab_file, fake_save, monkeypatch):
    path = previous_export(tmp_path)
    rename = os.rename

    def failing_rename(src, dst):
        if os.path.exists(os.path.join(src, "new_export")):  # renaming the new export into place
            raise OSError("rename failed")
        rename(src, dst)

    monkeypatch.setattr(export.os, "rename", failing_rename)
    with pytest.raises(OSError, match="rename failed"):
        export.export_encoder(encoder, path, vocab_file=vocab_file, max_seq_length=MAX_SEQ_LENGTH,
                              overwrite=True)
    assert os.listdir(path) == ["previous_export"]
    assert sorted(os.listdir(tmp_path)) == ["export"]


# ----- the command line --------------------------------------------------------------------------

@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_cli_exports_a_checkpoint_and_writes_the_original_layout(tmp_path, encoder, vocab_file):
    checkpoint_dir = tmp_path / "run"
    convbert_tf.save_encoder(encoder, str(checkpoint_dir), step=7)
    export_dir = tmp_path / "exported"
    original_prefix = tmp_path / "original" / "model.ckpt"
    run = subprocess.run(
        [sys.executable, "-m", "convbert_tf.export", f"--checkpoint={checkpoint_dir}",
         f"--vocab_file={vocab_file}", f"--export_dir={export_dir}", f"--max_seq_length={MAX_SEQ_LENGTH}",
         f"--original_layout_prefix={original_prefix}"],
        capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"wrote SavedModel {export_dir}" in run.stdout

    loaded = tf.saved_model.load(str(export_dir))
    served = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in BATCH.items()})
    expected = encoder_outputs(encoder, BATCH)
    np.testing.assert_allclose(served["sequence_output"], expected["sequence_output"], atol=ATOL)

    original = convbert_tf.load_original_checkpoint(str(original_prefix), CONFIG)
    theirs = original_variable_map(original)
    for name, variable in original_variable_map(encoder).items():
        np.testing.assert_array_equal(variable.numpy(), theirs[name].numpy(), err_msg=name)


def run_cli_in_process(argv):
    flag_values = flags.FlagValues()
    export.define_flags(flag_values)
    flag_values(["export"] + argv)
    export.run(flag_values)


@pytest.mark.parametrize("missing", ["checkpoint", "vocab_file"])
def test_cli_missing_input_exits_1_naming_the_path(tmp_path, vocab_file, capsys, missing):
    paths = {"checkpoint": str(tmp_path / "no_run"), "vocab_file": str(tmp_path / "no_vocab.txt")}
    if missing == "vocab_file":
        convbert_tf.save_encoder(ConvBertEncoder(CONFIG), str(tmp_path / "run"))
        paths["checkpoint"] = str(tmp_path / "run")
    else:
        paths["vocab_file"] = vocab_file
    with pytest.raises(SystemExit) as exit_info:
        run_cli_in_process([f"--checkpoint={paths['checkpoint']}", f"--vocab_file={paths['vocab_file']}",
                            f"--export_dir={tmp_path / 'exported'}"])
    assert exit_info.value.code == 1
    assert paths[missing] in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "exported")


@pytest.mark.slow
def test_cli_missing_checkpoint_subprocess_has_no_traceback(tmp_path, vocab_file):
    missing = tmp_path / "no_run"
    run = subprocess.run(
        [sys.executable, "-m", "convbert_tf.export", f"--checkpoint={missing}", f"--vocab_file={vocab_file}",
         f"--export_dir={tmp_path / 'exported'}"],
        capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=300)
    assert run.returncode == 1
    assert str(missing) in run.stderr and "Traceback" not in run.stderr
