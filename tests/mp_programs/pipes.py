# Pipe examples: the docs' one-shot send, then a duplex ping-pong.
from multiprocessing import Process, Pipe


def f(conn):
    conn.send([42, None, 'hello'])
    conn.close()


def echo(conn):
    while True:
        msg = conn.recv()
        if msg == 'bye':
            conn.send('ciao')
            break
        conn.send(msg.upper())


if __name__ == '__main__':
    parent_conn, child_conn = Pipe()
    p = Process(target=f, args=(child_conn,))
    p.start()
    print(parent_conn.recv())   # prints "[42, None, 'hello']"
    p.join()

    a, b = Pipe()
    p = Process(target=echo, args=(b,))
    p.start()
    for word in ['spam', 'eggs', 'bye']:
        a.send(word)
        print(a.recv())
    p.join()
    print(a.poll(0.1))
    r, w = Pipe(duplex=False)
    w.send_bytes(b'raw bytes')
    print(r.recv_bytes())
