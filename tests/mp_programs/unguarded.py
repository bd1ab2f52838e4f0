# No `if __name__ == "__main__":` guard: under spawn the child re-imports
# this script, tries to start a process while bootstrapping and fails; the
# failure shows as the child's exit code.
import multiprocessing


def f():
    print('never printed')


p = multiprocessing.Process(target=f)
p.start()
p.join()
print('exit code', p.exitcode)
