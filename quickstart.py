"""The whole life of a tiny ConvBERT in one offline command, in a few minutes on 2 CPU cores.

  python quickstart.py                               # writes quickstart_output/
  python quickstart.py --output_dir=runs/qs --pretrain_steps=600
  python quickstart.py --quick                       # the reduced run CI uses (a minute or two)

Six steps, each the library call behind an ordinary command (printed before the step runs, so
it can be rerun on other data):

  1/6 corpus        Python's own documentation (pydoc_data.topics, shipped with CPython): one
                    text file per topic, one prose paragraph per line.
  2/6 data          a WordPiece vocab learned from the corpus, and the pretraining TFRecords
                    (build_pretraining_dataset.py).
  3/6 pretraining   a tiny ConvBERT with ELECTRA's replaced-token detection (run_pretraining.py).
  4/6 fine-tuning   a built-in sentence classification task in the GLUE SST-2 layout
                    (run_finetuning.py); the rule that labels it is in `opinion_label`.
  5/6 serving       the exported SavedModel answers for a few sentences in a fresh process that
                    imports only tensorflow and tensorflow_text (<output_dir>/predict.py).
  6/6 plot          the pretraining and fine-tuning loss curves as a PNG (plot_curves.py).

Everything goes into --output_dir, with summary.json (steps, losses, dev score, paths) at the
end. A folder that holds a finished run is refused unless --overwrite; an unfinished one (the
command was interrupted) is resumed under the same settings; a folder of other files is never
written into. The output folder's writability and free space are checked before TensorFlow
is even loaded.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from absl import app, flags, logging

try:
    import fcntl
except ImportError:  # not POSIX: no lock against a concurrent quickstart in the same folder
    fcntl = None

ROOT = os.path.dirname(os.path.abspath(__file__))

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "quickstart_output", "The folder that receives every output of the run.")
flags.DEFINE_integer("pretrain_steps", None, "Pretraining steps. Default 300 (--quick: 40).")
flags.DEFINE_float("finetune_epochs", None, "Fine-tuning epochs over the built-in task. Default 3.")
flags.DEFINE_bool("quick", False, "A smaller model, shorter sequences, fewer steps and a smaller task: the "
                  "reduced run that CI checks.")
flags.DEFINE_bool("overwrite", False, "Delete a quickstart run already in --output_dir (finished or not) and start "
                  "again. Files the quickstart did not write are never deleted.")
flags.DEFINE_bool("resume", True, "Continue an unfinished quickstart run found in --output_dir (the same settings "
                  "are required). --noresume refuses it instead.")

MODEL_NAME = "quickstart"
TASK = "sst"
STATE_FILE = "quickstart_state.json"
LOCK_FILE = ".quickstart.lock"
STEP_NAMES = ("corpus", "data", "pretraining", "finetuning", "serving", "plot")
# What the quickstart writes at the top of --output_dir; --overwrite removes only these.
OWN_ENTRIES = ("corpus", "data", "predict.py", "predictions.json", "curves.png", "summary.json", STATE_FILE)


class QuickstartError(Exception):
    """A problem the user can fix; the message says what and where."""


# ----- settings ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of one quickstart run. An unfinished run is resumed only under equal settings."""

    quick: bool
    """The reduced CI run."""
    pretrain_steps: int
    """Pretraining steps."""
    finetune_epochs: float
    """Fine-tuning epochs."""
    vocab_size: int
    """WordPiece vocab size asked of the learner (the small corpus gives somewhat fewer)."""
    max_seq_length: int
    """T of the pretraining examples."""
    hidden_size: int
    """D of the discriminator (the generator is a quarter as wide)."""
    num_hidden_layers: int
    """Encoder blocks."""
    num_attention_heads: int
    """Heads, half self-attention and half span convolution (head_ratio 2)."""
    embedding_size: int
    """E, projected up to D."""
    pretrain_batch_size: int
    """Pretraining batch."""
    pretrain_learning_rate: float
    """Peak learning rate (10% warmup, then linear decay to 0)."""
    iterations_per_loop: int
    """Steps between progress lines (and TensorBoard points)."""
    task_sizes: tuple
    """Built-in task examples: (train, dev, test)."""
    finetune_max_seq_length: int
    """T of the fine-tuning examples (the task's sentences are short)."""
    finetune_batch_size: int
    """Fine-tuning batch."""
    finetune_learning_rate: float
    """Fine-tuning peak learning rate."""
    required_free_mb: int
    """Free disk space asked for before starting."""
    seed: int = 0
    """Seed of the built-in task, and of the runs."""

    @property
    def intermediate_size(self) -> int:
        return 4 * self.hidden_size

    def model_overrides(self) -> dict:
        return {"hidden_size": self.hidden_size, "num_hidden_layers": self.num_hidden_layers,
                "num_attention_heads": self.num_attention_heads, "intermediate_size": self.intermediate_size,
                "max_position_embeddings": self.max_seq_length}


