# A Semaphore lets at most two workers in at once; a Condition hands over.
import multiprocessing
import time


def guarded(sem, inside, peak, lock):
    with sem:
        with lock:
            inside.value += 1
            peak.value = max(peak.value, inside.value)
        time.sleep(0.05)
        with lock:
            inside.value -= 1


def waiter(cond, box):
    with cond:
        cond.wait_for(lambda: box.value > 0, timeout=30)
        box.value *= 10


if __name__ == '__main__':
    sem = multiprocessing.Semaphore(2)
    lock = multiprocessing.Lock()
    inside = multiprocessing.Value('i', 0, lock=False)
    peak = multiprocessing.Value('i', 0, lock=False)
    ps = [multiprocessing.Process(target=guarded, args=(sem, inside, peak, lock))
          for _ in range(5)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    print('peak within 2:', 1 <= peak.value <= 2, 'inside now:', inside.value)

    cond = multiprocessing.Condition()
    box = multiprocessing.Value('i', 0)
    p = multiprocessing.Process(target=waiter, args=(cond, box))
    p.start()
    with cond:
        box.value = 7
        cond.notify_all()
    p.join()
    print(box.value, p.exitcode)
