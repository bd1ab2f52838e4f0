# Process subclasses pulling tasks from a JoinableQueue, poison pills,
# results on a Queue (the PyMOTW style).
import multiprocessing


class Consumer(multiprocessing.Process):

    def __init__(self, task_queue, result_queue):
        multiprocessing.Process.__init__(self)
        self.task_queue = task_queue
        self.result_queue = result_queue

    def run(self):
        proc_name = self.name
        while True:
            next_task = self.task_queue.get()
            if next_task is None:
                self.task_queue.task_done()
                break
            answer = next_task()
            self.task_queue.task_done()
            self.result_queue.put((proc_name, answer))


class Task:

    def __init__(self, a, b):
        self.a = a
        self.b = b

    def __call__(self):
        return '{self.a} * {self.b} = {product}'.format(self=self, product=self.a * self.b)

    def __str__(self):
        return '{self.a} * {self.b}'.format(self=self)


if __name__ == '__main__':
    tasks = multiprocessing.JoinableQueue()
    results = multiprocessing.Queue()

    num_consumers = 3
    print('Creating {} consumers'.format(num_consumers))
    consumers = [Consumer(tasks, results) for i in range(num_consumers)]
    print(sorted(c.name for c in consumers))
    for w in consumers:
        w.start()

    num_jobs = 10
    for i in range(num_jobs):
        tasks.put(Task(i, i))
    for i in range(num_consumers):
        tasks.put(None)

    tasks.join()

    answers = []
    while num_jobs:
        name, result = results.get()
        assert name.startswith('Consumer-'), name
        answers.append(result)
        num_jobs -= 1
    for line in sorted(answers, key=lambda s: int(s.split()[0])):
        print('Result:', line)
    for w in consumers:
        w.join()
    print([w.exitcode for w in consumers])
