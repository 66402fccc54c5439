/*
 * exfil: the program a monitor exists for. It reads a file and then sends what it read
 * out through WASI's `sock_send` on the socket descriptor its host handed it.
 *
 *   exfil [--no-read] [FILE]
 *
 * FILE defaults to /data/secret.txt (give the host directory with `--dir HOST::/data`).
 * With --no-read it skips the file and sends a fixed greeting instead, so the send is
 * the first thing that happens.
 *
 * The socket is descriptor 4 (EXFIL_SOCKET_FD): a host that hands out sockets
 * places it there. wasmtime's WASI preview 1 hands out none, so an unmonitored send
 * reaches the host and comes back with the host's answer (EBADF): the program prints
 * that answer, which is how a run shows that the call got through.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

#define EXFIL_SOCKET_FD 4
#define DEFAULT_FILE "/data/secret.txt"

int main(int argc, char **argv) {
    const char *path = DEFAULT_FILE;
    int do_read = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-read") == 0) {
            do_read = 0;
        } else {
            path = argv[i];
        }
    }

    char buf[4096];
    size_t len;
    if (do_read) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            fprintf(stderr, "exfil: cannot open %s: %s\n", path, strerror(errno));
            return 1;
        }
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            fprintf(stderr, "exfil: cannot read %s: %s\n", path, strerror(errno));
            return 1;
        }
        close(fd);
        len = (size_t)n;
        printf("exfil: read %zu bytes from %s\n", len, path);
    } else {
        static const char greeting[] = "hello from exfil\n";
        len = sizeof greeting - 1;
        memcpy(buf, greeting, len);
    }

    printf("exfil: sending %zu bytes on socket fd %d\n", len, EXFIL_SOCKET_FD);
    fflush(stdout);
    __wasi_ciovec_t iov = {.buf = (const uint8_t *)buf, .buf_len = len};
    __wasi_size_t sent = 0;
    __wasi_errno_t err = __wasi_sock_send(EXFIL_SOCKET_FD, &iov, 1, 0, &sent);
    if (err == 0) {
        printf("exfil: host accepted %u bytes\n", (unsigned)sent);
    } else {
        printf("exfil: host answered errno %u\n", (unsigned)err);
    }
    return 0;
}
