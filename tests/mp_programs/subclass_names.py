# Names and identity: subclasses, parent_process(), daemon flags, exit codes.
import multiprocessing
import sys


class Worker(multiprocessing.Process):
    def __init__(self, q):
        super().__init__()
        self.q = q

    def run(self):
        me = multiprocessing.current_process()
        parent = multiprocessing.parent_process()
        self.q.put((me.name, me is self, parent.name, repr(me).split()[0]))


def exit_with(code):
    sys.exit(code)


if __name__ == '__main__':
    q = multiprocessing.Queue()
    workers = [Worker(q) for _ in range(2)]
    print([w.name for w in workers], [repr(w).split()[0] for w in workers])
    for w in workers:
        w.start()
    print(sorted(q.get(timeout=30) for _ in workers))
    for w in workers:
        w.join()
    print([w.exitcode for w in workers], repr(workers[0]).endswith('stopped exitcode=0>'))
    p = multiprocessing.Process(target=exit_with, args=(7,), daemon=True)
    print(p.daemon, p.name.startswith('Process-'))
    p.start()
    p.join()
    print(p.exitcode, multiprocessing.active_children())
    print(multiprocessing.current_process().name, multiprocessing.parent_process())
