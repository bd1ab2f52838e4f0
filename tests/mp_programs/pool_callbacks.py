# apply_async with callbacks, starmap, an initializer, and errors.
import multiprocessing as mp

_offset = None


def init(offset):
    global _offset
    _offset = offset


def shifted(x, y):
    return x * y + _offset


def fail(x):
    raise KeyError(x)


results = []


def collect(result):
    results.append(result)


if __name__ == '__main__':
    pool = mp.Pool(2, initializer=init, initargs=(100,))
    for i in range(5):
        pool.apply_async(shifted, (i, i), callback=collect)
    errors = []
    pool.apply_async(fail, ('k',), error_callback=errors.append)
    print(pool.starmap(shifted, [(1, 2), (3, 4)]))
    try:
        pool.apply(fail, ('boom',))
    except KeyError as e:
        print('KeyError', e)
    pool.close()
    pool.join()
    print(sorted(results))
    print([type(e).__name__ for e in errors])
