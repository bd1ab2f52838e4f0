# The docs' Manager example, then a Namespace and a manager Queue.
from multiprocessing import Process, Manager


def f(d, l):
    d[1] = '1'
    d['2'] = 2
    d[0.25] = None
    l.reverse()


def g(ns, q):
    ns.x += 1
    ns.y = 'set in the child'
    q.put('from the child')


if __name__ == '__main__':
    with Manager() as manager:
        d = manager.dict()
        l = manager.list(range(10))

        p = Process(target=f, args=(d, l))
        p.start()
        p.join()

        print(d)
        print(l)
        print(len(l), 5 in l, l[2], l[-1])
        print(sorted(d.keys(), key=str), [x for x in l][:3])

        ns = manager.Namespace()
        ns.x = 1
        q = manager.Queue()
        p = Process(target=g, args=(ns, q))
        p.start()
        p.join()
        print(ns.x, ns.y)
        print(q.get(timeout=10))
        q.task_done()
        q.join()
        print(q.empty())
