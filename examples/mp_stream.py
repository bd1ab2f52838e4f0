"""A stream through a Queue, with actors.mp and with the standard library.

One process reads "sensor samples" and puts them on a plain Queue; the
main program is the only consumer. The same function runs with
``multiprocessing`` (spawn) and with ``actors.mp``; each run checks that
every sample arrived once and in order, and prints its rate.

With actors.mp the queue sees one producer and one consumer, and routes
the producer's items straight to the consumer's process (docs/mp.md, "The
direct path"): after the first few thousand items, the queue's own process
only counts markers.

Run it:  python examples/mp_stream.py [SAMPLES]
"""

import multiprocessing
import sys
import time

import actors.mp


def sample_sensor(q, count):
    """Put (index, reading) for count samples, then None."""
    for i in range(count):
        q.put((i, (i * 7919) % 1000 / 10.0))
    q.put(None)


def stream(mp, count):
    """Samples from a child to this process through mp's Queue: their rate."""
    q = mp.Queue()
    p = mp.Process(target=sample_sensor, args=(q, count))
    p.start()
    started = time.perf_counter()
    expected = 0
    while (sample := q.get(timeout=60)) is not None:
        assert sample[0] == expected, f"sample {sample[0]} came when {expected} was due"
        expected += 1
    elapsed = time.perf_counter() - started
    p.join(60)
    assert expected == count and p.exitcode == 0, (expected, p.exitcode)
    return count / elapsed


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    stdlib = stream(multiprocessing.get_context("spawn"), count)
    ours = stream(actors.mp, count)
    print(f"multiprocessing: {count} samples in order, {stdlib:,.0f} samples/s")
    print(f"actors.mp:       {count} samples in order, {ours:,.0f} samples/s")
    print(f"ratio: {ours / stdlib:.2f}x (one run on a shared machine: it varies)")
