"""A shared counter under a lock, with actors.mp.

Ordinary multiprocessing code: only the import differs. Four processes
each add 1 to a shared Value 1000 times, holding the value's own lock for
each read-modify-write, so no increment is lost.

Run it:  python examples/mp_shared_counter.py
(ACTORS_MP_TRANSPORT=zmq or pipe picks the transport.)
"""

import actors.mp as multiprocessing

PROCESSES = 4
INCREMENTS = 1000


def work(counter):
    for _ in range(INCREMENTS):
        with counter.get_lock():      # counter.value += 1 alone is a race
            counter.value += 1


if __name__ == "__main__":
    counter = multiprocessing.Value("i", 0)
    workers = [multiprocessing.Process(target=work, args=(counter,))
               for _ in range(PROCESSES)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print("exit codes:", [w.exitcode for w in workers])
    print(f"counter = {counter.value} (expected {PROCESSES * INCREMENTS})")