def make_settings(quick: bool, pretrain_steps: int | None, finetune_epochs: float | None) -> Settings:
    if quick:
        values = dict(pretrain_steps=40, finetune_epochs=3.0, vocab_size=2000, max_seq_length=64, hidden_size=64,
                      num_hidden_layers=1, num_attention_heads=4, embedding_size=32, pretrain_batch_size=16,
                      pretrain_learning_rate=2e-3, iterations_per_loop=5, task_sizes=(960, 160, 40),
                      finetune_max_seq_length=48, finetune_batch_size=32, finetune_learning_rate=2e-3,
                      required_free_mb=100)
    else:
        values = dict(pretrain_steps=300, finetune_epochs=3.0, vocab_size=4000, max_seq_length=128,
                      hidden_size=128, num_hidden_layers=2, num_attention_heads=4, embedding_size=64,
                      pretrain_batch_size=32, pretrain_learning_rate=1e-3, iterations_per_loop=10,
                      task_sizes=(2000, 400, 200), finetune_max_seq_length=48, finetune_batch_size=32,
                      finetune_learning_rate=1e-3, required_free_mb=200)
    if pretrain_steps is not None:
        if pretrain_steps < 1:
            raise QuickstartError(f"--pretrain_steps must be at least 1, got {pretrain_steps}")
        values["pretrain_steps"] = pretrain_steps
    if finetune_epochs is not None:
        if not finetune_epochs > 0:
            raise QuickstartError(f"--finetune_epochs must be positive, got {finetune_epochs}")
        values["finetune_epochs"] = float(finetune_epochs)
    return Settings(quick=quick, **values)


def settings_dict(settings: Settings) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(settings)))  # tuples as lists, as read back from JSON


# ----- paths and the equivalent commands -------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Paths:
    """The layout of --output_dir (absolute paths): `data` is a data_dir as the standalone commands use it."""

    root: str

    @property
    def corpus(self):
        return os.path.join(self.root, "corpus")

    @property
    def data(self):
        return os.path.join(self.root, "data")

    @property
    def vocab(self):
        return os.path.join(self.data, "vocab.txt")

    @property
    def records(self):
        return os.path.join(self.data, "pretrain_tfrecords")

    @property
    def model_dir(self):
        return os.path.join(self.data, "models", MODEL_NAME)

    @property
    def task_dir(self):
        return os.path.join(self.data, "finetuning_data", TASK)

    @property
    def trial_dir(self):
        return os.path.join(self.model_dir, "finetuning_models", f"{TASK}_model_1")

    @property
    def classifier(self):
        return os.path.join(self.trial_dir, "saved_model", TASK)

    @property
    def predict_script(self):
        return os.path.join(self.root, "predict.py")

    @property
    def predictions(self):
        return os.path.join(self.root, "predictions.json")

    @property
    def plot(self):
        return os.path.join(self.root, "curves.png")

    @property
    def summary(self):
        return os.path.join(self.root, "summary.json")

    @property
    def state(self):
        return os.path.join(self.root, STATE_FILE)


def _display(path: str) -> str:
    """A path for the user: relative to the current directory when it lies below it, else absolute."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def script(name: str) -> str:
    """A script of this repository as the user can type it from the current directory."""
    return _display(os.path.join(ROOT, name))


def command(parts: list, **flag_values) -> str:
    words = [shlex.quote(str(p)) for p in parts]
    for name, value in flag_values.items():
        text = json.dumps(value) if isinstance(value, dict) else str(value)
        words.append(f"--{name}={shlex.quote(text)}")
    return " ".join(words)


def pretraining_hparams(settings: Settings, vocab_size: int) -> dict:
    steps = settings.pretrain_steps
    return {"model_size": "small", "vocab_size": vocab_size, "embedding_size": settings.embedding_size,
            "model_hparam_overrides": settings.model_overrides(), "max_seq_length": settings.max_seq_length,
            "train_batch_size": settings.pretrain_batch_size, "learning_rate": settings.pretrain_learning_rate,
            "num_train_steps": steps, "num_warmup_steps": max(1, steps // 10),
            "iterations_per_loop": settings.iterations_per_loop,
            "save_checkpoints_steps": max(settings.iterations_per_loop, steps // 3), "seed": settings.seed}


def finetuning_hparams(settings: Settings, vocab_size: int) -> dict:
    return {"model_size": "small", "task_names": [TASK], "vocab_size": vocab_size,
            "embedding_size": settings.embedding_size, "model_hparam_overrides": settings.model_overrides(),
            "max_seq_length": settings.finetune_max_seq_length, "train_batch_size": settings.finetune_batch_size,
            "eval_batch_size": settings.finetune_batch_size, "predict_batch_size": settings.finetune_batch_size,
            "learning_rate": settings.finetune_learning_rate, "num_train_epochs": settings.finetune_epochs,
            "iterations_per_loop": settings.iterations_per_loop, "seed": settings.seed}


# ----- the output folder: refuse, resume or start; writable; enough space ---------------------
def _write_json(path: str, value) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def _read_state(paths: Paths) -> dict:
    try:
        with open(paths.state) as f:
            state = json.load(f)
    except (OSError, ValueError) as e:
        raise QuickstartError(f"cannot read {paths.state} ({e}); it marks {paths.root} as a quickstart run. "
                              "Pass --overwrite to start that folder again, or choose another --output_dir") from None
    if not isinstance(state, dict) or "settings" not in state:
        raise QuickstartError(f"{paths.state} is not a quickstart state file; choose another --output_dir")
    return state


def _check_writable(root: str) -> None:
    probe = os.path.join(root, f".write-probe-{os.getpid()}")
    try:
        with open(probe, "wb") as f:
            f.write(b"probe")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise QuickstartError(f"cannot write into the output folder {root} ({e.strerror}); choose a writable "
                              "--output_dir") from None
    finally:
        if os.path.exists(probe):
            os.remove(probe)


def _check_free_space(root: str, required_mb: int, existing: str | None = None) -> None:
    """`existing`: the folder to measure when `root` does not exist yet (its nearest existing parent)."""
    free_mb = shutil.disk_usage(existing or root).free / 2 ** 20
    if free_mb < required_mb:
        raise QuickstartError(f"only {free_mb:.0f} MB free on the disk of {root}; the quickstart needs about "
                              f"{required_mb} MB. Free some space or choose --output_dir on another disk")


def _lock(root: str):
    """Holds <output_dir>/.quickstart.lock for this process (released when it exits, even killed)."""
    handle = open(os.path.join(root, LOCK_FILE), "a+")
    if fcntl is None:
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise QuickstartError(f"{root} is in use by another quickstart ({holder}); wait for it to finish or "
                              "choose another --output_dir") from None
    return handle


def _claim(handle) -> None:
    """Writes this process's id into the held lock file (only once the run goes ahead)."""
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()


