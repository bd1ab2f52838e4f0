# The docs' Value and Array example, and a counter under get_lock().
from multiprocessing import Process, Value, Array


def f(n, a):
    n.value = 3.1415927
    for i in range(len(a)):
        a[i] = -a[i]


def add(counter, times):
    for _ in range(times):
        with counter.get_lock():
            counter.value += 1


if __name__ == '__main__':
    num = Value('d', 0.0)
    arr = Array('i', range(10))

    p = Process(target=f, args=(num, arr))
    p.start()
    p.join()

    print(num.value)
    print(arr[:])

    counter = Value('i', 0)
    workers = [Process(target=add, args=(counter, 50)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(counter.value)
