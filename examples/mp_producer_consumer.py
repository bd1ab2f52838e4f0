"""Producers and consumers over a JoinableQueue, with actors.mp.

Ordinary multiprocessing code: only the import differs. Two producers put
numbers on a JoinableQueue; two consumers take them until each gets a
sentinel (None), marking every item done; each consumer reports how many
items it took and their sum on a second queue.

Run it:  python examples/mp_producer_consumer.py
(ACTORS_MP_TRANSPORT=zmq or pipe picks the transport.)
"""

import actors.mp as multiprocessing

PER_PRODUCER = 1000
PRODUCERS = 2
CONSUMERS = 2


def produce(tasks, first):
    """Put the numbers first .. first + PER_PRODUCER - 1."""
    for number in range(first, first + PER_PRODUCER):
        tasks.put(number)


def consume(tasks, results):
    """Take numbers until the sentinel; report (items, their sum)."""
    count = total = 0
    while True:
        number = tasks.get()
        if number is None:
            tasks.task_done()
            break
        count += 1
        total += number
        tasks.task_done()
    results.put((count, total))


if __name__ == "__main__":
    tasks = multiprocessing.JoinableQueue()
    results = multiprocessing.Queue()
    producers = [multiprocessing.Process(target=produce, args=(tasks, i * PER_PRODUCER))
                 for i in range(PRODUCERS)]
    consumers = [multiprocessing.Process(target=consume, args=(tasks, results))
                 for _ in range(CONSUMERS)]
    for p in producers + consumers:
        p.start()
    for p in producers:
        p.join()
    tasks.join()                      # every number taken and marked done
    for _ in consumers:
        tasks.put(None)               # one sentinel per consumer
    reports = [results.get(timeout=60) for _ in consumers]
    for c in consumers:
        c.join()
    tasks.join()                      # the sentinels too

    items = PER_PRODUCER * PRODUCERS
    count = sum(r[0] for r in reports)
    checksum = sum(r[1] for r in reports)
    expected = items * (items - 1) // 2   # 0 + 1 + ... + (items - 1)
    print("per consumer:", ", ".join(f"{n} items" for n, _ in reports))
    print("exit codes:", [p.exitcode for p in producers + consumers])
    print(f"consumed {count} items (expected {items}), checksum {checksum} (expected {expected})")