def _remove_own_entries(paths: Paths) -> None:
    for name in OWN_ENTRIES:  # the state file last: an interrupted removal stays a quickstart folder
        path = os.path.join(paths.root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


def prepare_output_dir(paths: Paths, settings: Settings, overwrite: bool, resume: bool, log=print):
    """Decides what to do with --output_dir before any long work; returns (state, lock handle).

    New or empty folder: a fresh run. A finished quickstart run: refused unless --overwrite. An
    unfinished one: resumed under equal settings (else refused), or restarted with --overwrite.
    Any other non-empty folder: refused, --overwrite or not. Then the folder must take a write
    and have `settings.required_free_mb` free.
    """
    root = paths.root
    if os.path.exists(root) and not os.path.isdir(root):
        raise QuickstartError(f"--output_dir {root} exists and is not a folder")
    if os.path.isdir(root):
        entries = [name for name in os.listdir(root) if name != LOCK_FILE]
        if entries and STATE_FILE not in entries:
            raise QuickstartError(
                f"--output_dir {root} already holds other files ({', '.join(sorted(entries)[:3])}"
                f"{', ...' if len(entries) > 3 else ''}) and no quickstart run; the quickstart never mixes its "
                "files with others (and --overwrite never deletes what it did not write): choose a new or "
                "empty --output_dir")
    if not os.path.exists(root):  # before making it, so that a refusal leaves nothing behind
        parent = os.path.dirname(root)
        while parent and not os.path.exists(parent):
            parent = os.path.dirname(parent)
        _check_free_space(root, settings.required_free_mb, parent)
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as e:
        raise QuickstartError(f"cannot create the output folder {root} ({e.strerror}); choose a writable "
                              "--output_dir") from None
    _check_writable(root)
    lock = _lock(root)
    try:
        state = _decide(paths, settings, overwrite, resume, log)
    except BaseException:
        lock.close()
        raise
    _claim(lock)
    return state, lock


def _decide(paths: Paths, settings: Settings, overwrite: bool, resume: bool, log) -> dict:
    """The state to run with (see `prepare_output_dir`); raises QuickstartError to refuse."""
    root = paths.root
    state = _read_state(paths) if os.path.exists(paths.state) else None
    wanted = settings_dict(settings)
    if state is not None:
        done = state.get("finished")
        if overwrite:
            log(f"--overwrite: removing the {'finished' if done else 'unfinished'} quickstart run in {root}")
            _remove_own_entries(paths)
            state = None
        elif done:
            raise QuickstartError(
                f"{root} already holds a finished quickstart run (finished {done}; see {paths.summary}). "
                "Nothing was changed. Pass --overwrite to delete it and run again, or choose another --output_dir")
        elif state["settings"] != wanted:
            flag_keys = ("quick", "pretrain_steps", "finetune_epochs")  # what the user chose, first
            differ = sorted((k for k in wanted if state["settings"].get(k) != wanted[k]),
                            key=lambda k: (k not in flag_keys, k))
            raise QuickstartError(
                f"{root} holds an unfinished quickstart run with other settings ("
                + ", ".join(f"{k} {state['settings'].get(k)!r} there vs {wanted[k]!r} now" for k in differ[:3])
                + (", ..." if len(differ) > 3 else "") + "); resuming it would mix two runs' files. Rerun with "
                "its flags to resume it, pass --overwrite to start again, or choose another --output_dir")
        elif not resume:
            raise QuickstartError(
                f"{root} holds an unfinished quickstart run (steps done: {', '.join(state['steps']) or 'none'}); "
                "--noresume refuses it. Drop --noresume to continue it, or pass --overwrite to start again")
        else:
            log(f"{root} holds an unfinished quickstart run (steps done: {', '.join(state['steps']) or 'none'}); "
                "resuming it")
    _check_free_space(root, settings.required_free_mb)
    if state is None:
        state = {"format": 1, "settings": wanted, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "finished": None,
                 "steps": {}}
        _write_json(paths.state, state)
    return state


# ----- step 1: the corpus ------------------------------------------------------------------
_UNDERLINE = re.compile(r"[*=\-~^]{3,}")


def is_prose(paragraph: str) -> bool:
    """Prose, not a grammar rule, an interactive session or a code block."""
    if "::=" in paragraph or ">>>" in paragraph or len(paragraph.split()) < 3:
        return False
    letters = sum(c.isalpha() or c.isspace() for c in paragraph)
    return letters >= 0.8 * len(paragraph)


def topic_paragraphs(text: str) -> list:
    """The prose paragraphs of one pydoc topic, each joined into one line; headings' underlines dropped."""
    paragraphs, lines = [], []
    for line in text.splitlines() + [""]:
        if line.strip():
            lines.append(line.strip())
            continue
        paragraph = " ".join(l for l in lines if not _UNDERLINE.fullmatch(l))
        if paragraph and is_prose(paragraph):
            paragraphs.append(paragraph)
        lines = []
    return paragraphs


def topic_title(text: str) -> str:
    """'The "if" statement' -> 'the if statement'; 'Mapping Types — "dict"' -> 'mapping types'."""
    title = text.strip().splitlines()[0].split(" — ")[0]
    title = re.sub(r"\([^)]*\)", "", title).replace('"', "")
    return " ".join(title.lower().split())


def write_corpus(corpus_dir: str) -> dict:
    """One file per pydoc topic, one prose paragraph per line; returns counts and the topic titles."""
    from pydoc_data.topics import topics

    tmp = f"{corpus_dir}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    paragraphs = words = 0
    for key in sorted(topics):
        lines = topic_paragraphs(topics[key])
        paragraphs += len(lines)
        words += sum(len(line.split()) for line in lines)
        with open(os.path.join(tmp, f"{key}.txt"), "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
    shutil.rmtree(corpus_dir, ignore_errors=True)
    os.replace(tmp, corpus_dir)
    titles = sorted({topic_title(text) for text in topics.values()})
    return {"dir": corpus_dir, "files": len(topics), "paragraphs": paragraphs, "words": words, "titles": titles}


# ----- step 4's data: the built-in classification task -------------------------------------
POSITIVE = ("elegant", "readable", "clear", "simple", "useful", "powerful", "consistent", "reliable",
            "convenient", "intuitive", "fast", "helpful")
NEGATIVE = ("confusing", "awkward", "fragile", "verbose", "obscure", "tedious", "clumsy", "cryptic", "slow",
            "painful", "inconsistent", "frustrating")
ADVERBS = ("really", "quite", "rather", "surprisingly", "always", "often", "very", "truly", "honestly",
           "somewhat")
OPENINGS = ("working with {subject} is", "the documentation of {subject} is", "in large programs {subject} can be",
            "for beginners {subject} seems", "learning {subject} was", "honestly , {subject} feels")
ENDINGS = ("", " for beginners", " in practice", " compared to other languages", " when reading old code")


def opinion_label(opinion: str) -> int:
    """The task's rule: 1 (positive) when the sentence's opinion word is one of POSITIVE, 0 for NEGATIVE.

    Everything else in a sentence (topic, opening, adverb, ending) is drawn independently of the
    label, so the model must find that one word (often several word pieces) among ten to twenty.
    """
    return int(opinion in POSITIVE)


def opinion_sentence(rng: random.Random, subjects) -> tuple:
    """'<opening with a topic title> <adverb> <opinion><ending>' and its label by `opinion_label`."""
    opinion = rng.choice(POSITIVE + NEGATIVE)
    opening = rng.choice(OPENINGS).format(subject=rng.choice(subjects))
    return f"{opening} {rng.choice(ADVERBS)} {opinion}{rng.choice(ENDINGS)}", opinion_label(opinion)


def write_opinion_task(task_dir: str, subjects, sizes, seed: int) -> dict:
    """train.tsv and dev.tsv (sentence, label) and test.tsv (index, sentence): GLUE's SST-2 layout."""
    rng = random.Random(f"quickstart-task:{seed}")
    os.makedirs(task_dir, exist_ok=True)
    counts = {}
    for split, size in zip(("train", "dev", "test"), sizes):
        rows = [opinion_sentence(rng, subjects) for _ in range(size)]
        if split == "test":
            text = "index\tsentence\n" + "".join(f"{i}\t{s}\n" for i, (s, _) in enumerate(rows))
        else:
            text = "sentence\tlabel\n" + "".join(f"{s}\t{label}\n" for s, label in rows)
        path = os.path.join(task_dir, f"{split}.tsv")
        with open(f"{path}.tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(f"{path}.tmp", path)
        counts[split] = {"examples": size, "positive": sum(label for _, label in rows)}
    return counts


# Served in step 5; the rule gives the expected labels. Subjects are topic titles of the corpus.
PROBE_SENTENCES = (
    ("working with the with statement is surprisingly elegant", 1),
    ("the documentation of coroutines is rather confusing", 0),
    ("learning the import statement was truly intuitive in practice", 1),
    ("for beginners lambdas seems quite cryptic", 0),
    ("in large programs the global statement can be very fragile", 0),
)

PREDICT_SCRIPT = '''\
"""Classifies sentences with the quickstart's fine-tuned ConvBERT; needs only tensorflow and tensorflow_text.

  python {script} "working with the with statement is surprisingly elegant" "lambdas are rather cryptic"

The SavedModel tokenizes raw text in its graph; its serving_default signature takes `sentence`
and returns `label` ("1" positive, "0" negative), `label_id` and `probabilities`.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModel uses)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL = os.path.join(HERE, {classifier!r})

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("sentences", nargs="+", help="sentences to classify")
parser.add_argument("--saved_model", default=DEFAULT_MODEL, help="the SavedModel folder")
parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
args = parser.parse_args()

model = tf.saved_model.load(args.saved_model)
outputs = model.signatures["serving_default"](sentence=tf.constant(args.sentences))
rows = [{{"sentence": s, "label": l.decode(), "probability": float(p[int(i)])}}
        for s, l, i, p in zip(args.sentences, outputs["label"].numpy(), outputs["label_id"].numpy(),
                              outputs["probabilities"].numpy())]
if args.json:
    print(json.dumps({{"predictions": rows, "pid": os.getpid(),
                      "imported_convbert_tf": "convbert_tf" in sys.modules}}))
else:
    for row in rows:
        name = {{"1": "positive", "0": "negative"}}.get(row["label"], row["label"])
        print(f"{{name:8s}} {{row['probability']:.3f}}  {{row['sentence']}}")
'''


# ----- progress ----------------------------------------------------------------------------
def _eta_text(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 60}m{seconds % 60:02d}s"


class ProgressView:
    """A file-like `out=` for the trainers that turns their "step N/M | ..." lines into a progress bar.

    On a terminal the bar is one line rewritten in place, kept as a permanent line every tenth of
    the run so that the falling loss stays on screen; elsewhere (a log file, CI) each progress line
    is printed as it comes. Other lines pass through, indented. `points` holds (step, {name: value})
    of every progress line seen.
    """

    LINE = re.compile(r"step (\d+)/(\d+) \| (.*)")
    FIELD = re.compile(r"([a-z]+) (-?[0-9.]+(?:e[-+]?[0-9]+)?)")
    WIDTH = 24

    def __init__(self, keys, stream=None):
        self.keys = keys  # the fields shown in the bar, e.g. ("gen", "disc")
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.points = []
        self._pending = ""
        self._bar_open = False
        self._next_kept = 0

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self._line(line)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        if self._pending:
            self._line(self._pending)
            self._pending = ""
        if self._bar_open:
            self.stream.write("\n")
            self._bar_open = False
        self.stream.flush()

    def _print(self, line: str) -> None:
        if self._bar_open:
            self.stream.write("\r\033[K")
            self._bar_open = False
        self.stream.write(f"    {line}\n")
        self.stream.flush()

    def _line(self, line: str) -> None:
        match = self.LINE.fullmatch(line.strip())
        if not match:
            if line.strip():
                self._print(line.strip())
            return
        step, total = int(match[1]), int(match[2])
        fields = {}
        for part in match[3].split(" | "):
            field = self.FIELD.fullmatch(part.strip())
            if field:
                fields[field[1]] = float(field[2])
        self.points.append((step, fields))
        if not self.tty:
            self._print(line.strip())
            return
        first = self.points[0][1]
        done = int(self.WIDTH * step / max(total, 1))
        losses = "  ".join(f"{k} {fields[k]:.3f} (from {first.get(k, fields[k]):.3f})" for k in self.keys if k in fields)
        eta = re.search(r"ETA ([0-9:]+)", match[3])
        text = (f"    [{'#' * done}{'.' * (self.WIDTH - done)}] {step}/{total}  {losses}"
                + (f"  ETA {eta[1]}" if eta and step < total else ""))
        keep = step >= total or step >= self._next_kept
        self.stream.write("\r" + text + "\033[K" + ("\n" if keep else ""))
        self._bar_open = not keep
        if keep:
            self._next_kept = step + max(1, total // 10)
        self.stream.flush()


class StepPrinter:
    """Numbered step headers, with the standalone command each step amounts to."""

    def __init__(self, total: int = len(STEP_NAMES)):
        self.total = total
        self._step_started = time.perf_counter()

    def header(self, number: int, title: str, commands=(), note: str | None = None) -> None:
        print(f"\n[{number}/{self.total}] {title}", flush=True)
        for line in commands:
            print(f"    $ {line}")
        if note:
            print(f"    {note}")
        self._step_started = time.perf_counter()

    def skipped(self, number: int, title: str) -> None:
        print(f"\n[{number}/{self.total}] {title}: done in an earlier run, skipped", flush=True)

    def done(self, text: str = "") -> None:
        took = time.perf_counter() - self._step_started
        print(f"    done in {_eta_text(took)}{': ' + text if text else ''}", flush=True)


# ----- the run -----------------------------------------------------------------------------
def _curve_ends(event_dir: str, tag: str) -> dict | None:
    from convbert_tf import plotting

    if not os.path.isdir(event_dir):
        return None
    points = plotting.read_scalars(event_dir).get(tag)
    if not points:
        return None
    steps = sorted(points)
    return {"first_step": steps[0], "first": points[steps[0]], "last_step": steps[-1], "last": points[steps[-1]]}


class Quickstart:
    """The six steps over one output folder; each step's result is kept in the state file."""

    def __init__(self, paths: Paths, settings: Settings, state: dict):
        self.paths, self.settings, self.state = paths, settings, state
        self.steps = StepPrinter()

    def save_state(self) -> None:
        _write_json(self.paths.state, self.state)

    def finish_step(self, name: str, result: dict) -> dict:
        self.state["steps"][name] = result
        self.save_state()
        return result

    def run(self) -> dict:
        paths, settings = self.paths, self.settings
        begun = time.perf_counter()
        corpus = self.step(1, "corpus", "Corpus", self.corpus)
        print("\nloading TensorFlow ...", flush=True)
        from convbert_tf.distribute import get_strategy, set_mixed_precision  # the run's one TensorFlow import

        self.strategy = get_strategy("auto")
        set_mixed_precision("auto", self.strategy)
        data = self.step(2, "data", "Vocab and pretraining TFRecords", self.data)
        pretraining = self.step(3, "pretraining", "Pretraining", lambda: self.pretraining(data["vocab_tokens"]))
        if pretraining.get("preempted"):
            return {"preempted": True}
        finetuning = self.step(4, "finetuning", "Fine-tuning",
                               lambda: self.finetuning(data["vocab_tokens"], corpus["titles"]))
        serving = self.step(5, "serving", "Fresh-process predictions", self.serving)
        plot = self.step(6, "plot", "Loss curves", self.plot)
        summary = {
            "output_dir": os.path.abspath(paths.root),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            "seconds_this_invocation": round(time.perf_counter() - begun, 1),
            "settings": settings_dict(settings),
            "python": sys.version.split()[0],
            "corpus": {k: v for k, v in corpus.items() if k != "titles"},
            "data": data,
            "pretraining": pretraining,
            "finetuning": finetuning,
            "serving": serving,
            "plot": plot,
        }
        _write_json(paths.summary, summary)
        self.state["finished"] = summary["finished"]
        self.save_state()
        return summary

    def step(self, number: int, name: str, title: str, run_step) -> dict:
        """A step's result: from the state file when an earlier invocation finished it, else run now."""
        if name in self.state["steps"]:
            self.steps.skipped(number, title)
            return self.state["steps"][name]
        return run_step()

    # -- 1/6
    def corpus(self) -> dict:
        self.steps.header(1, "Corpus: Python's documentation topics (pydoc_data.topics, shipped with Python)",
                          note="your own data: a folder of UTF-8 text files, one paragraph (or sentence) per "
                               "line, one document per file")
        result = write_corpus(self.paths.corpus)
        self.steps.done(f"{result['files']} files, {result['paragraphs']} paragraphs, {result['words']:,} words "
                        f"in {_display(self.paths.corpus)}/")
        return self.finish_step("corpus", result)

    # -- 2/6
    def data(self) -> dict:
        from convbert_tf.data import pretraining_dataset

        paths, settings = self.paths, self.settings
        self.steps.header(2, "WordPiece vocab + pretraining TFRecords", [command(
            ["python", script("build_pretraining_dataset.py")], corpus_dir=_display(paths.corpus),
            output_dir=_display(paths.records), vocab_file=_display(paths.vocab), vocab_size=settings.vocab_size,
            max_seq_length=settings.max_seq_length, num_output_files=1)])
        try:
            built = pretraining_dataset.build_pretraining_dataset(
                paths.corpus, paths.records, paths.vocab, vocab_size=settings.vocab_size,
                max_seq_length=settings.max_seq_length, num_output_files=1, seed=settings.seed,
                log=lambda message: print(f"    {message}", flush=True))
        except pretraining_dataset.DatasetBuildError as e:
            raise QuickstartError(str(e)) from None
        stats = built.stats
        result = {"vocab": paths.vocab, "vocab_tokens": built.vocab_size, "records": list(built.output_files),
                  "examples": stats.examples, "tokens": stats.tokens, "truncated_tokens": stats.truncated_tokens}
        self.steps.done(f"{built.vocab_size} tokens in {_display(paths.vocab)}; {stats.examples} examples of "
                        f"{settings.max_seq_length} tokens in {_display(paths.records)}/")
        return self.finish_step("data", result)

    # -- 3/6
    def pretraining(self, vocab_tokens: int) -> dict:
        import tensorflow as tf
        from convbert_tf.pretraining import run as trainer
        from convbert_tf.pretraining.hparams import resolve_hparams

        paths, settings = self.paths, self.settings
        hparams = pretraining_hparams(settings, vocab_tokens)
        self.steps.header(
            3, f"Pretraining a {settings.hidden_size}-wide, {settings.num_hidden_layers}-layer ConvBERT for "
               f"{settings.pretrain_steps} steps (ELECTRA: generator MLM loss and discriminator loss)",
            [command(["python", script("run_pretraining.py")], data_dir=_display(paths.data), model_name=MODEL_NAME,
                     hparams=hparams)],
            note="the losses fall as it learns; rerunning resumes from the latest checkpoint")
        hp = resolve_hparams(hparams, data_dir=paths.data, model_name=MODEL_NAME)
        view = ProgressView(("gen", "disc"))
        try:
            last = trainer.train(hp, self.strategy, out=view)
        finally:
            view.close()
        if last.get("preempted"):
            print("    stopped by SIGTERM after saving a checkpoint; rerun the same command to resume")
            return {"preempted": True}
        saved_model = os.path.join(hp.model_dir, "saved_model")
        if not os.path.exists(os.path.join(saved_model, "saved_model.pb")):
            self._export_pretrained(hp, view)  # a rerun after a crash during the end-of-run export
        events = os.path.join(hp.model_dir, "train")
        mlm, disc = _curve_ends(events, "mlm_loss"), _curve_ends(events, "disc_loss")
        result = {"model_dir": hp.model_dir, "steps": settings.pretrain_steps,
                  "checkpoint": tf.train.latest_checkpoint(hp.model_dir), "saved_model": saved_model,
                  "original_layout": os.path.join(hp.model_dir, "original_layout"), "events": events,
                  "mlm_loss": mlm, "disc_loss": disc}
        self.steps.done(f"generator MLM loss {mlm['first']:.3f} (step {mlm['first_step']}) -> {mlm['last']:.3f}, "
                        f"discriminator loss {disc['first']:.3f} -> {disc['last']:.3f}" if mlm and disc else
                        f"checkpoint {_display(result['checkpoint'] or hp.model_dir)}")
        return self.finish_step("pretraining", result)

    def _export_pretrained(self, hp, view) -> None:
        import tensorflow as tf
        from convbert_tf.pretraining import run as trainer

        run = trainer.Pretraining(hp, self.strategy, out=view)
        prefix = tf.train.latest_checkpoint(hp.model_dir)
        run.checkpoint.read(prefix).expect_partial()
        trainer.export_run(run, int(run.optimizer.iterations.numpy()))
        view.close()

    # -- 4/6
    def finetuning(self, vocab_tokens: int, titles) -> dict:
        from convbert_tf.finetuning.hparams import resolve_finetuning_hparams
        from convbert_tf.finetuning.run import run_finetuning

        paths, settings = self.paths, self.settings
        counts = write_opinion_task(paths.task_dir, titles, settings.task_sizes, settings.seed)
        hparams = finetuning_hparams(settings, vocab_tokens)
        self.steps.header(
            4, f"Fine-tuning on the built-in '{TASK}' task: is the opinion about a Python topic positive?",
            [command(["python", script("run_finetuning.py")], data_dir=_display(paths.data), model_name=MODEL_NAME,
                     hparams=hparams)],
            note=f"data: {_display(paths.task_dir)}/{{train,dev,test}}.tsv in GLUE's SST-2 layout ("
                 + ", ".join(f"{split} {c['examples']}" for split, c in counts.items())
                 + "); label 1 when the sentence's opinion word is a positive one (see opinion_label)")
        hp = resolve_finetuning_hparams(hparams, data_dir=paths.data, model_name=MODEL_NAME)
        view = ProgressView(("loss",))
        try:
            results = run_finetuning(hp, self.strategy, out=view)
        finally:
            view.close()
        accuracy = results[TASK]["median"]["accuracy"]
        loss = _curve_ends(os.path.join(paths.trial_dir, "train"), "loss")
        if loss is None and view.points:  # events missing: the progress lines this run printed
            loss = {"first_step": view.points[0][0], "first": view.points[0][1].get("loss"),
                    "last_step": view.points[-1][0], "last": view.points[-1][1].get("loss")}
        result = {"task": TASK, "data_dir": paths.task_dir, "examples": counts, "dev_accuracy": accuracy,
                  "chance_accuracy": round(100.0 * max(counts["dev"]["positive"],
                                                       counts["dev"]["examples"] - counts["dev"]["positive"])
                                           / counts["dev"]["examples"], 2),
                  "steps": loss["last_step"] if loss else None, "loss": loss, "trial_dir": paths.trial_dir,
                  "results": os.path.join(paths.model_dir, "results", f"{TASK}_results.json"),
                  "saved_model": paths.classifier}
        self.steps.done(f"dev accuracy {accuracy:.1f}% (majority class: {result['chance_accuracy']:.1f}%)")
        return self.finish_step("finetuning", result)

    # -- 5/6
    def serving(self) -> dict:
        paths = self.paths
        with open(paths.predict_script, "w") as f:
            f.write(PREDICT_SCRIPT.format(script=_display(paths.predict_script),
                                          classifier=os.path.relpath(paths.classifier, paths.root)))
        sentences = [s for s, _ in PROBE_SENTENCES]
        self.steps.header(5, "The exported classifier, loaded in a fresh process (tensorflow + tensorflow_text only)",
                          [command(["python", _display(paths.predict_script)] + sentences[:2])],
                          note=f"SavedModel: {_display(paths.classifier)}/ (signature serving_default: "
                               "sentence -> label, probabilities)")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        env.pop("PYTHONPATH", None)  # nothing of this repository is importable there
        answer = subprocess.run([sys.executable, paths.predict_script, "--json"] + sentences, capture_output=True,
                                text=True, cwd=paths.root, env=env, timeout=600)
        if answer.returncode != 0:
            raise QuickstartError(f"the exported model did not answer in a fresh process (exit code "
                                  f"{answer.returncode}):\n{answer.stderr[-3000:]}")
        served = json.loads(answer.stdout.strip().splitlines()[-1])
        rows = served["predictions"]
        for row, (_, expected) in zip(rows, PROBE_SENTENCES):
            row["expected"] = str(expected)
        correct = sum(row["label"] == row["expected"] for row in rows)
        for row in rows:
            name = {"1": "positive", "0": "negative"}.get(row["label"], row["label"])
            mark = "ok" if row["label"] == row["expected"] else "expected " + (
                "positive" if row["expected"] == "1" else "negative")
            print(f"    {name:8s} {row['probability']:.3f}  {row['sentence']}  [{mark}]")
        _write_json(paths.predictions, {"saved_model": paths.classifier, "process_id": served["pid"],
                                        "imported_convbert_tf": served["imported_convbert_tf"], "predictions": rows})
        self.steps.done(f"{correct}/{len(rows)} as the task's rule says; answered by process {served['pid']}, "
                        f"not this one ({os.getpid()})")
        return self.finish_step("serving", {"predict_script": paths.predict_script, "predictions": paths.predictions,
                                            "fresh_process": served["pid"] != os.getpid(), "answers": len(rows),
                                            "as_expected": correct})

    # -- 6/6
    def plot(self) -> dict:
        from convbert_tf import plotting

        paths = self.paths
        self.steps.header(6, "Loss curves", [command(["python", script("plot_curves.py")],
                                                     run_dir=_display(paths.root), output=_display(paths.plot))])
        settings = self.settings
        try:
            curves = plotting.collect_curves(paths.root)
            plotting.plot_curves(curves, paths.plot, title=f"ConvBERT quickstart: {settings.pretrain_steps} "
                                 f"pretraining steps, {settings.finetune_epochs:g} fine-tuning epochs")
        except plotting.NoCurvesError as e:
            raise QuickstartError(str(e)) from None
        self.steps.done(f"{_display(paths.plot)}")
        return self.finish_step("plot", {"png": paths.plot})


def print_summary(summary: dict, paths: Paths, took: float) -> None:
    p, f, d = summary["pretraining"], summary["finetuning"], summary["data"]
    rel = _display
    lines = [
        f"\nDone in {_eta_text(took)}. Everything is in {rel(paths.root)}/ (summary: {rel(paths.summary)})",
        f"  corpus       {rel(paths.corpus)}/  ({summary['corpus']['files']} files, "
        f"{summary['corpus']['paragraphs']} paragraphs)",
        f"  vocab        {rel(paths.vocab)}  ({d['vocab_tokens']} WordPiece tokens)",
        f"  records      {rel(paths.records)}/  ({d['examples']} examples)",
    ]
    if p.get("mlm_loss") and p.get("disc_loss"):
        lines.append(f"  pretraining  {p['steps']} steps: generator MLM loss {p['mlm_loss']['first']:.3f} -> "
                     f"{p['mlm_loss']['last']:.3f}, discriminator loss {p['disc_loss']['first']:.3f} -> "
                     f"{p['disc_loss']['last']:.3f}")
    lines += [
        f"  checkpoint   {rel(p['checkpoint'] or p['model_dir'])}",
        f"  encoder      {rel(p['saved_model'])}/  (SavedModel: serving_default over ids, serve_text over raw text)",
    ]
    loss = f.get("loss")
    lines += [
        f"  fine-tuning  {f['steps']} steps" + (f", loss {loss['first']:.3f} -> {loss['last']:.3f}" if loss else "")
        + f"; dev accuracy {f['dev_accuracy']:.1f}% (majority class {f['chance_accuracy']:.1f}%)",
        f"  classifier   {rel(f['saved_model'])}/",
        f"  predictions  {rel(paths.predictions)}  (try: python {rel(paths.predict_script)} \"your sentence\")",
        f"  plot         {rel(paths.plot)}",
    ]
    print("\n".join(lines), flush=True)


def _library_errors() -> tuple:
    """The errors a run can end with that are the user's to fix (config, data, checkpoints, disk, NaN)."""
    if "convbert_tf" not in sys.modules:  # failed before TensorFlow was loaded: none of these
        return (FloatingPointError,)
    import tensorflow as tf
    from convbert_tf.checkpoints import CheckpointError
    from convbert_tf.config import ConfigError
    from convbert_tf.finetuning.tasks import DataError

    return (ConfigError, CheckpointError, DataError, FloatingPointError, tf.errors.OpError)


def _report_unexpected(error: Exception, paths: Paths) -> int:
    """The last resort: one line naming the run, the traceback written to a file; returns 1."""
    from convbert_tf.cli_errors import Operation, report_unexpected

    return report_unexpected(error, Operation("quickstart.py", "the quickstart", f"--output_dir {paths.root}"))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    started = time.perf_counter()
    paths = Paths(os.path.abspath(FLAGS.output_dir))
    try:
        settings = make_settings(FLAGS.quick, FLAGS.pretrain_steps, FLAGS.finetune_epochs)
        state, lock = prepare_output_dir(paths, settings, FLAGS.overwrite, FLAGS.resume)
    except QuickstartError as e:
        print(f"quickstart.py: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        return _report_unexpected(e, paths)
    print(f"ConvBERT quickstart into {_display(paths.root)}/ ({'--quick, ' if settings.quick else ''}"
          f"{settings.pretrain_steps} pretraining steps, {settings.finetune_epochs:g} fine-tuning epochs)")
    try:
        summary = Quickstart(paths, settings, state).run()
    except KeyboardInterrupt:
        print(f"\ninterrupted; rerun the same command to resume the run in {paths.root}", file=sys.stderr)
        return 130
    except QuickstartError as e:
        print(f"quickstart.py: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if e.errno == errno.ENOSPC:
            print(f"quickstart.py: error: the disk of {paths.root} is full ({e}); free some space and rerun the same "
                  "command: the run resumes where it stopped", file=sys.stderr)
        else:
            print(f"quickstart.py: error: {e}; rerun the same command to resume", file=sys.stderr)
        return 1
    except Exception as e:
        if not isinstance(e, _library_errors()):
            return _report_unexpected(e, paths)
        print(f"quickstart.py: error: {type(e).__name__}: {e}", file=sys.stderr)
        if "No space left" in str(e):
            print(f"the disk of {paths.root} is full: free some space and rerun the same command to resume",
                  file=sys.stderr)
        return 2 if isinstance(e, FloatingPointError) else 1
    finally:
        lock.close()
    if summary.get("preempted"):
        from convbert_tf.run_guard import PREEMPTED_EXIT_CODE

        return PREEMPTED_EXIT_CODE
    print_summary(summary, paths, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    app.run(main)
