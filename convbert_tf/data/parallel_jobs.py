"""Running the builder's jobs: in this process, or each in a spawned process reporting through a
queue; progress summed over jobs; the finished shards moved into place.

Imported by pretraining_dataset.py.
"""
import dataclasses
import multiprocessing
import os
import queue
import re
import time
import traceback

from convbert_tf.data.corpus_files import DatasetBuildError
from convbert_tf.data.packing import BuildStats, JobSpec, run_job

_OUTPUT_NAME = re.compile(r"pretrain_data\.tfrecord-\d+-of-\d+")


@dataclasses.dataclass(frozen=True)
class Progress:
    files_done: int
    files_total: int
    examples: int
    elapsed_s: float


def _job_process_main(spec: JobSpec, messages) -> None:
    """Entry point of a spawned job process: runs the job and reports through `messages`."""
    try:
        stats = run_job(spec, messages.put)
        messages.put(("done", spec.job_id, stats))
    except DatasetBuildError as e:
        messages.put(("error", spec.job_id, str(e), True))
    except BaseException:  # a bug: hand the traceback to the parent
        messages.put(("error", spec.job_id, traceback.format_exc(), False))


class ProgressTracker:
    """Sums the jobs' progress messages into a `Progress` for the caller's callback."""

    def __init__(self, num_jobs, files_total, callback):
        self._files = [0] * num_jobs
        self._examples = [0] * num_jobs
        self._files_total = files_total
        self._callback = callback
        self._start = time.monotonic()

    def __call__(self, message):
        _, job_id, files_done, examples = message
        self._files[job_id] = files_done
        self._examples[job_id] = examples
        if self._callback is not None:
            elapsed_s = time.monotonic() - self._start
            self._callback(
                Progress(sum(self._files), self._files_total, sum(self._examples), elapsed_s)
            )


def _run_jobs_in_processes(specs, tracker) -> BuildStats:
    context = multiprocessing.get_context("spawn")  # TensorFlow is not fork-safe
    messages = context.Queue()
    processes = [
        context.Process(target=_job_process_main, args=(spec, messages), daemon=True) for spec in specs
    ]
    total = BuildStats()
    try:
        for process in processes:
            process.start()
        pending = set(range(len(specs)))
        while pending:
            try:
                message = messages.get(timeout=1.0)
            except queue.Empty:
                for job_id in pending:
                    code = processes[job_id].exitcode
                    if code is not None and code != 0:
                        raise RuntimeError(f"pretraining data job {job_id} died with exit code {code}")
                continue
            kind, job_id = message[0], message[1]
            if kind == "progress":
                tracker(message)
            elif kind == "done":
                total = total + message[2]
                pending.discard(job_id)
            elif message[3]:
                raise DatasetBuildError(message[2])
            else:
                raise RuntimeError(f"pretraining data job {job_id} failed:\n{message[2]}")
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
    return total


def run_jobs(specs, tracker) -> BuildStats:
    """Every job's counts summed; the jobs run here when there is one, else in spawned processes."""
    if len(specs) == 1:
        return run_job(specs[0], tracker)
    return _run_jobs_in_processes(specs, tracker)


def publish(tmp_dir, output_dir, names) -> None:
    """Moves the new files into `output_dir`, then removes our stale files of an earlier run."""
    for name in names:
        os.replace(os.path.join(tmp_dir, name), os.path.join(output_dir, name))
    keep = set(names)
    for name in os.listdir(output_dir):
        if _OUTPUT_NAME.fullmatch(name) and name not in keep:
            os.remove(os.path.join(output_dir, name))
