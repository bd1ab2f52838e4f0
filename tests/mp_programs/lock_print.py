# The docs' Lock example: processes print under a lock.
# output: unordered
from multiprocessing import Process, Lock


def f(l, i):
    l.acquire()
    try:
        print('hello world', i, flush=True)
    finally:
        l.release()


if __name__ == '__main__':
    lock = Lock()
    procs = [Process(target=f, args=(lock, num)) for num in range(10)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
