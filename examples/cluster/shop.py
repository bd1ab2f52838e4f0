"""The actors of the cluster example: every node imports this module (the
same code runs on every node of a cluster)."""

import os

import actors


class Worker(actors.Actor):
    """Does jobs, and says which node (and process) it runs on."""

    def __init__(self) -> None:
        self.done = 0

    def receive(self, message):
        match message:
            case ("job", n):
                self.done += 1
                return n * n
            case "where":
                return f"node {self.ref.node.split('.')[0]} (pid {os.getpid()}, "\
                       f"{self.done} jobs done in this incarnation)"


class Workers(actors.Supervisor):
    """Keeps one worker running on node b, or on node c when b is down."""

    children = [actors.ChildSpec("worker", Worker, node=["b", "c"])]
    max_restarts = 5
    max_seconds = 10.0
