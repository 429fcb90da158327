"""Worker processes: how the pool ends."""

import multiprocessing.pool

import pytest

from kqcodec.workers import run_jobs


@pytest.fixture()
def terminations(monkeypatch):
    """Count the pools terminated rather than closed."""
    calls = []
    real = multiprocessing.pool.Pool.terminate

    def terminate(self):
        calls.append(self)
        real(self)

    monkeypatch.setattr(multiprocessing.pool.Pool, "terminate", terminate)
    return calls


def test_a_caller_stopping_after_the_last_result_lets_the_workers_go(terminations):
    jobs = [-3, -1, -2, -5]
    results = run_jobs(abs, jobs, workers=2)
    assert [next(results) for _ in jobs] == [3, 1, 2, 5]
    results.close()
    assert terminations == []

