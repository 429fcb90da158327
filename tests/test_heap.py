"""glibc malloc's options: freed arrays are kept for the next ones, in the command's process only."""

import os
import subprocess
import sys

import pytest

# Arrays of growing sizes allocated, filled and freed twice; the page faults
# of the second round are printed.  By default glibc maps the larger blocks
# afresh or gives the heap's top back, and pays for every page again.
_ROUNDS = """
import resource, sys
import numpy as np
{setup}
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def round_():
    for mb in (1, 2, 4, 8, 16, 24):
        a = np.ones(mb << 20, np.uint8)
        del a
round_()
before = faults()
round_()
print(faults() - before)
"""


def second_round_faults(setup):
    # glibc's defaults: Dask sets MALLOC_TRIM_THRESHOLD_ for its workers, in
    # this process's environment too once a test has started a cluster.
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("MALLOC_") and name != "GLIBC_TUNABLES"}
    done = subprocess.run([sys.executable, "-c", _ROUNDS.format(setup=setup)], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_arrays_are_reused_without_page_faults(tmp_path, pictures):
    assert second_round_faults("") > 1000  # 24 MB is 6,144 pages
    assert second_round_faults("from kqcodec.heap import keep_freed_memory\n"
                               "assert keep_freed_memory()") < 100
    # The command's own process (kqcodec.cli.run) sets them, a program
    # calling main() keeps its own.
    command = ["encode", str(pictures["skimage_coffee"]), str(tmp_path / "o.png"), "-k", "4",
               "--force"]
    assert second_round_faults("from kqcodec.cli import main\n"
                               f"assert main({command!r}, own_process=True) == 0") < 100
    assert second_round_faults("from kqcodec.cli import main\n"
                               f"assert main({command!r}) == 0") > 1000
