"""benchmarks.memory_flat's verdict: a steady rise is growth, a one-time release is not."""

from benchmarks import memory_flat


def verdict(samples, capsys):
    args = memory_flat.parse_args(["--steps=2000"])
    flat = memory_flat.report(args, samples, seconds=1.0)
    return flat, capsys.readouterr().out


def test_a_leak_of_a_few_kib_per_step_is_growing(capsys):
    samples = [(s, 900 + 0.008 * s) for s in range(10, 2001, 10)]  # 8 MiB per 1,000 steps
    flat, out = verdict(samples, capsys)
    assert not flat and "verdict: GROWING" in out
    assert "+8.00 MiB per 1,000 steps end to end" in out


def test_a_one_time_release_then_a_plateau_is_flat(capsys):
    samples = [(s, 980.0 if s < 800 else 916.0) for s in range(10, 2001, 10)]
    flat, out = verdict(samples, capsys)
    assert flat and "verdict: FLAT" in out
    assert "growth from step 200 to 2000: -64.0 MiB" in out
    assert "| 800 | 916.0 |" in out and "| 2000 | 916.0 |" in out


def test_least_squares_slope():
    assert abs(memory_flat.slope_per_1000([(0, 1.0), (500, 2.0), (1000, 3.0)]) - 2.0) < 1e-12
    assert memory_flat.slope_per_1000([(100, 5.0)]) == 0.0
