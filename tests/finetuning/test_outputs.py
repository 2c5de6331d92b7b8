"""Fine-tuning results over trials (the JSON summary and the median table), written atomically."""
import json
import os

from convbert_tf.finetuning import outputs
from convbert_tf.io import atomic_write_text


def test_results_median_over_trials(tmp_path):
    trials = [{"cola": {"mcc": 50.0}, "sts": {"pearson": 80.0, "spearman": 79.0}},
              {"cola": {"mcc": 60.0}, "sts": {"pearson": 82.0, "spearman": 81.0}},
              {"cola": {"mcc": 55.0}}]
    paths = outputs.write_results(tmp_path, trials, name="cola_sts_results")
    summary = json.load(open(paths["json"]))
    assert summary["cola"]["median"] == {"mcc": 55.0} and len(summary["cola"]["trials"]) == 3
    assert summary["sts"]["median"] == {"pearson": 81.0, "spearman": 80.0}
    table = open(paths["txt"]).read().splitlines()
    assert table[0].split() == ["task", "metric", "trial", "1", "trial", "2", "trial", "3", "median"]
    assert table[1].split() == ["cola", "mcc", "50.00", "60.00", "55.00", "55.00"]
    assert table[2].split() == ["sts", "pearson", "80.00", "82.00", "81.00"]


def test_atomic_writes_get_the_mode_open_would_give(tmp_path):
    """Results and reports are readable by whoever could read a file written with open()."""
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    written = atomic_write_text(tmp_path / "results" / "atomic.txt", "y")
    assert open(written).read() == "y"
    assert os.stat(written).st_mode & 0o777 == os.stat(plain).st_mode & 0o777
    assert os.listdir(os.path.dirname(written)) == ["atomic.txt"]  # no temporary left behind
