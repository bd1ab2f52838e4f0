# The Pool example of the multiprocessing docs.
from multiprocessing import Pool, TimeoutError
import os


def f(x):
    return x * x


if __name__ == '__main__':
    with Pool(processes=4) as pool:
        print(pool.map(f, range(10)))
        for i in pool.imap_unordered(f, range(10)):
            pass
        print(sorted(pool.imap_unordered(f, range(10))))
        res = pool.apply_async(f, (20,))
        print(res.get(timeout=10))
        res = pool.apply_async(os.getpid, ())
        print(isinstance(res.get(timeout=10), int))
        multiple_results = [pool.apply_async(os.getpid, ()) for i in range(4)]
        print(len([res.get(timeout=10) for res in multiple_results]))
        res = pool.apply_async(pow, (2, 100))
        print(res.get())
    print("Now the pool is closed and no longer available")
