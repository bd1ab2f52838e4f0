# The first example of the multiprocessing docs, with names and exit codes.
from multiprocessing import Process, current_process
import os


def info(title):
    print(title, current_process().name)


def f(name):
    info('function f')
    print('hello', name)


if __name__ == '__main__':
    info('main line')
    p = Process(target=f, args=('bob',))
    print(p.name, p.is_alive(), p.exitcode)
    p.start()
    p.join()
    print(p.name, p.is_alive(), p.exitcode)
    q = Process(target=os._exit, args=(3,), name='quitter')
    q.start()
    q.join()
    print(q.name, q.exitcode)
