# Workers wait for an Event, then meet at a Barrier; results on a Queue.
import multiprocessing


def worker(start, barrier, out, n):
    start.wait()
    index = barrier.wait()
    out.put((n, 0 <= index < 3))


if __name__ == '__main__':
    start = multiprocessing.Event()
    barrier = multiprocessing.Barrier(3)
    out = multiprocessing.Queue()
    ps = [multiprocessing.Process(target=worker, args=(start, barrier, out, n)) for n in range(3)]
    for p in ps:
        p.start()
    print('started', start.is_set())
    start.set()
    print(sorted(out.get(timeout=30) for _ in ps))
    for p in ps:
        p.join()
    print([p.exitcode for p in ps], start.is_set())
