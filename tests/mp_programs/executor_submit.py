# submit() and as_completed(), exceptions through futures.
from concurrent.futures import ProcessPoolExecutor, as_completed


def cube(x):
    if x == 4:
        raise ValueError('four is not welcome')
    return x ** 3


if __name__ == '__main__':
    with ProcessPoolExecutor(max_workers=3) as ex:
        futures = {ex.submit(cube, n): n for n in range(6)}
        results = {}
        for fut in as_completed(futures):
            n = futures[fut]
            try:
                results[n] = fut.result()
            except ValueError as e:
                results[n] = 'error: %s' % e
        for n in sorted(results):
            print(n, results[n])
        print(list(ex.map(cube, [1, 2, 3], chunksize=2)))
